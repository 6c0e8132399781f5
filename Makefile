# Shortcuts; the README's two commands (scripts/demo, scripts/test) are the reference.
.PHONY: demo test bench screenshots

demo:
	scripts/demo

test:
	scripts/test

# Every benchmark, each printing its figures (needs PostgreSQL and Redis).
bench:
	scripts/bench

screenshots:
	scripts/screenshots
