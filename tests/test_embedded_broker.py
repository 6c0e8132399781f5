"""The example site's embedded broker: kombu's SQLAlchemy transport on a
SQLite file under the site's VAR_DIR, as imagegen/sqlite_broker.py hardens it
(project/settings.py's default, no server), with workers on the threads pool.

The soak runs all the real processes of the example site, from a copy of
project/ in a temporary folder so that its defaults (VAR_DIR = BASE_DIR/var)
are the ones exercised, started at once on a new broker file: two workers on
the site's default pool (threads; concurrency 2 and 4), beat sending imagegen's
sweeper every second, and three publisher processes of two threads each
sending 600 tasks, every fifth a relay that publishes from inside a worker
(720 messages).

Delivery on this transport is exactly once while the broker answers: a message
is claimed inside one SQLite write transaction (BEGIN IMMEDIATE), so two
consumers cannot both take it. (A broker error would make the worker reconnect
and put back the messages it holds: at least once; the test would see the
error in the logs.) So every task is recorded exactly once, and the sweeps run
equal the sweeps beat sent, less at most one that beat may have logged but not
sent when it was stopped.

The other tests reproduce the faults that imagegen/sqlite_broker.py and the threads
pool exist for, with bare kombu connections and SQLite, and show that the
example site's broker has none.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from kombu import Connection

from imagegen.sqlite_broker import Transport

from .conftest import PROCESSES_TIMEOUT, wait_until

pytestmark = pytest.mark.timeout(PROCESSES_TIMEOUT)

REPO = Path(__file__).resolve().parent.parent
PUBLISHERS, THREADS, PER_PUBLISHER = 3, 2, 200
#: How long a step (migrate, a worker's start, the publishing, the consuming)
#: may take before it is taken for a hang: on a busy CI machine (the tests and
#: servers of five passes on two cores) a step has taken over 60 s and the soak
#: 104-122 s in all; the module's limit is PROCESSES_TIMEOUT.
HANG_LIMIT = 120
#: What must never appear in a worker's or beat's log.
FAILURES = re.compile(
    r"Unrecoverable error|Traceback|database is locked|Connection to broker lost"
    r"|: (ERROR|CRITICAL)/"
)


class Site:
    """A copy of the example site with its processes, logs and records."""

    def __init__(self, root: Path) -> None:
        self.root = root / "site"
        self.var = self.root / "var"
        self.cwd = root / "cwd"  # every process runs here: it must stay empty
        self.records = root / "records"
        self.logs = root / "logs"
        shutil.copytree(
            REPO / "project", self.root / "project", ignore=shutil.ignore_patterns("__pycache__")
        )
        for folder in (self.cwd, self.records, self.logs):
            folder.mkdir()
        self.env = {
            key: value
            for key, value in os.environ.items()
            # Nothing may move the broker, database or files off the defaults.
            if key not in {"CELERY_BROKER_URL", "DATABASE_URL", "APIXO_API_KEY"}
            and not key.startswith("IMAGEGEN_")
        }
        self.env.update(
            DJANGO_SETTINGS_MODULE="project.settings",
            PYTHONPATH=os.pathsep.join([str(self.root), str(REPO)]),
            PYTHONDONTWRITEBYTECODE="1",
            IMAGEGEN_SWEEP_INTERVAL="1",
            SOAK_RECORD_DIR=str(self.records),
        )
        self.processes: dict[str, subprocess.Popen] = {}

    def files(self) -> set[Path]:
        """Everything in the site's folder, relative to it."""
        return {path.relative_to(self.root) for path in self.root.rglob("*")}

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=HANG_LIMIT,
            check=False,
        )

    def start(self, name: str, *args: str) -> None:
        with (self.logs / f"{name}.log").open("w") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, *args],
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self, name: str) -> int:
        process = self.processes[name]
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=60)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()

    def broker(self, query: str) -> int:
        with sqlite3.connect(self.var / "celery-broker.sqlite3", timeout=30) as connection:
            return connection.execute(query).fetchone()[0]

    def recorded(self) -> Counter:
        return Counter(path.name.split(".")[0] for path in self.records.iterdir())


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = Site(tmp_path)
    try:
        yield site
    finally:
        for name, process in site.processes.items():
            if process.poll() is None:
                process.kill()
                process.wait()
            print(f"== {name}.log (last 3000 characters)\n{site.log(name)[-3000:]}")


def test_the_sqlite_broker_survives_workers_beat_and_publishers(site: Site) -> None:
    before = site.files()
    migrated = site.run("-m", "django", "migrate", "--verbosity", "0")
    assert migrated.returncode == 0, migrated.stderr

    worker = ["-m", "celery", "-A", "project", "worker", "-l", "INFO"]
    worker += ["-I", "tests.embedded_broker_tasks"]
    site.start("worker-1", *worker, "-n", "worker-1@%h", "-c", "2")
    site.start("worker-2", *worker, "-n", "worker-2@%h", "-c", "4")
    site.start("beat", "-m", "celery", "-A", "project", "beat", "-l", "INFO")
    for name, concurrency in (("worker-1", 2), ("worker-2", 4)):
        wait_until(lambda name=name: " ready." in site.log(name), timeout=HANG_LIMIT, what=name)
        assert f"Connected to sqlite:///{site.var}/celery-broker.sqlite3" in site.log(name)
        assert f"concurrency: {concurrency} (thread)" in site.log(name)

    publishers = [f"publisher-{i}" for i in range(PUBLISHERS)]
    for name in publishers:
        publish = ["-m", "tests.embedded_broker_tasks", name, str(PER_PUBLISHER), str(THREADS)]
        site.start(name, *publish)
    exits = [site.processes[name].wait(timeout=HANG_LIMIT) for name in publishers]
    assert exits == [0] * PUBLISHERS
    keys = {f"{name}-{n}" for name in publishers for n in range(PER_PUBLISHER)}
    wait_until(lambda: set(site.recorded()) >= keys, timeout=HANG_LIMIT, what="every task recorded")

    wait_until(
        lambda: site.log("beat").count("Sending due task imagegen-sweep") >= 5,
        timeout=30,
        what="five sweeps sent by beat",
    )
    assert site.stop("beat") == 0
    sent = site.log("beat").count("Sending due task imagegen-sweep")

    def sweeps_run() -> int:
        return sum(
            len(re.findall(r"Task imagegen\.sweep\[[^]]+\] succeeded", site.log(name)))
            for name in ("worker-1", "worker-2")
        )

    wait_until(lambda: sweeps_run() >= sent - 1, timeout=30, what="beat's sweeps consumed")
    assert sent - 1 <= sweeps_run() <= sent

    # Delivered messages are deleted: nothing is left once all are consumed.
    assert site.broker("SELECT count(*) FROM kombu_message") == 0

    assert [site.processes[name].poll() for name in ("worker-1", "worker-2")] == [None, None]
    assert site.stop("worker-1") == 0
    assert site.stop("worker-2") == 0
    for name in site.processes:
        assert not FAILURES.search(site.log(name)), site.log(name)

    recorded = site.recorded()
    assert set(recorded) == keys
    assert {key: count for key, count in recorded.items() if count != 1} == {}

    written = site.files() - before
    var = Path("var")
    assert {path for path in written if path != var and var not in path.parents} == set()
    assert Path("var/celery-broker.sqlite3") in written
    assert list(site.cwd.iterdir()) == []


#: imagegen/sqlite_broker.py; kombu's SQLAlchemy transport as is; kombu's file-system transport.
HARDENED, KOMBU_SQLA, FILESYSTEM = "hardened", "kombu-sqla", "filesystem"


def _connection(kind: str, folder: Path) -> Connection:
    if kind == HARDENED:
        return Connection(f"sqlite:///{folder / 'broker.sqlite3'}", transport=Transport)
    if kind == KOMBU_SQLA:
        return Connection(f"sqla+sqlite:///{folder / 'broker.sqlite3'}")
    queue = folder / "queue"
    queue.mkdir(exist_ok=True)
    options = {"data_folder_in": str(queue), "data_folder_out": str(queue)}
    # Consumers waiting for work poll often; the faster, the sooner the fault shows.
    options |= {"control_folder": str(folder), "polling_interval": 0.001}
    return Connection("filesystem://", transport_options=options)


def _run_together(kind: str, folder: Path, *targets: tuple[Callable, tuple]) -> None:
    """One forked process per ``(function, args)``, called as
    ``function(kind, folder, start, *args)``; each waits on ``start`` (a
    barrier) after opening its connection, so that all go on at once."""
    fork = multiprocessing.get_context("fork")
    start = fork.Barrier(len(targets))
    processes = [
        fork.Process(target=function, args=(kind, folder, start, *args))
        for function, args in targets
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=HANG_LIMIT + 60)
        assert process.exitcode == 0


def _declare_and_send(kind: str, folder: Path, start: Any, errors: Any) -> None:
    """Declare the queue on a new file (creating its tables) and send one message."""
    try:
        with _connection(kind, folder) as connection:
            start.wait()
            connection.SimpleQueue("soak").put({"key": os.getpid()})
    except Exception as exc:
        errors.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.parametrize(("kind", "fails"), [(HARDENED, False), (KOMBU_SQLA, True)])
def test_processes_opening_a_new_broker_file_at_once(
    tmp_path: Path, kind: str, fails: bool
) -> None:
    """Six processes open a new broker file at the same moment, ten times: on
    kombu's SQLAlchemy transport some fail creating its tables or its queue's
    row (a worker failing so stops with "Unrecoverable error: IntegrityError");
    on imagegen/sqlite_broker.py none fails and every message arrives."""
    errors = multiprocessing.get_context("fork").Queue()
    failures: list[str] = []
    for trial in range(10):
        folder = tmp_path / str(trial)
        folder.mkdir()
        _run_together(kind, folder, *[(_declare_and_send, (errors,))] * 6)
        while not errors.empty():
            failures.append(errors.get())
        if not fails:
            assert failures == []
            with _connection(kind, folder) as connection:
                queue = connection.SimpleQueue("soak")
                assert len({queue.get(timeout=5).payload["key"] for _ in range(6)}) == 6
    if fails:
        assert failures, (
            "kombu's transport no longer fails: imagegen/sqlite_broker.py's retries may go"
        )
        assert all(
            "IntegrityError" in failure or "already exists" in failure for failure in failures
        ), failures


def _dbapi_connection(connection: Connection) -> Any:
    """The SQLite connection the broker connection's session uses."""
    session = connection.default_channel.session
    dbapi = session.connection().connection.dbapi_connection
    session.commit()
    return dbapi


@pytest.mark.parametrize(("kind", "shared"), [(HARDENED, False), (KOMBU_SQLA, True)])
def test_a_forked_process_gets_sqlite_connections_of_its_own(
    tmp_path: Path, kind: str, shared: bool
) -> None:
    """A prefork worker forks pool processes after it opened the broker (it
    replaces them), and a SQLite connection must not cross a fork: kombu's
    transport pools connections, so a forked process is handed its parent's;
    imagegen/sqlite_broker.py opens one per use."""
    fork = multiprocessing.get_context("fork")
    same = fork.Value("b", 0)
    with _connection(kind, tmp_path) as connection:
        parents = _dbapi_connection(connection)

        def child() -> None:
            with _connection(kind, tmp_path) as connection:
                same.value = _dbapi_connection(connection) is parents

        process = fork.Process(target=child)
        process.start()
        process.join(timeout=30)
    assert process.exitcode == 0
    assert bool(same.value) is shared


@pytest.mark.parametrize("locked", [True, False])
def test_a_process_forked_while_its_parent_holds_the_lock_cannot_write(
    tmp_path: Path, locked: bool
) -> None:
    """Why the example site's workers run threads, not prefork: SQLite keeps
    lock state per process, so a process forked while another thread of its
    parent held the broker file's write lock (as a prefork worker's consumer
    thread does while it polls, when a pool process is replaced) fails every
    write with "database is locked", even after the parent released the lock;
    forked while the parent held none, it writes."""
    fork = multiprocessing.get_context("fork")
    with _connection(HARDENED, tmp_path) as connection:
        connection.SimpleQueue("soak")  # creates the file's tables
    holding, forked, released = threading.Event(), threading.Event(), fork.Event()
    outcome = fork.Queue()

    def parent_thread() -> None:
        with contextlib.closing(
            sqlite3.connect(tmp_path / "broker.sqlite3", isolation_level=None)
        ) as db:
            if locked:
                db.execute("BEGIN IMMEDIATE")
            holding.set()
            forked.wait(timeout=30)
            if locked:
                db.execute("COMMIT")

    def child() -> None:
        released.wait(timeout=30)
        try:
            with contextlib.closing(sqlite3.connect(tmp_path / "broker.sqlite3", timeout=1)) as db:
                db.execute("INSERT INTO kombu_queue (name) VALUES ('child')")
                db.commit()
            outcome.put("written")
        except sqlite3.OperationalError as exc:
            outcome.put(str(exc))

    thread = threading.Thread(target=parent_thread)
    thread.start()
    holding.wait(timeout=30)
    process = fork.Process(target=child)
    process.start()
    forked.set()
    thread.join(timeout=30)
    released.set()
    process.join(timeout=60)
    assert outcome.get(timeout=5) == ("database is locked" if locked else "written")


def _produce(kind: str, folder: Path, start: Any, prefix: str, count: int, size: int) -> None:
    with _connection(kind, folder) as connection:
        queue = connection.SimpleQueue("soak")
        start.wait()
        for n in range(count):
            queue.put({"key": f"{prefix}-{n}", "pad": "x" * size})


def _consume(kind: str, folder: Path, start: Any, total: int, done: Any, results: Any) -> None:
    """Take messages until all ``total`` have arrived, or until a consumer failed
    (then ``done`` is -1)."""
    keys, error = [], None
    try:
        with _connection(kind, folder) as connection:
            queue = connection.SimpleQueue("soak")
            start.wait()
            deadline = time.monotonic() + HANG_LIMIT
            while 0 <= done.value < total and time.monotonic() < deadline:
                try:
                    message = queue.get(timeout=0.1)
                except Empty:
                    continue
                keys.append(message.payload["key"])
                message.ack()
                with done.get_lock():
                    if done.value >= 0:
                        done.value += 1
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        done.value = -1
    results.put((keys, error))


@pytest.mark.parametrize(
    ("kind", "size", "count"),
    [(HARDENED, 1_000, 200), (HARDENED, 300_000, 40), (FILESYSTEM, 300_000, 40)],
)
def test_consumers_reading_while_producers_write(
    tmp_path: Path, kind: str, size: int, count: int
) -> None:
    """Three producers send ``count`` messages each while three consumers take
    them, messages of about 1 KB (a Celery task's) or 300 KB: kombu's
    file-system transport, the example site's broker before, hands a consumer a
    file still being written, and the consumer fails with JSONDecodeError (a
    Celery worker so fails with "Unrecoverable error: JSONDecodeError" and
    stops); on imagegen/sqlite_broker.py every message arrives exactly once."""
    fork = multiprocessing.get_context("fork")
    total = 3 * count
    done, results = fork.Value("i", 0), fork.Queue()
    producers = [(_produce, (f"p{i}", count, size)) for i in range(3)]
    _run_together(kind, tmp_path, *producers, *[(_consume, (total, done, results))] * 3)
    received, errors = Counter(), []
    for _ in range(3):
        keys, error = results.get(timeout=5)
        received.update(keys)
        errors += [error] if error else []
    if kind == FILESYSTEM:
        assert errors, "kombu's file-system transport no longer fails under this load"
        assert all(error.startswith("JSONDecodeError") for error in errors), errors
    else:
        assert errors == []
        assert received == Counter(f"p{i}-{n}" for i in range(3) for n in range(count))
        with sqlite3.connect(tmp_path / "broker.sqlite3") as broker:
            # Delivered messages are deleted, not kept (as kombu does) for ever.
            assert broker.execute("SELECT count(*) FROM kombu_message").fetchone() == (0,)
