"""Organizations, API keys, credits and the do-not-call list."""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta
from typing import Any, Iterable

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from contract.trunk import ORG_CPS_MAX
from server.adapters.db.reads import read_connection
from server.adapters.db.schema import api_keys, credit_top_ups, do_not_call, organizations
from server.domain import batch_rules
from server.domain.auth import Principal, Role, hash_secret, new_secret, secret_prefix
from server.domain.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Violations,
)
from server.domain.ids import new_id
from server.domain.paging import decode_token, encode_token, filter_fingerprint, page_size
from server.service.page_keys import page_key
from server.domain.phone import normalize_phone
from server.service.context import ServiceContext

DNC_BULK_MAX = 10_000
_DEFAULT_WINDOW = {"window_start": "08:00", "window_end": "21:00", "window_weekdays": [1, 2, 3, 4, 5, 6, 7]}
LAST_USED_RESOLUTION = timedelta(seconds=60)


async def create_organization(
    ctx: ServiceContext,
    display_name: str,
    *,
    concurrency_limit: int = 10,
    credit_micros: int = 0,
    credits_enforced: bool = True,
    calling_any_time: bool = False,
) -> tuple[str, str]:
    """Creates an organization and its first owner key; returns (org id, secret).

    Used by the CLI and the demo seed: organizations are provisioned by the
    operator of the deployment, not through the public API. The window is
    08:00–21:00 callee local time unless ``calling_any_time`` is chosen
    explicitly (issue 16).
    """
    org_id = new_id("org")
    secret = new_secret()
    async with ctx.engine.begin() as conn:
        await conn.execute(
            insert(organizations).values(
                id=org_id,
                display_name=display_name[:200],
                concurrency_limit=concurrency_limit,
                credit_balance_micros=credit_micros,
                credits_enforced=credits_enforced,
                # Safe by default (issue 16): 08:00–21:00 callee local time.
                **({"calling_any_time": True} if calling_any_time else _DEFAULT_WINDOW),
            )
        )
        await conn.execute(
            insert(api_keys).values(
                id=new_id("key"),
                org_id=org_id,
                display_name="owner (initial)",
                role=Role.OWNER.value,
                prefix=secret_prefix(secret),
                key_hash=hash_secret(secret),
            )
        )
    await ctx.redis_state.set_org_limit(org_id, concurrency_limit)
    return org_id, secret


#: Built once: SQLAlchemy keeps a built statement's cache key (every RPC runs it).
_KEY_BY_HASH = select(
    api_keys.c.id, api_keys.c.org_id, api_keys.c.role, api_keys.c.last_used_at, api_keys.c.expire_at
).where(api_keys.c.key_hash == bindparam("p_key_hash"), api_keys.c.revoked_at.is_(None))


async def authenticate(ctx: ServiceContext, secret: str) -> Principal:
    if not secret:
        raise Unauthenticated("missing API key: send 'authorization: Bearer <key>'")
    digest = hash_secret(secret)
    # Every RPC starts here: autocommit, one round trip (server/adapters/db/reads.py);
    # the occasional last_used_at update commits on its own.
    async with read_connection(ctx.engine) as conn:
        row = (await conn.execute(_KEY_BY_HASH, {"p_key_hash": digest})).first()
        if row is None:
            raise Unauthenticated("invalid or revoked API key")
        now = ctx.clock.now()
        if row.expire_at is not None and row.expire_at <= now:
            raise Unauthenticated("expired API key")
        if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
            await conn.execute(update(api_keys).where(api_keys.c.id == row.id).values(last_used_at=now))
            await conn.commit()
    return Principal(org_id=row.org_id, role=Role(row.role), key_id=row.id)


async def get_organization(ctx: ServiceContext, p: Principal) -> Any:
    async with read_connection(ctx.engine) as conn:
        row = (await conn.execute(select(organizations).where(organizations.c.id == p.org_id))).first()
    if row is None:
        raise NotFound("organization not found")
    return row


def _window_values(window: Any | None, v: Violations, field: str) -> dict[str, Any]:
    from server.domain.calling_window import CallingWindow

    if window is None:
        return {"window_start": None, "window_end": None, "window_weekdays": None}
    try:
        parsed = CallingWindow.parse(window.start, window.end, window.weekdays)
    except ValueError as exc:
        v.add(field, str(exc))
        return {}
    return {
        "window_start": parsed.start_text,
        "window_end": parsed.end_text,
        "window_weekdays": sorted(parsed.weekdays),
    }


async def update_organization(ctx: ServiceContext, p: Principal, changes: dict[str, Any]) -> Any:
    """``changes`` holds only the masked fields (already converted from proto)."""
    p.require_owner()
    v = Violations()
    values: dict[str, Any] = {}
    if "display_name" in changes:
        name = (changes["display_name"] or "").strip()
        if not name or len(name) > batch_rules.NAME_MAX:
            v.add("organization.display_name", f"required, at most {batch_rules.NAME_MAX} characters")
        values["display_name"] = name
    if "concurrency_limit" in changes:
        limit = changes["concurrency_limit"]
        if not batch_rules.ORG_CONCURRENCY_MIN <= limit <= batch_rules.ORG_CONCURRENCY_MAX:
            v.add(
                "organization.concurrency_limit",
                f"must be between {batch_rules.ORG_CONCURRENCY_MIN} and {batch_rules.ORG_CONCURRENCY_MAX}",
            )
        values["concurrency_limit"] = limit
    if "default_calling_window" in changes:
        values.update(_window_values(changes["default_calling_window"], v, "organization.default_calling_window"))
    if "frequency_cap_per_24h" in changes:
        cap = changes["frequency_cap_per_24h"]
        if not 0 <= cap <= 100:
            v.add("organization.frequency_cap_per_24h", "must be between 0 (no cap) and 100")
        values["frequency_cap_per_24h"] = cap
    if "circuit_breaker_window" in changes:
        k = changes["circuit_breaker_window"]
        if not 1 <= k <= 1000:
            v.add("organization.circuit_breaker_window", "must be between 1 and 1000")
        values["circuit_breaker_window"] = k
    if "circuit_breaker_threshold" in changes:
        t = changes["circuit_breaker_threshold"]
        if not 0.0 < t <= 1.0:
            v.add("organization.circuit_breaker_threshold", "must be a share in (0, 1]")
        values["circuit_breaker_threshold"] = t
    if "credits_enforced" in changes:
        values["credits_enforced"] = bool(changes["credits_enforced"])
    if "calls_per_second" in changes:
        cps = float(changes["calls_per_second"] or 0.0)
        if not (math.isfinite(cps) and 0.0 <= cps <= ORG_CPS_MAX):
            v.add("organization.calls_per_second", f"must be between 0 (no cap) and {ORG_CPS_MAX:g}")
        values["calls_per_second"] = cps
    if "require_consent" in changes:
        values["require_consent"] = bool(changes["require_consent"])
    if "reserved_concurrency" in changes:
        values["reserved_concurrency"] = int(changes["reserved_concurrency"])
    if "reserved_concurrency" in values or "concurrency_limit" in values:
        # Checked against the limit in force after this update.
        current = await get_organization(ctx, p)
        reserve = values.get("reserved_concurrency", current.reserved_concurrency)
        limit = values.get("concurrency_limit", current.concurrency_limit)
        if not 0 <= reserve < limit:
            field = "reserved_concurrency" if "reserved_concurrency" in values else "concurrency_limit"
            v.add(f"organization.{field}",
                  f"reserved_concurrency must be at least 0 and below concurrency_limit ({limit}); it is {reserve}")
    # "Call at any time" is an explicit choice that clears the window; a
    # window clears it; cleared without the choice = the safe default window.
    any_time = bool(changes.get("calling_any_time"))
    if any_time and changes.get("default_calling_window") is not None:
        v.add("organization.calling_any_time", "set either calling_any_time or default_calling_window, not both")
    elif any_time:
        values.update(calling_any_time=True, window_start=None, window_end=None, window_weekdays=None)
    elif "calling_any_time" in changes or "default_calling_window" in changes:
        values["calling_any_time"] = False
    v.raise_if_any()
    if values:
        async with ctx.engine.begin() as conn:
            await conn.execute(update(organizations).where(organizations.c.id == p.org_id).values(**values))
        if "concurrency_limit" in values or "reserved_concurrency" in values:
            # Batches get the limit minus the reserve (read back: the row
            # as committed); claim.lua sees it on the next claim.
            row = await get_organization(ctx, p)
            await ctx.redis_state.set_org_limit(p.org_id, row.concurrency_limit - row.reserved_concurrency)
            return row
    return await get_organization(ctx, p)


REQUEST_ID_MAX = 128


async def top_up(ctx: ServiceContext, p: Principal, amount_micros: int, request_id: str = "") -> Any:
    """Adds credit; a ``request_id`` the organization already used adds
    nothing (the same amount: the organization is returned; another
    amount: FAILED_PRECONDITION). The ids are kept in credit_top_ups."""
    p.require_owner()
    v = Violations()
    if amount_micros <= 0 or amount_micros > 10**13:
        v.add("amount_micros", "must be positive and at most 10,000,000 USD")
    if len(request_id) > REQUEST_ID_MAX or (request_id and not request_id.isprintable()):
        v.add("request_id", f"at most {REQUEST_ID_MAX} printable characters")
    v.raise_if_any()
    async with ctx.engine.begin() as conn:
        if request_id:
            fresh = (
                await conn.execute(
                    pg_insert(credit_top_ups)
                    .values(org_id=p.org_id, request_id=request_id, amount_micros=amount_micros)
                    .on_conflict_do_nothing()
                    .returning(credit_top_ups.c.request_id)
                )
            ).first()
            if fresh is None:
                earlier = (
                    await conn.execute(
                        select(credit_top_ups.c.amount_micros).where(
                            credit_top_ups.c.org_id == p.org_id, credit_top_ups.c.request_id == request_id)
                    )
                ).scalar_one()
                if earlier != amount_micros:
                    raise FailedPrecondition(
                        "REQUEST_ID_REUSED",
                        f"request_id {request_id!r} was already used for a top-up of {earlier} micros",
                        {"request_id": request_id},
                    )
                return await get_organization(ctx, p)
        await conn.execute(
            update(organizations)
            .where(organizations.c.id == p.org_id)
            .values(credit_balance_micros=organizations.c.credit_balance_micros + amount_micros)
        )
    # Batches held for credit start on the next scheduler tick.
    return await get_organization(ctx, p)


# --- API keys -----------------------------------------------------------


async def create_api_key(
    ctx: ServiceContext, p: Principal, display_name: str, role: Role | None, expire_at: Any = None
) -> tuple[Any, str]:
    p.require_owner()
    v = Violations()
    if expire_at is not None and expire_at <= ctx.clock.now():
        v.add("expire_time", "must be in the future (unset = the key never expires)")
    if role is None:
        v.add("role", "required: ROLE_OWNER, ROLE_ADMIN, ROLE_MEMBER or ROLE_REPORTER")
    if len(display_name) > batch_rules.NAME_MAX:
        v.add("display_name", f"at most {batch_rules.NAME_MAX} characters")
    v.raise_if_any()
    assert role is not None
    secret = new_secret()
    key_id = new_id("key")
    async with ctx.engine.begin() as conn:
        row = (
            await conn.execute(
                insert(api_keys)
                .values(
                    id=key_id,
                    org_id=p.org_id,
                    display_name=display_name,
                    role=role.value,
                    prefix=secret_prefix(secret),
                    key_hash=hash_secret(secret),
                    expire_at=expire_at,
                )
                .returning(api_keys)
            )
        ).one()
    return row, secret


async def list_api_keys(ctx: ServiceContext, p: Principal, size: int, token: str) -> tuple[list[Any], str, int]:
    if p.role not in (Role.OWNER, Role.ADMIN):
        raise PermissionDenied("only owners and admins can list API keys")
    size = page_size(size)
    fp = filter_fingerprint(kind="keys")
    pos = decode_token(token, fp, page_key(ctx)) or {"o": 0}
    offset = int(pos.get("o", 0))
    base = and_(api_keys.c.org_id == p.org_id, api_keys.c.revoked_at.is_(None))
    async with ctx.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(api_keys).where(base).order_by(api_keys.c.created_at, api_keys.c.id).offset(offset).limit(size + 1)
            )
        ).all()
        total = (await conn.execute(select(func.count()).select_from(api_keys).where(base))).scalar_one()
    nxt = encode_token({"o": offset + size}, fp, page_key(ctx)) if len(rows) > size else ""
    return rows[:size], nxt, total


async def delete_api_key(ctx: ServiceContext, p: Principal, key_id: str) -> None:
    p.require_owner()
    now = ctx.clock.now()
    live = and_(api_keys.c.org_id == p.org_id, api_keys.c.revoked_at.is_(None))
    async with ctx.engine.begin() as conn:
        # The organization row lock serializes revocations: two owners
        # revoking each other's key at once cannot both succeed.
        await conn.execute(select(organizations.c.id).where(organizations.c.id == p.org_id).with_for_update())
        target = (await conn.execute(select(api_keys.c.role).where(live, api_keys.c.id == key_id))).first()
        if target is not None and target.role == Role.OWNER.value:
            other_owners = (
                await conn.execute(
                    select(func.count()).select_from(api_keys).where(
                        live, api_keys.c.id != key_id, api_keys.c.role == Role.OWNER.value,
                        (api_keys.c.expire_at.is_(None)) | (api_keys.c.expire_at > now),
                    )
                )
            ).scalar_one()
            if not other_owners:
                raise FailedPrecondition(
                    "LAST_OWNER_KEY",
                    "this is the organization's last owner key: create another owner key before revoking it",
                    {"api_key": f"apiKeys/{key_id}"},
                )
        res = await conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.org_id == p.org_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=ctx.clock.now())
        )
    if res.rowcount == 0:
        raise NotFound(f"apiKeys/{key_id} not found")


# --- do-not-call ----------------------------------------------------------


def _normalize_many(numbers: Iterable[str], field: str) -> list[str]:
    v = Violations()
    out: list[str] = []
    for i, raw in enumerate(numbers):
        result = normalize_phone(raw, None)
        if result.e164 is None:
            v.add(f"{field}[{i}]", result.reason or "not a valid E.164 number")
        else:
            out.append(result.e164)
    v.raise_if_any()
    return out


async def add_dnc(ctx: ServiceContext, p: Principal, numbers: list[str], reason: str) -> tuple[int, int]:
    p.require_write()
    if not numbers:
        raise InvalidArgument(FieldViolation("phone_numbers", "at least one number"))
    if len(numbers) > DNC_BULK_MAX:
        raise InvalidArgument(FieldViolation("phone_numbers", f"at most {DNC_BULK_MAX} numbers per call"))
    if len(reason) > 500:
        raise InvalidArgument(FieldViolation("reason", "at most 500 characters"))
    # Phone parsing is CPU work (10,000 numbers): off the event loop.
    normalized = sorted(set(await asyncio.to_thread(_normalize_many, list(numbers), "phone_numbers")))
    return await _insert_dnc(ctx, p.org_id, normalized, reason)


async def _insert_dnc(ctx: ServiceContext, org_id: str, numbers: list[str], reason: str) -> tuple[int, int]:
    if not numbers:
        return 0, 0
    async with ctx.engine.begin() as conn:
        added = await insert_dnc(conn, org_id, numbers, reason)
    return added, len(numbers) - added


async def insert_dnc(conn: Any, org_id: str, numbers: list[str], reason: str) -> int:
    """Adds normalized numbers to the organization's list inside the
    caller's transaction; returns how many were new (a listed number keeps
    its first reason)."""
    res = await conn.execute(
        pg_insert(do_not_call)
        .values([{"org_id": org_id, "phone": n, "reason": reason} for n in numbers])
        .on_conflict_do_nothing()
        .returning(do_not_call.c.phone)
    )
    return len(res.all())


async def remove_dnc(ctx: ServiceContext, p: Principal, numbers: list[str]) -> int:
    p.require_write()
    if not numbers or len(numbers) > DNC_BULK_MAX:
        raise InvalidArgument(FieldViolation("phone_numbers", f"between 1 and {DNC_BULK_MAX} numbers"))
    normalized = await asyncio.to_thread(_normalize_many, list(numbers), "phone_numbers")
    async with ctx.engine.begin() as conn:
        res = await conn.execute(
            delete(do_not_call).where(do_not_call.c.org_id == p.org_id, do_not_call.c.phone.in_(normalized))
        )
    return res.rowcount


async def list_dnc(ctx: ServiceContext, p: Principal, size: int, token: str, search: str) -> tuple[list[Any], str, int]:
    size = page_size(size)
    if len(search) > 32:
        raise InvalidArgument(FieldViolation("search", "at most 32 characters"))
    fp = filter_fingerprint(kind="dnc", search=search)
    pos = decode_token(token, fp, page_key(ctx)) or {}
    cond = [do_not_call.c.org_id == p.org_id]
    if search:
        cond.append(do_not_call.c.phone.contains(search, autoescape=True))
    after = pos.get("a")
    async with ctx.engine.connect() as conn:
        q = select(do_not_call).where(*cond)
        if after:
            q = q.where(do_not_call.c.phone > after)
        rows = (await conn.execute(q.order_by(do_not_call.c.phone).limit(size + 1))).all()
        total = (await conn.execute(select(func.count()).select_from(do_not_call).where(*cond))).scalar_one()
    nxt = encode_token({"a": rows[size - 1].phone}, fp, page_key(ctx)) if len(rows) > size else ""
    return rows[:size], nxt, total


async def import_dnc(
    ctx: ServiceContext, p: Principal, content: bytes, filename: str, default_region: str, reason: str
) -> tuple[int, int, Any]:
    """Bulk import: the same CSV rules as a batch upload (phone column, or
    one number a line without a header)."""
    p.require_write()
    report = await ctx.validator.validate_async(content, filename or "dnc.csv", default_region or None, require_valid=False)
    numbers = sorted({c.phone for c in report.contacts})
    added, already = await _insert_dnc(ctx, p.org_id, numbers, reason)
    return added, already, report


async def dnc_members(conn: Any, org_id: str, numbers: list[str]) -> set[str]:
    """Which of ``numbers`` are on the organization's list (one round trip,
    one array parameter however many numbers)."""
    if not numbers:
        return set()
    from sqlalchemy import any_, literal
    from sqlalchemy.dialects.postgresql import ARRAY
    from sqlalchemy import String

    listed = (
        await conn.execute(select(do_not_call.c.phone).where(do_not_call.c.org_id == org_id).limit(1))
    ).first()
    if listed is None:
        return set()
    rows = await conn.execute(
        select(do_not_call.c.phone).where(
            do_not_call.c.org_id == org_id,
            do_not_call.c.phone == any_(literal(numbers, ARRAY(String))),
        )
    )
    return {r.phone for r in rows}
