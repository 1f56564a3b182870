"""Voice agents and caller numbers of an organization.

Deactivating an agent (or making it TEXT) and removing a caller number are
system errors for the batches that use them: running and paused batches
fail with a reason, and their waiting contacts end CANCELLED.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import func, insert, select, update

from contract.trunk import DEFAULT_TRUNK_CPS, TRUNK_CPS_MAX, TRUNK_CPS_MIN
from server.adapters.db.schema import agents, batches, phone_numbers
from server.domain import batch_rules
from server.adapters.secrets import box_for
from server.domain.agent_connection import check_connection, parse_sip_uri
from server.domain.hosts import private_host_reason
from server.domain.auth import Principal
from server.domain.batch_readiness import VOICE_ARCHITECTURES, Blocker, agent_blocker
from server.domain.errors import AlreadyExists, NotFound, Violations
from server.domain.ids import new_id
from server.domain.paging import decode_token, encode_token, filter_fingerprint, page_size
from server.service.page_keys import page_key
from server.domain.phone import normalize_phone
from server.service.context import ServiceContext
from server.service.lifecycle import fail_batches_using

ARCHITECTURES = ("pipeline", "realtime", "text")
TRUNK_KINDS = ("simulated", "sip")
TRANSPORTS = ("udp", "tcp")
CALLER_ID_FORMATS = ("e164", "e164_no_plus", "national")


def _check_agent_fields(values: dict[str, Any], v: Violations, creating: bool, allow_private: bool = False) -> None:
    if "display_name" in values or creating:
        name = (values.get("display_name") or "").strip()
        if not name or len(name) > batch_rules.NAME_MAX:
            v.add("agent.display_name", f"required, at most {batch_rules.NAME_MAX} characters")
        values["display_name"] = name
    if "architecture" in values or creating:
        if values.get("architecture") not in ARCHITECTURES:
            v.add("agent.architecture", "required: PIPELINE, REALTIME or TEXT")
    if creating and "sip_uri" in values and not (values.get("sip_uri") or "").strip():
        v.add("agent.sip_connection.uri", "required when sip_connection is set")
    check_connection(values, v)
    if values.get("sip_uri") and not allow_private:
        uri, _ = parse_sip_uri(str(values["sip_uri"]))
        why = private_host_reason(uri.host) if uri is not None else None
        if why:
            v.add("agent.sip_connection.uri", f"host refused: {why} (BATCHCALLS_ALLOW_PRIVATE_HOSTS)")


def _seal(ctx: ServiceContext, plaintext: str) -> str:
    """A password as stored: ``enc:v1:<token>`` (server/adapters/secrets.py)."""
    return box_for(ctx.settings.secrets_key).seal(plaintext)


def _resealed(ctx: ServiceContext, stored: str) -> str | None:
    """A legacy plaintext value encrypted, or one under an older key
    re-encrypted with the first (lazily, on the row's next write); None
    when ``stored`` needs no change."""
    return box_for(ctx.settings.secrets_key).reseal(stored)


async def create_agent(ctx: ServiceContext, p: Principal, values: dict[str, Any]) -> Any:
    p.require_write()
    v = Violations()
    _check_agent_fields(values, v, creating=True, allow_private=ctx.settings.allow_private_hosts)
    v.raise_if_any()
    if "sip_password" in values:
        values["sip_password"] = _seal(ctx, str(values["sip_password"] or ""))
    async with ctx.engine.begin() as conn:
        return (
            await conn.execute(
                insert(agents).values(id=new_id("agt"), org_id=p.org_id, **values).returning(agents)
            )
        ).one()


async def get_agent(ctx: ServiceContext, p: Principal, agent_id: str) -> Any:
    async with ctx.engine.connect() as conn:
        row = (
            await conn.execute(select(agents).where(agents.c.id == agent_id, agents.c.org_id == p.org_id))
        ).first()
    if row is None:
        raise NotFound(f"agents/{agent_id} not found")
    return row


async def list_agents(ctx: ServiceContext, p: Principal, size: int, token: str, voice_only: bool) -> tuple[list[Any], str, int]:
    size = page_size(size)
    fp = filter_fingerprint(kind="agents", voice_only=voice_only)
    offset = int((decode_token(token, fp, page_key(ctx)) or {}).get("o", 0))
    cond = [agents.c.org_id == p.org_id]
    if voice_only:
        cond += [agents.c.active.is_(True), agents.c.architecture.in_(sorted(VOICE_ARCHITECTURES))]
    async with ctx.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(agents).where(*cond).order_by(agents.c.created_at, agents.c.id).offset(offset).limit(size + 1)
            )
        ).all()
        total = (await conn.execute(select(func.count()).select_from(agents).where(*cond))).scalar_one()
    nxt = encode_token({"o": offset + size}, fp, page_key(ctx)) if len(rows) > size else ""
    return rows[:size], nxt, total


async def update_agent(ctx: ServiceContext, p: Principal, agent_id: str, values: dict[str, Any]) -> Any:
    p.require_write()
    v = Violations()
    _check_agent_fields(values, v, creating=False, allow_private=ctx.settings.allow_private_hosts)
    v.raise_if_any()
    current = await get_agent(ctx, p, agent_id)
    if not values:  # an empty mask and nothing sent: nothing changes
        return current
    if "sip_password" in values:
        values["sip_password"] = _seal(ctx, str(values["sip_password"] or ""))
    elif (resealed := _resealed(ctx, current.sip_password)) is not None:
        values["sip_password"] = resealed
    async with ctx.engine.begin() as conn:
        row = (
            await conn.execute(
                update(agents)
                .where(agents.c.id == agent_id, agents.c.org_id == p.org_id)
                .values(**values, updated_at=ctx.clock.now())
                .returning(agents)
            )
        ).one()
    blocker = agent_blocker(row.active, row.architecture)
    if blocker is not None:
        await fail_batches_using(ctx, p.org_id, batches.c.agent_id == agent_id, blocker)
    return row


# --- caller numbers --------------------------------------------------------


def _trunk_values(trunk: dict[str, Any] | None, v: Violations, allow_private: bool = False) -> dict[str, Any]:
    if trunk is None:
        return {"trunk_kind": None}
    kind = trunk.get("kind")
    out: dict[str, Any] = {"trunk_kind": kind}
    if kind not in TRUNK_KINDS:
        v.add("phone_number.outbound_trunk.kind", "required: TRUNK_KIND_SIMULATED or TRUNK_KIND_SIP")
        return out
    if kind == "sip":
        host = (trunk.get("host") or "").strip()
        if not host or len(host) > 255 or any(c in host for c in " /@;"):
            v.add("phone_number.outbound_trunk.host", "required: a host name or address")
        elif not allow_private and (why := private_host_reason(host)):
            v.add("phone_number.outbound_trunk.host", f"host refused: {why} (BATCHCALLS_ALLOW_PRIVATE_HOSTS)")
        port = trunk.get("port") or 5060
        if not 1 <= port <= 65535:
            v.add("phone_number.outbound_trunk.port", "must be between 1 and 65535")
        transport = trunk.get("transport") or "udp"
        if transport not in TRANSPORTS:
            v.add("phone_number.outbound_trunk.transport", "UDP or TCP")
        for f, limit in (("username", 128), ("password", 256)):
            if len(trunk.get(f) or "") > limit:
                v.add(f"phone_number.outbound_trunk.{f}", f"at most {limit} characters")
        out.update(
            trunk_host=host,
            trunk_port=port,
            trunk_transport=transport,
            trunk_username=trunk.get("username") or "",
            trunk_password=trunk.get("password") or "",
        )
    fmt = trunk.get("caller_id_format") or "e164"
    if fmt not in CALLER_ID_FORMATS:
        v.add("phone_number.outbound_trunk.caller_id_format", "unknown format")
    out["caller_id_format"] = fmt
    sim = trunk.get("simulation") or {}
    if any(w < 0 for k, w in sim.items()):
        v.add("phone_number.outbound_trunk.simulation", "weights and durations must not be negative")
    out["simulation"] = sim
    # Calls per second (docs/pacing.md): unset (0) = the default.
    cps = float(trunk.get("calls_per_second") or 0.0) or DEFAULT_TRUNK_CPS
    if not (math.isfinite(cps) and TRUNK_CPS_MIN <= cps <= TRUNK_CPS_MAX):
        v.add("phone_number.outbound_trunk.calls_per_second", f"must be between {TRUNK_CPS_MIN:g} and {TRUNK_CPS_MAX:g}")
    out["calls_per_second"] = cps
    return out


async def create_phone_number(ctx: ServiceContext, p: Principal, number: str, display_name: str, trunk: dict[str, Any] | None) -> Any:
    p.require_write()
    v = Violations()
    result = normalize_phone(number or "", None)
    if result.e164 is None:
        v.add("phone_number.phone_number", result.reason or "must be E.164, e.g. +12025550100")
    if len(display_name) > batch_rules.NAME_MAX:
        v.add("phone_number.display_name", f"at most {batch_rules.NAME_MAX} characters")
    values = _trunk_values(trunk, v, ctx.settings.allow_private_hosts)
    v.raise_if_any()
    if values.get("trunk_password"):
        values["trunk_password"] = _seal(ctx, values["trunk_password"])
    async with ctx.engine.begin() as conn:
        exists = (
            await conn.execute(
                select(phone_numbers.c.id).where(
                    phone_numbers.c.org_id == p.org_id,
                    phone_numbers.c.e164 == result.e164,
                    phone_numbers.c.deleted_at.is_(None),
                )
            )
        ).first()
        if exists:
            raise AlreadyExists(f"{result.e164} is already registered as phoneNumbers/{exists.id}")
        return (
            await conn.execute(
                insert(phone_numbers)
                .values(id=new_id("pn"), org_id=p.org_id, e164=result.e164, display_name=display_name, **values)
                .returning(phone_numbers)
            )
        ).one()


async def get_phone_number(ctx: ServiceContext, p: Principal, pn_id: str) -> Any:
    async with ctx.engine.connect() as conn:
        row = (
            await conn.execute(
                select(phone_numbers).where(
                    phone_numbers.c.id == pn_id,
                    phone_numbers.c.org_id == p.org_id,
                    phone_numbers.c.deleted_at.is_(None),
                )
            )
        ).first()
    if row is None:
        raise NotFound(f"phoneNumbers/{pn_id} not found")
    return row


async def list_phone_numbers(ctx: ServiceContext, p: Principal, size: int, token: str, trunk_only: bool) -> tuple[list[Any], str, int]:
    size = page_size(size)
    fp = filter_fingerprint(kind="numbers", trunk_only=trunk_only)
    offset = int((decode_token(token, fp, page_key(ctx)) or {}).get("o", 0))
    cond = [phone_numbers.c.org_id == p.org_id, phone_numbers.c.deleted_at.is_(None)]
    if trunk_only:
        cond.append(phone_numbers.c.trunk_kind.is_not(None))
    async with ctx.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(phone_numbers)
                .where(*cond)
                .order_by(phone_numbers.c.created_at, phone_numbers.c.id)
                .offset(offset)
                .limit(size + 1)
            )
        ).all()
        total = (await conn.execute(select(func.count()).select_from(phone_numbers).where(*cond))).scalar_one()
    nxt = encode_token({"o": offset + size}, fp, page_key(ctx)) if len(rows) > size else ""
    return rows[:size], nxt, total


async def delete_phone_number(ctx: ServiceContext, p: Principal, pn_id: str) -> None:
    p.require_write()
    await get_phone_number(ctx, p, pn_id)
    async with ctx.engine.begin() as conn:
        await conn.execute(
            update(phone_numbers).where(phone_numbers.c.id == pn_id).values(deleted_at=ctx.clock.now())
        )
    await fail_batches_using(ctx, p.org_id, batches.c.from_number_id == pn_id, Blocker.NUMBER_REMOVED)


#: Parts of an outbound trunk UpdatePhoneNumber can change one by one.
TRUNK_PARTS = ("kind", "host", "port", "transport", "username", "password", "caller_id_format",
               "simulation", "calls_per_second")


async def update_phone_number(
    ctx: ServiceContext, p: Principal, pn_id: str, display_name: str | None,
    trunk: dict[str, Any] | None, trunk_parts: list[str] | None,
) -> Any:
    """Changes the display name and/or the outbound trunk in place (AIP-134).

    ``trunk_parts``: the parts of ``trunk`` to take (None = the whole trunk,
    replaced; [] = the trunk unchanged). A stored password is kept unless
    the password is among them (then the new one replaces it, "" clears it);
    a legacy plaintext one is encrypted on this write. The trunk cannot be
    removed here."""
    p.require_write()
    current = await get_phone_number(ctx, p, pn_id)
    v = Violations()
    values: dict[str, Any] = {}
    if display_name is not None:
        if len(display_name) > batch_rules.NAME_MAX:
            v.add("phone_number.display_name", f"at most {batch_rules.NAME_MAX} characters")
        values["display_name"] = display_name
    if trunk_parts is None or trunk_parts:
        if trunk_parts is None:
            merged = dict(trunk or {})
            new_password = trunk is not None
        else:
            merged = {
                "kind": current.trunk_kind, "host": current.trunk_host, "port": current.trunk_port,
                "transport": current.trunk_transport, "username": current.trunk_username, "password": "",
                "caller_id_format": current.caller_id_format, "simulation": dict(current.simulation or {}),
                "calls_per_second": current.calls_per_second,
            }
            merged.update({k: (trunk or {}).get(k) for k in trunk_parts})
            new_password = "password" in trunk_parts
        if trunk is None or not merged.get("kind"):
            v.add("phone_number.outbound_trunk", "a number's trunk can be changed here, not removed "
                  "(delete the number instead)")
        else:
            values.update(_trunk_values(merged, v, ctx.settings.allow_private_hosts))
            if values.get("trunk_kind") != "sip":
                values.update(trunk_host="", trunk_port=0, trunk_transport="udp", trunk_username="", trunk_password="")
            elif new_password:
                values["trunk_password"] = _seal(ctx, values.get("trunk_password") or "")
            else:
                values.pop("trunk_password", None)
    v.raise_if_any()
    if "trunk_password" not in values and (resealed := _resealed(ctx, current.trunk_password)) is not None:
        values["trunk_password"] = resealed
    if not values:
        return current
    async with ctx.engine.begin() as conn:
        return (
            await conn.execute(
                update(phone_numbers)
                .where(phone_numbers.c.id == pn_id, phone_numbers.c.org_id == p.org_id,
                       phone_numbers.c.deleted_at.is_(None))
                .values(**values)
                .returning(phone_numbers)
            )
        ).one()
