"""Test identities for Content Credentials: a root CA and a signing certificate.

For development and tests only (``manage.py imagegen c2pa-identity``, the
sandbox): nothing trusts the root unless told to (``C2PA_TRUST_ANCHORS``).
A production site signs with a certificate from a CA on the C2PA trust list.

The signing certificate has what C2PA validators require: not a CA,
``digitalSignature`` key usage, the ``emailProtection`` and
``documentSigning`` extended key usages, and a separate issuer (a
self-signed signing certificate is refused).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

#: The algorithms :func:`make_identity` can make keys for.
ALGORITHMS = ("es256", "ed25519")

#: id-kp-documentSigning (RFC 9336); cryptography has no name for it.
_DOCUMENT_SIGNING = "1.3.6.1.5.5.7.3.36"


@dataclass(frozen=True)
class TestIdentity:
    """PEM texts: the chain to sign with (signing certificate, then root),
    its private key, and the root alone (to configure as trusted)."""

    certificates: str
    private_key: str
    root: str

    def write(self, folder: str | Path) -> dict[str, Path]:
        """Write ``certificates.pem``, ``private-key.pem`` (mode 0600) and
        ``root.pem`` into ``folder`` (made if missing); return their paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {
            "certificates": folder / "certificates.pem",
            "private_key": folder / "private-key.pem",
            "root": folder / "root.pem",
        }
        paths["private_key"].touch(mode=0o600)
        paths["private_key"].chmod(0o600)
        for name, path in paths.items():
            path.write_text(getattr(self, name))
        return paths


def make_identity(
    algorithm: str = "es256", *, organization: str = "imagegen test", days: int = 825
) -> TestIdentity:
    """A new root CA and signing certificate, valid from yesterday for ``days``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if algorithm not in ALGORITHMS:
        raise ValueError(f"Unknown algorithm {algorithm!r}; expected one of {ALGORITHMS}.")

    def new_key():
        if algorithm == "ed25519":
            return ed25519.Ed25519PrivateKey.generate()
        return ec.generate_private_key(ec.SECP256R1())

    def name(common_name: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            ]
        )

    def usage(**allowed: bool) -> x509.KeyUsage:
        flags = dict.fromkeys(
            (
                "digital_signature",
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
                "key_cert_sign",
                "crl_sign",
                "encipher_only",
                "decipher_only",
            ),
            False,
        )
        return x509.KeyUsage(**{**flags, **allowed})

    # Ed25519 signs without a separate digest.
    digest = None if algorithm == "ed25519" else hashes.SHA256()
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=days)
    root_key, key = new_key(), new_key()
    root = (
        x509.CertificateBuilder()
        .subject_name(name(f"{organization} root CA"))
        .issuer_name(name(f"{organization} root CA"))
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .sign(root_key, digest)
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name(f"{organization} signer"))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(digital_signature=True), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.EMAIL_PROTECTION, x509.ObjectIdentifier(_DOCUMENT_SIGNING)]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .sign(root_key, digest)
    )

    def pem(certificate: x509.Certificate) -> str:
        return certificate.public_bytes(serialization.Encoding.PEM).decode()

    private_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return TestIdentity(certificates=pem(leaf) + pem(root), private_key=private_key, root=pem(root))
