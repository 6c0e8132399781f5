"""Per-job callback secrets.

The token in a job's callback URL is derived from the job id and
``SECRET_KEY``, so every (re)submission of a job carries the same token and a
late callback from an earlier, uncertain submission still authenticates.
Only its SHA-256 is stored; the check compares digests in constant time.
"""

from __future__ import annotations

import hashlib

from django.utils.crypto import constant_time_compare, salted_hmac

_SALT = "imagegen.callback-token"


def callback_token(job_id: object) -> str:
    """The secret that goes into the callback URL of job ``job_id``."""
    return salted_hmac(_SALT, str(job_id), algorithm="sha256").hexdigest()


def hash_token(token: str) -> str:
    # A plain digest is enough: the token is 256 bits of keyed output, not a password.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    """Constant-time check of a token from a URL against the stored hash."""
    if not stored_hash:
        return False
    return constant_time_compare(hash_token(token), stored_hash)
