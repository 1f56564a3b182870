"""Per-API-key request rate limit, shared by every replica through Redis.

A grpc.aio server interceptor on the public listener (never the internal
one: DialerService is not limited). Each request carrying an API key is
admitted by ``contract/lua/rate_limit.lua`` (GCRA: ``rate_limit_rps``
requests a second, bursts of ``rate_limit_burst``) on the key
``keys.rate_limit(org id, sha256(key id))`` - the key id, never the secret - with
the wall clock's time: request rates are real seconds, whatever business
clock (a test's FakeClock) the server runs on. Over the limit the call answers
RESOURCE_EXHAUSTED with an ErrorInfo (reason ``RATE_LIMITED``) and a
``google.rpc.RetryInfo`` retry delay in the rich status details.

The key id comes from the API key: resolved once with the same lookup as
authentication and cached a short while per secret hash. A request without
a key, with an unknown one or with the service token is not limited here
(the servicer answers it). If Redis cannot answer, the request is admitted
(the limit protects the service; it must not take it down).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from contract import keys
from server.domain.errors import ResourceExhausted

log = logging.getLogger(__name__)

#: Methods never limited (no API key): health checks and reflection.
EXEMPT_PREFIXES = ("/grpc.health.", "/grpc.reflection.")
KEY_CACHE_SECONDS = 30.0
KEY_CACHE_MAX = 10_000


class RateLimited(ResourceExhausted):
    reason = "RATE_LIMITED"

    def __init__(self, retry_after: float, rps: float, burst: int) -> None:
        super().__init__(f"too many requests for this API key (at most {rps:g} a second, bursts of {burst}); "
                         f"retry after {retry_after:.3f}s")
        self.retry_after = retry_after
        self.metadata = {"rps": f"{rps:g}", "burst": str(burst)}


def _bearer(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == "authorization":
            scheme, _, token = str(value).partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


class RateLimiter:
    """The Redis side: ``check(org_id, key_id)`` raises RateLimited or returns."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.rps = float(getattr(ctx.settings, "rate_limit_rps", 0) or 0)
        self.burst = max(1, int(getattr(ctx.settings, "rate_limit_burst", 1) or 1))

    @property
    def enabled(self) -> bool:
        return self.rps > 0

    async def check(self, org_id: str, key_id: str) -> None:
        now_us = int(time.time() * 1_000_000)
        interval_us = max(1, round(1_000_000 / self.rps))
        key = keys.rate_limit(org_id, hashlib.sha256(key_id.encode()).hexdigest())
        allowed, retry_us = await self.ctx.redis_state.scripts.rate_limit(
            keys=[key], args=[now_us, interval_us, self.burst])
        if int(allowed) != 1:
            raise RateLimited(int(retry_us) / 1_000_000, self.rps, self.burst)


class RateLimitInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.limiter = RateLimiter(ctx)
        self._key_ids: OrderedDict[str, tuple[float, tuple[str, str]]] = OrderedDict()

    async def _key_id(self, token: str) -> tuple[str, str]:
        """(org id, key id) of an API key secret (("", "") = not an org key)."""
        from server.domain.auth import hash_secret, same_secret
        from server.service import organizations

        service_token = getattr(self.ctx.settings, "service_token", "")
        if service_token and same_secret(token, service_token):
            return "", ""
        digest = hash_secret(token)
        now = time.monotonic()
        hit = self._key_ids.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            p = await organizations.authenticate(self.ctx, token)
        except Exception:  # noqa: BLE001 - unknown/revoked: the servicer answers
            return "", ""
        self._key_ids[digest] = (now + KEY_CACHE_SECONDS, (p.org_id, p.key_id))
        self._key_ids.move_to_end(digest)
        while len(self._key_ids) > KEY_CACHE_MAX:
            self._key_ids.popitem(last=False)
        return p.org_id, p.key_id

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method or ""
        if handler is None or not self.limiter.enabled or method.startswith(EXEMPT_PREFIXES):
            return handler
        token = _bearer(handler_call_details.invocation_metadata)
        if not token:
            return handler
        try:
            org_id, key_id = await self._key_id(token)
            if key_id:
                await self.limiter.check(org_id, key_id)
        except RateLimited as exc:
            return _refusal(handler, exc)
        except Exception as exc:  # noqa: BLE001 - Redis/Postgres trouble: admit
            log.warning("rate limit not checked (%s); request admitted", exc)
        return handler


def _refusal(handler: grpc.RpcMethodHandler, exc: RateLimited) -> grpc.RpcMethodHandler:
    from server.api.errors import to_grpc_status

    status = to_grpc_status(exc)

    async def abort(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(status.code, status.details, status.trailing_metadata)

    kw = {"request_deserializer": handler.request_deserializer,
          "response_serializer": handler.response_serializer}
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort, **kw)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort, **kw)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort, **kw)
    return grpc.unary_unary_rpc_method_handler(abort, **kw)
