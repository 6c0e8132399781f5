"""Live progress at scale: 500 open job pages, each reading its job's status
JSON, against one gunicorn host (2 workers): what one read costs (queries,
in-process) and how many reads per second the host answers beside a bare
view, side by side in the same run (wrk).

    .venv/bin/python -m benchmarks.status_polling [--pages 500 --seconds 10]

Each page reads the admin's status URL of its own job (running, as a page
polls it) with an editor's session (not a superuser: the permission checks
are a real editor's). Three ways at full load: a full answer (200, the JSON),
a revalidation that finds the job unchanged (``If-None-Match``: 304, no
body, what a page's browser sends), and the bare view; then the pages as
they poll: one connection per page, each reading every 1.5 s (the page's
interval), revalidating. Targets: at most 1 query for the view's own data
(the job and its images, joined); the status read's rate at least 0.5 of
the bare view's.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from .common import ROOT, empty_tables, free_port, setup_django, start_web, stop, summary, table
from .webhook_ingest import _ms, _wrk

LUA = """
local paths, tags = {}, {}
for line in io.lines("%(file)s") do
  local path, tag = line:match("^(%%S+) (.+)$")
  paths[#paths + 1] = path
  tags[#tags + 1] = tag
end
local threads, counter, mode, pause = %(threads)d, 0, "status", 0
local next_id = 0
function setup(thread) thread:set("thread_id", next_id); next_id = next_id + 1 end
-- args: "bare", "signed-in", "status" (200) or "etag" (If-None-Match: 304);
-- a pause (ms) before each request.
function init(args)
  mode = args[1]
  counter = thread_id
  pause = tonumber(args[2]) or 0
end
function delay() return pause end
function request()
  local i = (counter %% #paths) + 1
  counter = counter + threads
  local headers = {["Cookie"] = "%(cookie)s", ["Accept"] = "application/json"}
  if mode == "bare" or mode == "signed-in" then
    return wrk.format("GET", "/" .. mode .. "/", headers)
  end
  if mode == "etag" then headers["If-None-Match"] = tags[i] end
  return wrk.format("GET", paths[i], headers)
end
"""

#: Seconds between two reads of an open job page (imagegen/status_poll.js).
PAGE_INTERVAL = 1.5


def cpu_ms(client, url: str, headers: dict | None = None, reads: int = 50) -> float:
    """CPU of one read through Django's request handling, in-process (mean of ``reads``)."""
    client.get(url, headers=headers)
    began = time.process_time()
    for _ in range(reads):
        client.get(url, headers=headers)
    return (time.process_time() - began) / reads * 1000


def query_kinds(queries: list[dict]) -> str:
    """What each query of a request reads, in order (``session, user, ...``)."""
    names = []
    for query in queries:
        table_name = re.search(r'FROM "(\w+)"', query["sql"])
        names.append(table_name.group(1) if table_name else query["sql"][:20])
    return ", ".join(names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    setup_django()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse
    from django.utils import timezone

    from imagegen.models import GenerationJob
    from tests.factories import EDITOR, make_user

    empty_tables()
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username="bench-poller").delete()
    editor = make_user(get_user_model(), *EDITOR, username="bench-poller")
    now = timezone.now()
    jobs = GenerationJob.objects.bulk_create(
        GenerationJob(
            provider="sandbox",
            model="gpt-image-2",
            mode="text-to-image",
            prompt=f"page {n}",
            resolution="1k",
            aspect_ratio="auto",
            status="running",
            provider_task_id=f"task-{n}",
            created_by=editor,
            submitted_at=now,
            deadline_at=now + timezone.timedelta(hours=1),
            next_poll_at=now + timezone.timedelta(hours=1),
        )
        for n in range(args.pages)
    )
    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(editor)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"

    # In-process: the queries of one read, full and revalidated.
    url = reverse("admin:imagegen_generationjob_status", args=[jobs[0].pk])
    client.get(url)  # the first read of a process fills its caches (content types)
    # Each request of the test client empties the query log: keep them at once.
    with CaptureQueriesContext(connection) as context:
        first = client.get(url)
    full = context.captured_queries
    with CaptureQueriesContext(connection) as context:
        again = client.get(url, headers={"if-none-match": first["ETag"]})
    revalidated = context.captured_queries
    assert (first.status_code, again.status_code) == (200, 304)
    own = [q for q in full if "imagegen_" in q["sql"]]
    cpu = {
        "bare": cpu_ms(client, "/bare/"),
        "signed-in": cpu_ms(client, "/signed-in/"),
        "status": cpu_ms(client, url),
        "etag": cpu_ms(client, url, {"if-none-match": first["ETag"]}),
    }

    lines = []
    for job in jobs:
        path = reverse("admin:imagegen_generationjob_status", args=[job.pk])
        lines.append(f"{path} {client.get(path)['ETag']}")
    workdir = Path(tempfile.mkdtemp(prefix="imagegen-wrk-"))
    (workdir / "pages.txt").write_text("\n".join(lines) + "\n")
    threads = 2
    script = workdir / "status.lua"
    script.write_text(LUA % {"file": workdir / "pages.txt", "threads": threads, "cookie": cookie})

    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.settings", "PYTHONPATH": str(ROOT)}
    server = start_web(port, env, log_level="error")
    try:
        base = f"http://127.0.0.1:{port}"
        # Untimed: both workers have booted and loaded the site before the runs.
        _wrk(base, str(script), 3, threads, 4, "status")
        run = {
            mode: _wrk(base, str(script), args.seconds, threads, args.connections, mode)
            for mode in ("bare", "signed-in", "status", "etag")
        }
        pages = _wrk(
            base,
            str(script),
            args.seconds,
            threads,
            args.pages,
            "etag",
            f"{PAGE_INTERVAL * 1000:.0f}",
        )
    finally:
        stop(server)
    print(
        f"Live progress at scale ({args.pages} running jobs, one editor's session; "
        f"gunicorn -w 2, wrk -t{threads}, -c{args.connections} at full load, "
        f"{args.seconds} s each, same run):\n"
    )
    print(
        table(
            ["request", "queries", "what they read"],
            [
                ("status, full answer (200)", len(full), query_kinds(full)),
                (
                    "status, unchanged (304)",
                    len(revalidated),
                    query_kinds(revalidated),
                ),
            ],
        )
    )
    print(
        f"\n{len(own)} of them imagegen's own (the job and its images, joined); the rest are "
        "Django's session, user and permission reads, every admin request's.\n"
    )
    names = {
        "bare": "bare view",
        "signed-in": "signed-in floor (session, user, permission)",
        "status": "status JSON, full answer (200)",
        "etag": "status JSON, unchanged (304)",
    }
    rows = [
        (
            names[mode],
            f"{cpu[mode]:.2f}",
            f"{result['rate']:.0f}",
            result["p50"],
            result["p99"],
            result["errors"],
            result["socket_errors"],
        )
        for mode, result in run.items()
    ]
    rows.append(
        (
            f"{args.pages} pages, each every {PAGE_INTERVAL:g} s (304s)",
            "",
            f"{pages['rate']:.0f}",
            pages["p50"],
            pages["p99"],
            pages["errors"],
            pages["socket_errors"],
        )
    )
    print(
        table(
            [
                "endpoint",
                "CPU ms in-process",
                "requests/s",
                "p50",
                "p99",
                "errors",
                "socket errors",
            ],
            rows,
        )
    )
    offered = args.pages / PAGE_INTERVAL
    full_ratio = run["status"]["rate"] / run["bare"]["rate"]
    etag_ratio = run["etag"]["rate"] / run["bare"]["rate"]
    floor_ratio = run["etag"]["rate"] / run["signed-in"]["rate"]
    print(
        f"\nstatus / bare view: {full_ratio:.2f} full, {etag_ratio:.2f} unchanged (target >= 0.5); "
        f"unchanged / signed-in floor: {floor_ratio:.2f}; "
        f"{args.pages} pages offer {offered:.0f} reads/s, answered {pages['rate']:.0f}/s"
    )
    summary(
        "status_polling",
        "status read: imagegen's queries (the job and its images)",
        f"{len(own)} (of {len(full)} with Django's auth)",
        "<= 1",
        len(own) <= 1,
    )
    summary(
        "status_polling",
        "status reads/s / bare view/s: unchanged (304); full",
        f"{etag_ratio:.2f}; {full_ratio:.2f}",
        ">= 0.5",
        etag_ratio >= 0.5,
    )
    summary(
        "status_polling",
        "status reads/s (304) / signed-in floor/s (information)",
        f"{floor_ratio:.2f}",
    )
    summary(
        "status_polling",
        f"{args.pages} pages every {PAGE_INTERVAL:g} s: answered/s of offered; p99",
        f"{pages['rate']:.0f} of {offered:.0f}; {_ms(pages['p99']):.0f} ms",
    )


if __name__ == "__main__":
    main()
