"""The key that signs page tokens (server/domain/paging.py).

BATCHCALLS_PAGE_TOKEN_KEY when set; else derived from BATCHCALLS_SERVICE_TOKEN,
a secret every replica of one deployment shares, so a token one replica
issued is accepted by the others (rotating either secret only invalidates
outstanding page tokens: clients start listing again). With neither (a
process without a service token) a random per-process key. The secret is
never used as is: HMAC with a fixed label derives the key, so a page token
reveals nothing usable against the service token.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from typing import Any

_LABEL = b"batchcalls.v1 page tokens"
_PROCESS_KEY = secrets.token_bytes(32)


@functools.lru_cache(maxsize=8)
def _derive(secret: str) -> bytes:
    return hmac.new(_LABEL, secret.encode(), hashlib.sha256).digest()


def page_token_key(settings: Any) -> bytes:
    secret = getattr(settings, "page_token_key", "") or getattr(settings, "service_token", "")
    return _derive(secret) if secret else _PROCESS_KEY


def page_key(ctx: Any) -> bytes:
    """The key of a ServiceContext's settings."""
    return page_token_key(ctx.settings)
