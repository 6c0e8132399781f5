"""``python -m imagegen.sandbox --host 127.0.0.1 --port 8765``."""

from __future__ import annotations

import argparse
import signal
import sys

from .server import SandboxConfig, SandboxServer


def main(argv: list[str] | None = None) -> None:
    """Run the sandbox until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m imagegen.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", default="2-4", help="seconds, or a range LOW-HIGH")
    parser.add_argument(
        "--callback-mode", default="send", choices=["send", "drop", "duplicate", "delay", "reorder"]
    )
    parser.add_argument("--callback-delay", type=float, default=0.0)
    parser.add_argument("--progress-callbacks", action="store_true")
    parser.add_argument("--format", default="png", choices=["png", "jpeg"])
    parser.add_argument("--api-key", default=None, help="require this bearer key")
    parser.add_argument("--public-url", default=None, help="base URL of result links")
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    low, _, high = args.latency.partition("-")
    config = SandboxConfig(
        latency=(float(low), float(high or low)),
        callback_mode=args.callback_mode,
        callback_delay=args.callback_delay,
        progress_callbacks=args.progress_callbacks,
        image_format=args.format,
        api_key=args.api_key,
        public_url=args.public_url,
        fail_rate=args.fail_rate,
        verbose=args.verbose,
    )
    server = SandboxServer(args.host, args.port, config=config)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"imagegen sandbox listening on {server.api_url}/", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass


if __name__ == "__main__":
    main()
