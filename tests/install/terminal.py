"""A reader's terminal and the processes they leave running, for the install test."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path


class CommandFailed(AssertionError):
    """A block typed into the terminal failed; the message holds its output."""


class Terminal:
    """One bash session fed block by block, like a person typing: ``cd`` and
    ``. .venv/bin/activate`` carry over to the next block. ``set -e``: the first
    failing command fails the block."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.transcript: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.cwd = cwd

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def run(self, script: str, *, timeout: float) -> str:
        """Type ``script``; return its output once it finished, or raise
        :class:`CommandFailed` (failure, or still running after ``timeout``)."""
        marker = f"__done_{uuid.uuid4().hex}__"
        assert self._process.stdin is not None
        self.transcript.append(f"$ {script.strip()}\n")
        # Under `set -e` a failing command ends the session, which fails the test
        # with its output; otherwise the marker reports the block's working directory.
        self._process.stdin.write(f'set -e\n{script}\necho {marker} "$PWD"\n')
        self._process.stdin.flush()
        output: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise CommandFailed(
                    f"still running after {timeout:.0f}s:\n{script}\n{''.join(output)}"
                ) from None
            if line is None:
                code = self._process.wait()
                raise CommandFailed(f"exited with status {code}:\n{script}\n{''.join(output)}")
            if line.startswith(marker):
                self.cwd = Path(line.split(" ", 1)[1].strip())
                text = "".join(output)
                self.transcript.append(text)
                return text
            output.append(line)

    def environment(self) -> dict[str, str]:
        """The session's exported environment (after activating the virtualenv)."""
        path = self.cwd / f".env-{uuid.uuid4().hex}"
        self.run(f"env -0 > {path}", timeout=10)
        pairs = path.read_bytes().decode().split("\0")
        path.unlink()
        return dict(pair.split("=", 1) for pair in pairs if "=" in pair)

    def close(self) -> None:
        if self._process.poll() is None:
            _stop_group(self._process)


class Processes:
    """Long-running commands, each in a process group of its own, logged to files."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[tuple[str, subprocess.Popen, Path]] = []

    def start(self, command: str, *, cwd: Path, env: dict[str, str]) -> Path:
        log = self.logs / f"process-{len(self.started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["bash", "-c", f"exec {command}"],
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.started.append((command, process, log))
        return log

    def check_alive(self) -> None:
        for command, process, log in self.started:
            if process.poll() is not None:
                raise AssertionError(
                    f"{command!r} exited with {process.returncode}:\n{log.read_text()[-4000:]}"
                )

    def report(self) -> str:
        return "\n".join(
            f"--- {command} ---\n{log.read_text(errors='replace')[-3000:]}"
            for command, _process, log in self.started
        )

    def stop(self) -> None:
        for _command, process, _log in reversed(self.started):
            _stop_group(process)


def _stop_group(process: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``grace``."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
