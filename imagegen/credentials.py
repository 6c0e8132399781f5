"""Content Credentials (C2PA): detect, sign and read manifests in stored images.

A C2PA manifest binds a hash of the file's bytes, so any change to a file
that carries one (imagegen's own XMP included) breaks it. :func:`write`
therefore decides how a downloaded result gets its provenance:

* a signing identity is configured (``C2PA_SIGNING_CERTIFICATES`` and
  ``C2PA_SIGNING_KEY``): a new manifest is signed into the file, with the
  provider's manifest, if it had one, as its parent ingredient;
* no identity, and the provider's file carries a manifest: the file is kept
  byte-for-byte, imagegen's provenance lives in the database only;
* no identity and no manifest: imagegen's XMP (:func:`.provenance.embed`).

The ``c2pa`` extra (``c2pa-python``, ``cryptography``) is optional: without
it, a manifest is still detected by its container box, so it is never broken,
but nothing can be signed or validated.

Signing streams from one file to another and never decodes the image (C2PA
thumbnails are turned off for that reason); a PNG or JPEG is never held in
memory (:mod:`.c2pa_streaming`), a WebP is, by the library.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from django.template.loader import render_to_string
from django.utils.translation import pgettext_lazy

from . import __version__, c2pa_streaming, conf, provenance
from .exceptions import ImagegenConfigurationError, ImageRejectedError

__all__ = [
    "JOB_ASSERTION",
    "Credentials",
    "Manifest",
    "SigningIdentity",
    "available",
    "has_manifest",
    "read",
    "render_summary",
    "sign",
    "signing_identity",
    "summary",
    "write",
]

logger = logging.getLogger("imagegen")

#: Label of the assertion holding imagegen's job facts. Reverse-domain form of
#: imagegen's XMP namespace host (``imagegen.invalid``, which no one can own).
JOB_ASSERTION = "invalid.imagegen.job"

#: What :func:`write` did to a file.
SIGNED = "signed"
KEPT = "kept"
EMBEDDED = "xmp"

#: Ingredient labels the new manifest's action points at: the provider's
#: result, and each reference image (``reference-0``...).
_PARENT = "provider-result"
_INPUT = "reference-"

#: c2pa-python's validation states, as imagegen names them.
_STATES = {"Trusted": "trusted", "Valid": "valid", "Invalid": "invalid"}


def available() -> bool:
    """Whether the ``c2pa`` extra is installed (signing and reading need it)."""
    try:
        import c2pa  # noqa: F401
    except ImportError:
        return False
    return True


def _c2pa() -> Any:
    try:
        import c2pa
    except ImportError:
        raise ImagegenConfigurationError(
            'Content Credentials need the "c2pa" extra: pip install "django-imagegen[c2pa]".'
        ) from None
    return c2pa


# -- Identity -----------------------------------------------------------------


@dataclass(frozen=True)
class SigningIdentity:
    """A certificate chain (PEM, signing certificate first) and its private key."""

    certificates: str
    private_key: str = field(repr=False)
    #: c2pa's name of the signature algorithm, from the key: es256, es384, ed25519...
    algorithm: str


def signing_identity() -> SigningIdentity | None:
    """The identity in settings, or None when imagegen does not sign.

    ``C2PA_SIGNING_CERTIFICATES`` and ``C2PA_SIGNING_KEY`` are each a path to
    a PEM file, or the PEM text itself (from a secret store or environment).
    Raises :class:`ImagegenConfigurationError` when only one is set, a file
    cannot be read, or the key is of a kind C2PA cannot sign with.
    """
    certificates = conf.get_setting("C2PA_SIGNING_CERTIFICATES")
    key = conf.get_setting("C2PA_SIGNING_KEY")
    if not certificates and not key:
        return None
    if not certificates or not key:
        raise ImagegenConfigurationError(
            "Set both C2PA_SIGNING_CERTIFICATES and C2PA_SIGNING_KEY, or neither."
        )
    return load_identity(
        _pem(certificates, "C2PA_SIGNING_CERTIFICATES"), _pem(key, "C2PA_SIGNING_KEY")
    )


def load_identity(certificates: str, private_key: str) -> SigningIdentity:
    """A :class:`SigningIdentity` from PEM texts, its algorithm read from the key."""
    return SigningIdentity(certificates, private_key, _algorithm(private_key))


def _pem(value: str | os.PathLike, name: str) -> str:
    if isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
        return value
    try:
        return Path(value).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        # The path only, never the file's content: it may be a key.
        raise ImagegenConfigurationError(
            f"{name}: cannot read {os.fspath(value)!r} ({exc.__class__.__name__})."
        ) from None


def _algorithm(private_key: str) -> str:
    try:
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
    except ImportError:
        _c2pa()  # the same message: the extra brings cryptography
        raise
    try:
        key = load_pem_private_key(private_key.encode(), password=None)
    except (ValueError, TypeError):
        raise ImagegenConfigurationError(
            "C2PA_SIGNING_KEY is not an unencrypted PEM private key."
        ) from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        curves = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in curves:
            return curves[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    raise ImagegenConfigurationError(
        "C2PA_SIGNING_KEY must be an Ed25519, EC P-256/P-384/P-521 or RSA key."
    )


# -- Detecting and writing ------------------------------------------------------


def has_manifest(path: str | os.PathLike, content_type: str) -> bool:
    """Whether the image at ``path`` carries a C2PA manifest store, valid or not.

    Read with ``c2pa.Reader`` when the extra is installed, without
    validating (which would hash the whole file in memory); a store it
    cannot parse, or a remote manifest the file points to, still counts.
    Without the extra, the container's C2PA box is looked for.
    """
    if not available():
        return provenance.has_c2pa_box(path)
    c2pa = _c2pa()
    with open(path, "rb") as stream:
        try:
            # Found, not validated: validating hashes the whole file in memory.
            reader = c2pa.Reader.try_create(content_type, stream, None, _context(validate=False))
        except c2pa.C2paError:
            # Not "no manifest" (try_create answers None for that): one it
            # cannot parse, or a remote one; either breaks if the file changes.
            return True
        if reader is None:
            return False
        reader.close()
        return True


def write(
    path: str | os.PathLike,
    record: provenance.Provenance,
    *,
    format: str,
    content_type: str,
    references: Iterable[Any] = (),
) -> str:
    """Give the verified image at ``path`` its provenance, in place; return how.

    :data:`SIGNED`: a new C2PA manifest (signing identity configured; the
    provider's manifest, if any, is its parent; ``references``, the job's
    reference ``GeneratedImage`` rows, its inputs). :data:`KEPT`: the
    provider's manifest is left intact, the file unchanged.
    :data:`EMBEDDED`: imagegen's XMP, as :func:`.provenance.embed` writes it.
    ``references`` is only iterated when signing (a queryset stays unrun).
    """
    identity = signing_identity()
    present = has_manifest(path, content_type)
    if identity is not None:
        sign(
            path,
            path,
            record,
            content_type=content_type,
            identity=identity,
            parent=present,
            references=[image for image in references if image.file],
        )
        return SIGNED
    if present:
        return KEPT
    provenance.embed(path, path, record, format=format)
    return EMBEDDED


def sign(
    source: str | os.PathLike,
    target: str | os.PathLike,
    record: provenance.Provenance,
    *,
    content_type: str,
    identity: SigningIdentity,
    parent: bool,
    references: Sequence[Any] = (),
    include_prompt: bool | None = None,
) -> None:
    """Copy ``source`` to ``target`` with a new C2PA manifest signed by ``identity``.

    The manifest says ``c2pa.created`` with the digital source type
    ``trainedAlgorithmicMedia`` (software agent: the model) and holds
    ``record`` as the :data:`JOB_ASSERTION` (the prompt only if
    ``include_prompt``, by default ``C2PA_INCLUDE_PROMPT``). With ``parent``,
    ``source``'s own manifest becomes the parent ingredient. Each of
    ``references`` (stored ``GeneratedImage`` rows: an image-to-image job's
    references) is an ``inputTo`` ingredient, named by the same action: C2PA
    2.1's relationship for what a generative model was given.

    Streams file to file; ``target`` may be ``source`` (a temporary file
    beside it is renamed over it). Raises :class:`ImageRejectedError` when the
    library refuses the file, :class:`ImagegenConfigurationError` for an
    identity it cannot sign with.
    """
    c2pa = _c2pa()
    if include_prompt is None:
        include_prompt = conf.get_setting("C2PA_INCLUDE_PROMPT")
    # Ingredients are not validated as they are added (that would hold each
    # file in memory): their manifests are carried whole, and a reader
    # validates them with the rest of the chain.
    context = _context(validate=False)
    try:
        definition = _definition(record, content_type, parent, len(references), include_prompt)
        builder = c2pa.Builder(definition, context)
        signer = c2pa.Signer.from_info(
            c2pa.C2paSignerInfo(
                identity.algorithm,
                identity.certificates.encode(),
                identity.private_key.encode(),
                None,
            )
        )
    except c2pa.C2paError as exc:
        raise ImagegenConfigurationError(f"The C2PA signing identity is unusable: {exc}") from None
    with builder, signer, _replacing(target) as temporary:
        try:
            for number, image in enumerate(references):
                with image.file.open("rb") as stream:
                    builder.add_ingredient(
                        {
                            "title": str(image.title or os.path.basename(image.file.name)),
                            "relationship": "inputTo",
                            "label": f"{_INPUT}{number}",
                        },
                        image.content_type,
                        stream,
                    )
            with open(source, "rb") as src:
                if parent:
                    ingredient = {
                        "title": f"{record.provider} result",
                        "relationship": "parentOf",
                        "label": _PARENT,
                    }
                    builder.add_ingredient(ingredient, content_type, src)
                    src.seek(0)
                with open(temporary, "w+b") as dst:
                    if c2pa_streaming.supported(content_type):
                        c2pa_streaming.sign(builder, signer, src, dst, content_type)
                    else:
                        builder.sign(signer, content_type, src, dst)
        except c2pa.C2paError as exc:
            raise ImageRejectedError(f"Content Credentials could not be signed: {exc}") from None


def _definition(
    record: provenance.Provenance,
    content_type: str,
    parent: bool,
    references: int,
    include_prompt: bool,
) -> dict[str, Any]:
    facts = record.as_dict()
    if not include_prompt:
        del facts["prompt"]
    action: dict[str, Any] = {
        "action": "c2pa.created",
        "digitalSourceType": provenance.AI_GENERATED,
        "softwareAgent": {"name": record.model or record.provider},
        "when": facts["created_at"],
    }
    ingredients = [_PARENT] if parent else []
    ingredients += [f"{_INPUT}{number}" for number in range(references)]
    if ingredients:
        action["parameters"] = {"ingredientIds": ingredients}
    return {
        "claim_generator_info": [{"name": "imagegen", "version": __version__}],
        "format": content_type,
        "title": f"{record.job_id}",
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [action]}},
            {"label": JOB_ASSERTION, "data": facts},
        ],
    }


@contextlib.contextmanager
def _replacing(target: str | os.PathLike) -> Iterator[str]:
    """A temporary path beside ``target``, renamed over it on success."""
    target = os.fspath(target)
    fd, temporary = tempfile.mkstemp(
        prefix=".credentials-", dir=os.path.dirname(os.path.abspath(target))
    )
    os.close(fd)
    try:
        yield temporary
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _context(*, validate: bool = True) -> Any:
    # Per process: a native context made before a fork (a check run by the
    # parent of prefork workers) is not used by the children.
    return _context_for(_trust_anchors(), validate, os.getpid())


@lru_cache(maxsize=8)
def _context_for(anchors: str, validate: bool, pid: int) -> Any:
    settings: dict[str, Any] = {
        # A remote manifest is a URL in the file: never fetched from a worker.
        "verify": {"remote_manifest_fetch": False, "verify_after_reading": validate},
        # Thumbnails decode the whole image (64 MB at 4K): memory would not stay flat.
        "builder": {"thumbnail": {"enabled": False}},
    }
    if anchors:
        settings["trust"] = {"user_anchors": anchors}
    return _c2pa().Context.from_dict(settings)


def _trust_anchors() -> str:
    value = conf.get_setting("C2PA_TRUST_ANCHORS")
    return _pem(value, "C2PA_TRUST_ANCHORS") if value else ""


# -- Reading ------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """One manifest of a file's chain: who signed it, with what, when."""

    label: str
    claim_generator: str
    issuer: str
    common_name: str
    signed_at: str
    #: imagegen's job facts (:data:`JOB_ASSERTION`), when imagegen signed it.
    job: dict[str, str]


@dataclass(frozen=True)
class Credentials:
    """What a file's Content Credentials say, validated."""

    #: ``"trusted"`` (signer on a trust list), ``"valid"`` (intact, signer not
    #: on a trust list) or ``"invalid"`` (tampered with, or a bad signature).
    state: str
    #: The active manifest first, then its parent, its parent's parent...
    chain: tuple[Manifest, ...]
    #: Validation failure codes of the active manifest (``assertion.dataHash.mismatch``...).
    failures: tuple[str, ...]
    model: str = ""
    provider: str = ""

    @property
    def valid(self) -> bool:
        """The file is as its signer signed it (whether or not the signer is trusted)."""
        return self.state != "invalid"

    @property
    def state_display(self) -> str:
        return str(
            {
                "trusted": pgettext_lazy("Content Credentials state", "valid"),
                "valid": pgettext_lazy(
                    "Content Credentials state", "valid (signer not on a trust list)"
                ),
                "invalid": pgettext_lazy("Content Credentials state", "invalid"),
            }[self.state]
        )


def read(stream: BinaryIO, content_type: str) -> Credentials | None:
    """The Content Credentials of the image in ``stream``, or None without any.

    Validated against c2pa's trust settings plus ``C2PA_TRUST_ANCHORS``.
    Raises :class:`ImagegenConfigurationError` without the extra.
    """
    c2pa = _c2pa()
    try:
        reader = c2pa.Reader.try_create(content_type, stream, None, _context())
    except c2pa.C2paError as exc:
        # A store that cannot even be parsed is a broken credential, not none.
        return Credentials(state="invalid", chain=(), failures=(str(exc)[:200],))
    if reader is None:
        return None
    with reader:
        store = json.loads(reader.json())
    return _credentials(store)


def _credentials(store: dict[str, Any]) -> Credentials:
    manifests = store.get("manifests", {})
    chain: list[Manifest] = []
    label = store.get("active_manifest")
    while label in manifests and len(chain) < len(manifests):
        data = manifests[label]
        chain.append(_manifest(label, data))
        parents = [i for i in data.get("ingredients", []) if i.get("relationship") == "parentOf"]
        label = parents[0].get("active_manifest") if parents else None
    results = store.get("validation_results", {}).get("activeManifest", {})
    failures = tuple(f.get("code", "") for f in results.get("failure", []))
    state = _STATES.get(store.get("validation_state", ""), "invalid")
    job = next((m.job for m in chain if m.job), {})
    return Credentials(
        state=state,
        chain=tuple(chain),
        failures=failures,
        model=job.get("model", ""),
        provider=job.get("provider", ""),
    )


def _manifest(label: str, data: dict[str, Any]) -> Manifest:
    generators = data.get("claim_generator_info") or [{}]
    generator = " ".join(
        str(part) for part in (generators[0].get("name"), generators[0].get("version")) if part
    )
    signature = data.get("signature_info") or {}
    job = next(
        (a.get("data", {}) for a in data.get("assertions", []) if a.get("label") == JOB_ASSERTION),
        {},
    )
    return Manifest(
        label=label,
        claim_generator=generator or str(data.get("claim_generator", "")),
        issuer=str(signature.get("issuer", "")),
        common_name=str(signature.get("common_name", "")),
        signed_at=str(signature.get("time", "")),
        job={str(k): str(v) for k, v in job.items()} if isinstance(job, dict) else {},
    )


def summary(image: Any) -> Credentials | None:
    """The Content Credentials of a stored ``GeneratedImage`` (None without
    any, without a file or when it cannot be read, or without the extra). A
    file imagegen did not sign (the provider's, kept byte-for-byte) names the
    model and provider the image's row records."""
    if not image.file or not available():
        return None
    try:
        with image.file.open("rb") as stream:
            credentials = read(stream, image.content_type)
    except OSError:
        # A page showing the summary must not fail with the storage.
        logger.warning("Could not read %s for its Content Credentials", image.file.name)
        return None
    if credentials is None or credentials.model:
        return credentials
    return Credentials(
        state=credentials.state,
        chain=credentials.chain,
        failures=credentials.failures,
        model=image.model,
        provider=image.provider,
    )


def render_summary(image: Any) -> str:
    """``imagegen/includes/credentials.html`` for ``image``: "Content
    Credentials: valid, made by <model> via <provider>" and the chain."""
    return render_to_string("imagegen/includes/credentials.html", {"credentials": summary(image)})
