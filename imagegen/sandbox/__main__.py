"""``python -m imagegen.sandbox --host 127.0.0.1 --port 8765``."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Mapping
from typing import Any

from .server import SandboxConfig, SandboxServer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sandbox's options. ``python -m imagegen.sandbox`` and
    ``manage.py imagegen sandbox`` both use this, so they take the same ones."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--latency", type=_latency, default=(2.0, 4.0), help="seconds, or a range LOW-HIGH"
    )
    parser.add_argument(
        "--callback-mode", default="send", choices=["send", "drop", "duplicate", "delay", "reorder"]
    )
    parser.add_argument("--callback-delay", type=float, default=0.0)
    parser.add_argument("--progress-callbacks", action="store_true")
    parser.add_argument("--format", default="png", choices=["png", "jpeg", "webp"])
    parser.add_argument(
        "--credentials",
        action="store_true",
        help="sign every result with a C2PA manifest, as GPT Image's results carry one",
    )
    parser.add_argument("--api-key", default=None, help="require this bearer key")
    parser.add_argument("--public-url", default=None, help="base URL of result links")
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument(
        "--balance", type=float, default=100.0, help="USD the current-balance endpoint reports"
    )
    parser.add_argument("--verbose", action="store_true")


def sandbox_config(options: Mapping[str, Any]) -> SandboxConfig:
    """The run-wide behaviour the options :func:`add_arguments` parsed ask for."""
    return SandboxConfig(
        latency=options["latency"],
        callback_mode=options["callback_mode"],
        callback_delay=options["callback_delay"],
        progress_callbacks=options["progress_callbacks"],
        image_format=options["format"],
        content_credentials=options["credentials"],
        api_key=options["api_key"],
        public_url=options["public_url"],
        fail_rate=options["fail_rate"],
        verbose=options["verbose"],
        balance=options["balance"],
    )


def serve(options: Mapping[str, Any]) -> None:
    """Run the sandbox with the options :func:`add_arguments` parsed, until
    interrupted (Ctrl-C or SIGTERM)."""
    server = SandboxServer(options["host"], options["port"], config=sandbox_config(options))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"imagegen sandbox listening on {server.api_url}/", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass


def main(argv: list[str] | None = None) -> None:
    """Run the sandbox until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m imagegen.sandbox", description=__doc__)
    add_arguments(parser)
    serve(vars(parser.parse_args(argv)))


def _latency(value: str) -> tuple[float, float]:
    """``3`` or ``2-4`` as (low, high) seconds."""
    low, _, high = value.partition("-")
    try:
        latency = (float(low), float(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not seconds or LOW-HIGH: {value!r}") from None
    if not 0 <= latency[0] <= latency[1]:
        raise argparse.ArgumentTypeError(f"needs 0 <= LOW <= HIGH: {value!r}")
    return latency


if __name__ == "__main__":
    main()
