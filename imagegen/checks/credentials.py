"""Checks of the Content Credentials settings (``C2PA_*``, docs/provenance.md)."""

from __future__ import annotations

import io
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from django.core.checks import CheckMessage, Error
from PIL import Image

from .. import conf, credentials, provenance
from ..exceptions import ImagegenConfigurationError, ImageRejectedError

HINT = (
    "C2PA_SIGNING_CERTIFICATES and C2PA_SIGNING_KEY: paths of PEM files (or the PEM "
    "texts), both or neither; `manage.py imagegen c2pa-identity --out DIR` makes a "
    "development identity. See docs/provenance.md."
)


def check() -> list[CheckMessage]:
    """``imagegen.E034``: an identity or trust anchors imagegen cannot use."""
    if not isinstance(conf.get_setting("C2PA_INCLUDE_PROMPT"), bool):
        return [Error("IMAGEGEN['C2PA_INCLUDE_PROMPT'] must be True or False.", id="imagegen.E034")]
    configured = any(
        conf.get_setting(key)
        for key in ("C2PA_SIGNING_CERTIFICATES", "C2PA_SIGNING_KEY", "C2PA_TRUST_ANCHORS")
    )
    if not configured:
        return []
    if not credentials.available():
        return [
            Error(
                "Content Credentials settings are set, but the c2pa extra is not installed.",
                hint='pip install "django-imagegen[c2pa]"',
                id="imagegen.E034",
            )
        ]
    try:
        credentials._trust_anchors()
        identity = credentials.signing_identity()
        if identity is not None:
            _sign_a_sample(identity)
    except (ImagegenConfigurationError, ImageRejectedError) as exc:
        return [Error(str(exc), hint=HINT, id="imagegen.E034")]
    return []


def _sign_a_sample(identity: credentials.SigningIdentity) -> None:
    """Sign a 1-pixel PNG: a chain that does not match its key, or a
    certificate C2PA refuses (a CA, no signing usage), fails here rather
    than in every finalize."""
    record = provenance.Provenance(
        prompt="", model="check", provider="check", job_id="check", created_at=datetime.now(UTC)
    )
    sample = io.BytesIO()
    Image.new("RGB", (1, 1)).save(sample, "PNG")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "sample.png")
        path.write_bytes(sample.getvalue())
        credentials.sign(
            path, path, record, content_type="image/png", identity=identity, parent=False
        )
