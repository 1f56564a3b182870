"""Credentials from call metadata: org API keys for the public services, the
service token for DialerService. The organization always comes from here."""

from __future__ import annotations

import grpc

from server.domain.auth import Principal, Role, same_secret
from server.domain.errors import PermissionDenied, Unauthenticated
from server.service import organizations
from server.service.context import ServiceContext


def bearer(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            raise Unauthenticated("authorization must be 'Bearer <api key>'")
    return ""


async def _any_principal(ctx: ServiceContext, context: grpc.aio.ServicerContext) -> Principal:
    token = bearer(context)
    if token and ctx.settings.service_token and same_secret(token, ctx.settings.service_token):
        raise PermissionDenied("the service credential is for DialerService only")
    return await organizations.authenticate(ctx, token)


async def principal(ctx: ServiceContext, context: grpc.aio.ServicerContext) -> Principal:
    """An owner, admin or member key: every public service but ResultsService
    (a reporter key is refused here)."""
    p = await _any_principal(ctx, context)
    if p.role is Role.REPORTER:
        raise PermissionDenied("a reporter key can only call ResultsService")
    return p


async def reporter(ctx: ServiceContext, context: grpc.aio.ServicerContext) -> Principal:
    """ResultsService: a reporter, admin or owner key."""
    p = await _any_principal(ctx, context)
    p.require_reporter()
    return p


def require_service(ctx: ServiceContext, context: grpc.aio.ServicerContext) -> None:
    token = bearer(context)
    if not token:
        raise Unauthenticated("missing service credential")
    if not ctx.settings.service_token or not same_secret(token, ctx.settings.service_token):
        raise PermissionDenied("DialerService needs the service credential, not an organization key")
