"""Memory: peak RSS growth of a worker process signing Content Credentials
(``imagegen.credentials.sign``, as finalize does with a signing identity)
into a 1K and a 4K result, PNG, JPEG and WebP, each carrying the provider's
manifest (the sandbox's), which becomes the parent ingredient; and of
detecting that manifest (``has_manifest``, as finalize does first).

    .venv/bin/python -m benchmarks.c2pa_memory

The results are the sandbox's random-pixel pictures (the largest files),
made and signed by the sandbox in this process; each measurement runs in a
fresh process that signs a small file first (libraries loaded), then the
measured one, file to file; the figure is the peak RSS during that signing
(VmHWM, reset just before) less the RSS before it. Target: under 64 MB at
4K, and growth that does not track the file size (met for PNG, which
imagegen signs by streaming; JPEG is streamed too but the library's JPEG
reader holds the file; WebP goes through c2pa-python's Builder.sign).
The figures are in docs/provenance.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import summary, table

FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def _reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux 4.0+), so the peak is this step's alone."""
    Path("/proc/self/clear_refs").write_text("5")


def measure(path: str, fmt: str, warm_up: str) -> dict:
    """In this (fresh) process: sign ``warm_up``, then ``path``; the growth of the second."""
    from django.conf import settings

    settings.configure(INSTALLED_APPS=[], USE_TZ=True, IMAGEGEN={})
    from django.utils import timezone

    from imagegen import credentials, provenance
    from imagegen.c2pa_identity import make_identity

    test_identity = make_identity("es256")
    identity = credentials.load_identity(test_identity.certificates, test_identity.private_key)
    record = provenance.Provenance(
        prompt="benchmark", model="gpt-image-2", provider="sandbox", job_id="1",
        created_at=timezone.now(),
    )  # fmt: skip

    def sign(source: str) -> None:
        target = source + ".signed"
        credentials.sign(
            source, target, record, content_type=FORMATS[fmt], identity=identity, parent=True
        )
        Path(target).unlink()

    def growth(step, *args) -> float:
        _reset_peak()
        before = _status_mb("VmRSS")
        step(*args)
        return _status_mb("VmHWM") - before

    sign(warm_up)
    credentials.has_manifest(warm_up, FORMATS[fmt])
    return {
        "detect_mb": growth(credentials.has_manifest, path, FORMATS[fmt]),
        "sign_mb": growth(sign, path),
    }


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--one":
        print(json.dumps(measure(*sys.argv[2:])))
        return
    from imagegen.sandbox import render

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for fmt in FORMATS:
            small = Path(folder, f"small.{fmt}")
            small.write_bytes(
                render.with_credentials(render.render("w", "1k", "1:1", fmt), fmt, "m")
            )
            for resolution in ("1k", "4k"):
                data = render.render("memory", resolution, "1:1", fmt, noise=True)
                path = Path(folder, f"{resolution}.{fmt}")
                path.write_bytes(render.with_credentials(data, fmt, "gpt-image-2"))
                del data
                out = subprocess.run(
                    [sys.executable, "-m", "benchmarks.c2pa_memory", "--one", str(path), fmt,
                     str(small)],
                    capture_output=True,
                    text=True,
                    check=True,
                )  # fmt: skip
                result = json.loads(out.stdout.strip().splitlines()[-1])
                size = path.stat().st_size / 2**20
                rows.append((fmt, resolution, size, result["detect_mb"], result["sign_mb"]))
                path.unlink()
    print("Peak RSS growth detecting and signing one result (fresh process each):\n")
    print(
        table(
            ["format", "output", "file MB", "detect MB", "sign MB", "sign / file"],
            [(f, r, f"{s:.1f}", f"{d:.1f}", f"{m:.1f}", f"{m / s:.2f}") for f, r, s, d, m in rows],
        )
    )
    worst = max(m for _, r, _, _, m in rows if r == "4k")
    print(f"\n4K signing growth, worst format: {worst:.1f} MB (target < 64 MB)")
    summary("c2pa_memory", "4K C2PA signing RSS growth, MB", f"{worst:.1f}", "< 64", worst < 64)


if __name__ == "__main__":
    main()
