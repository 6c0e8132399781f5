"""Chaos run: real processes killed at random while jobs run, then every
invariant checked. Not part of the test suite nor of ``make bench``:
``make chaos`` (scripts/chaos) runs it, docs/reliability.md ("Chaos")
records its figures.

    .venv/bin/python -m benchmarks.chaos [--brokers redis,rabbitmq] [--jobs 100]
        [--duration 150] [--settle 300] [--seed 1]

Each broker is a round in a process of its own, on the example site's
settings (``project.settings``, configured through its environment
variables) with a fresh PostgreSQL database of its own
(``imagegen_chaos_<broker>``) and imagegen's production defaults (leases,
attempts, timeouts): the sandbox in its own process (latency 1-5 s, as the
site's settings expect), the site under gunicorn receiving the callbacks,
two Celery worker hosts (prefork, concurrency 2) and beat (the sweeper every
5 s). For ``--duration`` seconds it creates ``--jobs`` jobs through the
service layer, spread over the first 80% of that time, of several kinds
(callbacks sent or dropped, submission answers lost, two outputs with a
slow download, provider failures), while every 3-8 s it SIGKILLs a random
worker process (a pool process or a host's main process; a killed main
process is started again a second later, as a supervisor would) and once
kills beat and starts it again. Then, the kills over, it waits (at most
``--settle`` seconds) until every job is terminal (previews are made on
first view, not by the workers), lets two sweeps run, stops everything and checks the
invariants, printing a table of each. The exit status is 1 if one failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from .common import ROOT, free_port, start_web, table, wait_for_port

BROKERS = {
    "redis": "redis://127.0.0.1:6379/12",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
}
#: The sandbox's latency range, the example site's LATENCY for 1K.
LATENCY = "1-5"
SWEEP_INTERVAL = 5
KILL_EVERY = (3.0, 8.0)
#: The share of ``--duration`` over which the jobs are created.
CREATION_SPAN = 0.8


@dataclass(frozen=True)
class Kind:
    """A sort of job: what its prompt asks of the sandbox, and how it must end."""

    name: str
    markers: str
    weight: int
    expected: tuple[str, ...]  # statuses it may end in
    code: str = ""  # the error code it must end with, if it does not succeed
    resolution: str = "1k"


KINDS = (
    Kind("callback", "", 9, ("succeeded",)),
    Kind("polling (callback dropped)", "[sandbox:callback=drop]", 4, ("succeeded",)),
    Kind("answer lost, callback", "[sandbox:submit-hangup]", 2, ("succeeded",)),
    Kind(
        "answers always lost",
        "[sandbox:submit-hangup] [sandbox:callback=drop]",
        1,
        ("failed", "expired"),
        "SUBMIT_ANSWERS_LOST",
    ),
    Kind(
        "2 outputs, 2K, slow download",
        "[sandbox:count=2] [sandbox:download-delay=2]",
        2,
        ("succeeded",),
        resolution="2k",
    ),
    Kind(
        "provider fails",
        "[sandbox:fail=GENERATION_FAILED]",
        1,
        ("failed",),
        "GENERATION_FAILED",
    ),
)
#: Prompts start with this, so the sandbox's task log (which keeps a prompt's
#: first 80 characters) names the job of every task.
PROMPT = "chaos {tag} {n:04d} a lighthouse at dusk {markers}"
PROMPT_TAG = re.compile(r"^chaos (\S+) (\d+) ")


# --- the parent: one round per broker --------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", default="redis,rabbitmq", help="comma-separated")
    parser.add_argument("--jobs", type=int, default=100, help="jobs per round")
    parser.add_argument("--duration", type=float, default=150, help="seconds of kills per round")
    parser.add_argument(
        "--settle", type=float, default=300, help="seconds to wait for the jobs after the kills"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--round", choices=sorted(BROKERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.round:
        raise SystemExit(run_round(args))
    brokers = [name.strip() for name in args.brokers.split(",") if name.strip()]
    unknown = set(brokers) - set(BROKERS)
    if unknown:
        parser.error(f"unknown broker(s): {', '.join(sorted(unknown))}")
    failed = []
    for broker in brokers:
        print(f"== chaos round on {broker}", flush=True)
        command = [sys.executable, "-m", "benchmarks.chaos", *sys.argv[1:], "--round", broker]
        if subprocess.run(command, cwd=ROOT, env=round_env(broker), check=False).returncode:
            failed.append(broker)
    if failed:
        raise SystemExit(f"failed (an invariant, or the round itself) on: {', '.join(failed)}")
    print("every invariant held on every broker")


def round_env(broker: str) -> dict[str, str]:
    """The example site's environment variables for a round (ports added later)."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"imagegen-chaos-{broker}-"))
    (run_dir / "tmp").mkdir()
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DJANGO_DEBUG": "0",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/imagegen_chaos_{broker}",
        "CELERY_BROKER_URL": BROKERS[broker],
        "IMAGEGEN_VAR_DIR": str(run_dir),
        "IMAGEGEN_SWEEP_INTERVAL": str(SWEEP_INTERVAL),
        # Every process's temporary files (the finalize attempts' folders) here.
        "TMPDIR": str(run_dir / "tmp"),
        "PYTHONPATH": str(ROOT),
    }


# --- one round --------------------------------------------------------------


@dataclass
class Host:
    """A Celery worker host or beat, in a session of its own (its pool
    processes with it), so the processes a kill orphans can be found."""

    name: str
    command: list[str]
    log: Path
    env: dict[str, str]
    process: subprocess.Popen | None = None
    sessions: list[int] = field(default_factory=list)

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.sessions.append(self.process.pid)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def children(self) -> list[int]:
        if not self.alive():
            return []
        pid = self.process.pid
        try:
            return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []

    def stop(self) -> None:
        """SIGTERM, then SIGKILL for whatever of its sessions is left."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for session in self.sessions:
            try:
                os.killpg(session, signal.SIGKILL)
            except ProcessLookupError:
                pass


def celery(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "project", *arguments]


def run_round(args: argparse.Namespace) -> int:
    broker = args.round
    rng = random.Random(f"{args.seed}-{broker}")
    run_dir = Path(os.environ["IMAGEGEN_VAR_DIR"])
    sandbox_port, web_port = free_port(), free_port()
    os.environ["IMAGEGEN_SANDBOX_URL"] = f"http://127.0.0.1:{sandbox_port}/api/v1"
    os.environ["IMAGEGEN_CALLBACK_BASE_URL"] = f"http://127.0.0.1:{web_port}"
    env = dict(os.environ)
    tempfile.tempdir = env["TMPDIR"]
    _fresh_database(env["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from imagegen import conf
    from project.celery import app

    app.control.purge()
    settings_rows = _settings_rows(args, broker, conf)
    print(table(["setting", "value"], settings_rows), flush=True)

    with open(run_dir / "sandbox.log", "ab") as out:
        # Its log holds the tracebacks of answers whose reader was killed.
        command = [sys.executable, "-m", "imagegen.sandbox", "--port", str(sandbox_port)]
        sandbox = subprocess.Popen(
            [*command, "--latency", LATENCY],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_for_port(sandbox_port)
    web = start_web(web_port, env)
    workers = [
        Host(
            f"worker{n}",
            celery(
                "worker",
                "--pool=prefork",
                "--concurrency=2",
                "--loglevel=WARNING",
                "--without-mingle",
                "--without-gossip",
                "-n",
                f"chaos{n}@%h",
            ),
            run_dir / f"worker{n}.log",
            env,
        )
        for n in (1, 2)
    ]
    beat = Host(
        "beat",
        celery("beat", "--loglevel=WARNING", "-s", str(run_dir / "celerybeat-schedule")),
        run_dir / "beat.log",
        env,
    )
    hosts = [*workers, beat]
    for host in hosts:
        host.start()
    kinds = _kinds(args.jobs, rng)
    tag = f"{broker[0]}{int(time.time()) % 100000}"
    try:
        jobs, kills, started = _chaos(args, rng, kinds, tag, workers, beat, run_dir / "kills.log")
        settled = _settle(jobs, started + args.duration + args.settle)
        settle_time = time.monotonic() - (started + args.duration)
        folders_after_terminal = _attempt_folders(run_dir)
        _two_sweeps(deadline=time.monotonic() + 8 * SWEEP_INTERVAL)
        stats = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sandbox_port}/_sandbox/stats"))
    finally:
        for host in hosts:
            host.stop()
        for server in (web, sandbox):
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    failures = _report(
        jobs=jobs,
        kinds=dict(zip(jobs, kinds, strict=True)),
        tag=tag,
        kills=kills,
        settled=settled,
        settle_time=settle_time,
        stats=stats,
        run_dir=run_dir,
        folders_after_terminal=folders_after_terminal,
    )
    print(f"\nlogs and files: {run_dir}")
    if failures:
        print(f"\n{broker}: {len(failures)} invariant(s) FAILED: {', '.join(failures)}")
        return 1
    print(f"\n{broker}: every invariant held")
    return 0


def _fresh_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _settings_rows(args: argparse.Namespace, broker: str, conf: Any) -> list[tuple[str, str]]:
    from django.conf import settings

    names = (
        "SUBMIT_LEASE",
        "FINALIZE_LEASE",
        "SUBMIT_GRACE",
        "SUBMIT_MAX_ATTEMPTS",
        "FINALIZE_MAX_ATTEMPTS",
        "JOB_TIMEOUT",
        "CALLBACK_GRACE",
        "MAX_COUNTDOWN",
    )
    visibility = (getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}).get(
        "visibility_timeout", "-"
    )
    if broker == "rabbitmq":
        visibility = "none (RabbitMQ re-queues a dead consumer's messages at once)"
    mix = ", ".join(f"{k.name} {k.weight}" for k in KINDS)
    return [
        ("broker", f"{broker} ({settings.CELERY_BROKER_URL.split('@')[-1]})"),
        ("database", f"PostgreSQL, {settings.DATABASES['default']['NAME']} (fresh)"),
        ("processes", "sandbox, gunicorn (2), 2 worker hosts (prefork, 2 each), beat"),
        ("jobs", f"{args.jobs} over {args.duration * CREATION_SPAN:.0f} s; mix {mix}"),
        (
            "kills",
            f"a random worker process every {KILL_EVERY[0]:g}-{KILL_EVERY[1]:g} s "
            f"for {args.duration:g} s; beat once",
        ),
        ("sandbox latency, s", LATENCY),
        ("sweep interval, s", str(SWEEP_INTERVAL)),
        ("visibility timeout, s", str(visibility)),
        *((name, str(conf.get_setting(name))) for name in names),
    ]


def _kinds(jobs: int, rng: random.Random) -> list[Kind]:
    """``jobs`` kinds in the proportions of their weights: blocks of the
    whole mix one after the other, each shuffled."""
    pattern = [kind for kind in KINDS for _ in range(kind.weight)]
    kinds: list[Kind] = []
    while len(kinds) < jobs:
        kinds += rng.sample(pattern, len(pattern))
    return kinds[:jobs]


def _chaos(
    args: argparse.Namespace,
    rng: random.Random,
    kinds: list[Kind],
    tag: str,
    workers: list[Host],
    beat: Host,
    log: Path,
) -> tuple[list[str], Counter, float]:
    """Create the jobs and kill processes for ``args.duration`` seconds
    (each kill written to ``log``). Returns the job ids, the kills made, and
    when it began (monotonic)."""
    from imagegen import services

    def killed(what: str, host: Host, pid: int) -> None:
        kills[what] += 1
        with open(log, "a") as out:
            out.write(f"{time.strftime('%H:%M:%S')} {what} {host.name} pid {pid}\n")

    started = time.monotonic()
    end = started + args.duration
    spacing = args.duration * CREATION_SPAN / max(1, args.jobs)
    jobs: list[str] = []
    kills: Counter = Counter()
    next_kill = started + rng.uniform(*KILL_EVERY)
    beat_kill = started + args.duration * rng.uniform(0.3, 0.6)
    restarts: list[tuple[float, Host]] = []
    while time.monotonic() < end or len(jobs) < len(kinds):
        now = time.monotonic()
        while len(jobs) < len(kinds) and now >= started + len(jobs) * spacing:
            kind = kinds[len(jobs)]
            prompt = PROMPT.format(tag=tag, n=len(jobs), markers=kind.markers).strip()
            jobs.append(str(services.create_job(prompt=prompt, resolution=kind.resolution).pk))
        for when, host in list(restarts):
            if now >= when:
                restarts.remove((when, host))
                host.start()
        if now >= beat_kill and beat.alive():
            os.kill(beat.process.pid, signal.SIGKILL)
            beat.process.wait()
            killed("beat", beat, beat.process.pid)
            restarts.append((now + 5, beat))
            beat_kill = float("inf")
        if now >= next_kill and now < end:
            next_kill = now + rng.uniform(*KILL_EVERY)
            targets = [(host, pid) for host in workers if host.alive() for pid in host.children()]
            targets += [(host, host.process.pid) for host in workers if host.alive()]
            if targets:
                host, pid = rng.choice(targets)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                else:
                    if pid == host.process.pid:
                        host.process.wait()
                        killed("worker main process", host, pid)
                        restarts.append((now + 1, host))
                    else:
                        killed("pool process", host, pid)
        time.sleep(0.05)
    for _when, host in restarts:  # the kills are over: everything runs again
        host.start()
    elapsed = time.monotonic() - started
    print(f"\n{len(jobs)} jobs created, {sum(kills.values())} kills in {elapsed:.0f} s", flush=True)
    return jobs, kills, started


def _settle(jobs: list[str], deadline: float) -> bool:
    """Wait until every job is terminal, or the deadline passes; True if they did."""
    from imagegen.choices import TERMINAL
    from imagegen.models import GenerationJob

    while time.monotonic() < deadline:
        if not GenerationJob.objects.filter(pk__in=jobs).exclude(status__in=TERMINAL).exists():
            return True
        time.sleep(1)
    return False


def _two_sweeps(deadline: float) -> None:
    """Wait for two more runs of beat's sweep: the first one after now has
    removed dead attempts' folders when the second records its run."""
    from imagegen.services import health

    seen = 0
    last = health.last_seen(health.SWEEP).get(health.SWEEP)
    while seen < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        now = health.last_seen(health.SWEEP).get(health.SWEEP)
        if now and now != last:
            seen, last = seen + 1, now


def _attempt_folders(run_dir: Path) -> list[str]:
    return sorted(p.name for p in (run_dir / "tmp").glob("imagegen-[sf]*-*-*"))


# --- the invariants ---------------------------------------------------------


def _report(
    *,
    jobs: list[str],
    kinds: dict[str, Kind],
    tag: str,
    kills: Counter,
    settled: bool,
    settle_time: float,
    stats: dict[str, Any],
    run_dir: Path,
    folders_after_terminal: list[str],
) -> list[str]:
    from django.conf import settings
    from django.db.models import Count

    from imagegen import conf
    from imagegen.choices import TERMINAL
    from imagegen.models import GeneratedImage, GenerationJob
    from imagegen.services import budgets, reports

    rows = {str(j.pk): j for j in GenerationJob.objects.filter(pk__in=jobs)}
    number = {job_id: n for n, job_id in enumerate(jobs)}
    checks: list[tuple[str, bool, str]] = []
    evidence: list[str] = []

    def check(name: str, ok: bool, figure: str, details: list[str] = ()) -> None:
        checks.append((name, ok, figure))
        if not ok:
            evidence.append(f"{name}:")
            evidence.extend(f"  {line}" for line in details[:20])
            if len(details) > 20:
                evidence.append(f"  ... and {len(details) - 20} more")

    # Outcomes, by kind.
    outcome: Counter = Counter()
    for job_id, job in rows.items():
        reason = job.error_code or ("" if job.status == "succeeded" else "?")
        outcome[(kinds[job_id].name, job.status, reason)] += 1
    print("\nJobs by kind and terminal state:\n")
    print(
        table(
            ["kind", "state", "reason (error code)", "jobs"],
            [(*key, n) for key, n in sorted(outcome.items())],
        )
    )
    examples = {}
    for job in rows.values():
        if job.status != "succeeded":
            examples.setdefault(job.error_code, job.error_message[:150])
    if examples:
        print("\nReasons, as the jobs state them:\n")
        for code, message in sorted(examples.items()):
            print(f"- {code}: {message}")

    unfinished = [j for j, job in rows.items() if job.status not in TERMINAL]
    check(
        "every job terminal",
        not unfinished and len(rows) == len(jobs),
        f"{len(rows) - len(unfinished)} / {len(jobs)}",
        [f"{j} ({rows[j].status})" for j in unfinished],
    )
    unexpected = [
        j
        for j, job in rows.items()
        if job.status not in kinds[j].expected
        or (job.status != "succeeded" and kinds[j].code and job.error_code != kinds[j].code)
    ]
    check(
        "every job ends as its kind must",
        not unexpected,
        f"{len(rows) - len(unexpected)} / {len(rows)}",
        [
            f"{j} #{number[j]} {kinds[j].name}: {rows[j].status} {rows[j].error_code} "
            f"{rows[j].error_message[:120]!r}"
            for j in unexpected
        ],
    )

    # Assets and files.
    images = defaultdict(list)
    for image in GeneratedImage.objects.filter(job__in=jobs):
        images[str(image.job_id)].append(image)
    media = Path(settings.MEDIA_ROOT)
    wrong_assets = []
    for job_id, job in rows.items():
        have = sorted(image.index for image in images[job_id])
        want = list(range(len(job.result_urls))) if job.status == "succeeded" else []
        if have != want:
            wrong_assets.append(f"{job_id} {job.status}: assets {have}, outputs {want}")
            continue
        for image in images[job_id]:
            path = media / image.file.name
            if not path.is_file() or path.stat().st_size != image.size:
                wrong_assets.append(f"{job_id}: {image.file.name} missing or not {image.size} B")
    succeeded = [j for j, job in rows.items() if job.status == "succeeded"]
    outputs = sum(len(rows[j].result_urls) for j in succeeded)
    check(
        "assets = outputs (succeeded: one per output, file present; others: none)",
        not wrong_assets,
        f"{sum(len(v) for v in images.values())} assets, {outputs} outputs",
        wrong_assets,
    )
    duplicates = list(
        GeneratedImage.objects.filter(job__in=jobs)
        .values("job", "index")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    names = Counter(image.file.name for group in images.values() for image in group)
    duplicates += [{"file": name, "n": n} for name, n in names.items() if n > 1]
    check("no duplicate asset", not duplicates, str(len(duplicates)), [str(d) for d in duplicates])
    referenced = {
        name
        for group in images.values()
        for image in group
        for name in (image.file.name, image.thumbnail.name)
        if name
    }
    on_disk = {
        str(path.relative_to(media)) for path in (media / "imagegen").rglob("*") if path.is_file()
    }
    orphans = sorted(on_disk - referenced)
    missing = sorted(referenced - on_disk)
    check(
        "no orphan file (every file under imagegen/ is referenced, every reference a file)",
        not orphans and not missing,
        f"{len(on_disk)} files, {len(orphans)} orphans, {len(missing)} missing",
        [f"orphan {name}" for name in orphans] + [f"missing {name}" for name in missing],
    )
    left = _attempt_folders(run_dir)
    check(
        "no finalize attempt folder left after the final sweeps",
        not left,
        f"{len(folders_after_terminal)} when all were terminal, {len(left)} after two sweeps",
        left,
    )

    # Paid provider tasks, from the sandbox's task log.
    tasks: dict[str, list[dict]] = defaultdict(list)
    strays = []
    for task_id, task in stats["tasks"].items():
        match = PROMPT_TAG.match(task["prompt"])
        if not match or match[1] != tag or int(match[2]) >= len(jobs):
            strays.append(task_id)
            continue
        tasks[jobs[int(match[2])]].append(task)
    most = conf.get_setting("SUBMIT_MAX_ATTEMPTS")
    per_job = Counter(len(tasks[j]) for j in jobs)
    over = [j for j in jobs if len(tasks[j]) > most]
    check(
        f"paid provider tasks per job <= SUBMIT_MAX_ATTEMPTS ({most})",
        not over and not strays,
        ", ".join(f"{n} task(s): {c} jobs" for n, c in sorted(per_job.items())),
        [f"{j} #{number[j]} {kinds[j].name}: {len(tasks[j])} tasks" for j in over]
        + [f"task {t} of no job of this round" for t in strays],
    )
    extra = Counter()
    for j in jobs:
        if len(tasks[j]) > 1:
            extra[kinds[j].name] += len(tasks[j]) - 1
    if extra:
        print(
            "\nProvider tasks beyond the first, by kind: "
            + ", ".join(f"{name} {n}" for name, n in sorted(extra.items()))
        )

    # Spend: budgets and the cost report against what the provider charged.
    spend = {
        str(pk): cost
        for pk, cost in budgets.counted(GenerationJob.objects.filter(pk__in=jobs))
        .annotate(cost=budgets.COST)
        .values_list("pk", "cost")
    }
    charged: dict[str, Decimal] = {}
    for j, job in rows.items():
        price = conf.price(job.provider, job.model, job.resolution) or Decimal(0)
        charged[j] = price * sum(1 for t in tasks[j] if t["state"] != "failed")
    under, over_spend = [], []
    for j in jobs:
        counted = spend.get(j, Decimal(0))
        if counted == charged.get(j, Decimal(0)):
            continue
        job = rows[j]
        line = (
            f"{j} #{number[j]} {kinds[j].name}: counted {counted}, charged {charged.get(j)} "
            f"({len(tasks[j])} tasks {[t['state'] for t in tasks[j]]}; status {job.status}, "
            f"attempts {job.submit_attempts}, accepted {job.submit_accepted}, "
            f"lost {job.submit_lost}, task {'yes' if job.provider_task_id else 'no'})"
        )
        (under if counted < charged.get(j, Decimal(0)) else over_spend).append(line)
    total_spend = sum(spend.values(), Decimal(0))
    total_charged = sum(charged.values(), Decimal(0))
    report_total = reports.total(reports.spend()["provider"]).amount
    check(
        "budgets = provider charges, per job",
        not under and not over_spend,
        f"{len(jobs) - len(under) - len(over_spend)} / {len(jobs)} equal; "
        f"{len(under)} under, {len(over_spend)} over",
        [f"under: {line}" for line in under] + [f"over: {line}" for line in over_spend],
    )
    check(
        "cost report total = budgets total = provider charges",
        report_total == total_spend == total_charged,
        f"report {report_total}, budgets {total_spend}, charged {total_charged} "
        f"{conf.get_setting('CURRENCY')}",
    )

    # Recovery time.
    waits = sorted(
        (rows[j].completed_at - rows[j].provider_completed_at).total_seconds()
        for j in succeeded
        if rows[j].provider_completed_at and rows[j].completed_at
    )
    if waits:
        p99 = waits[min(len(waits) - 1, round(0.99 * (len(waits) - 1)))]
        latency = (
            f"p50 {statistics.median(waits):.1f} s, p99 {p99:.1f} s, max {waits[-1]:.1f} s "
            f"({len(waits)} jobs)"
        )
    else:
        latency = "no succeeded job"
    retaken = [
        (rows[j].completed_at - rows[j].provider_completed_at).total_seconds()
        for j in succeeded
        if rows[j].finalize_attempts > 1 and rows[j].provider_completed_at
    ]
    takeovers = f"{len(retaken)} jobs" + (
        f", provider finished -> stored max {max(retaken):.1f} s" if retaken else ""
    )
    check(
        "settled before the deadline (all terminal)",
        settled,
        f"{settle_time:.0f} s after the last kill",
    )

    print("\nInvariants:\n")
    print(
        table(
            ["invariant", "held", "figure"], [(n, "yes" if ok else "NO", f) for n, ok, f in checks]
        )
    )
    print("\nFigures:\n")
    print(
        table(
            ["figure", "value"],
            [
                ("kills", ", ".join(f"{k} {n}" for k, n in sorted(kills.items())) or "none"),
                ("provider finished -> stored", latency),
                ("finalize taken over (attempts > 1)", takeovers),
                ("provider tasks", f"{sum(len(t) for t in tasks.values())} for {len(jobs)} jobs"),
                ("polls", str(sum(job.poll_count for job in rows.values()))),
            ],
        )
    )
    if evidence:
        print("\nEvidence of the failures:\n")
        print("\n".join(evidence))
    return [name for name, ok, _figure in checks if not ok]


if __name__ == "__main__":
    main()
