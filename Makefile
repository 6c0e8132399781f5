# Shortcuts; the README's two commands (scripts/demo, scripts/test) are the reference.
.PHONY: demo test bench chaos screenshots

demo:
	scripts/demo

test:
	scripts/test

# Every benchmark, each printing its figures (needs PostgreSQL and Redis).
bench:
	scripts/bench

# Worker processes killed at random while jobs run, on Redis then RabbitMQ, then
# every invariant checked (docs/reliability.md, "Chaos"; about 6 minutes).
chaos:
	scripts/chaos

screenshots:
	scripts/screenshots
