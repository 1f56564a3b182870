"""AgentService, PhoneNumberService and OrganizationService: thin servicers."""

from __future__ import annotations

from typing import Any

import grpc
from redis.exceptions import RedisError

from batchcalls.v1 import (
    agent_service_pb2 as agent_pb2,
    agent_service_pb2_grpc as agent_grpc,
    organization_service_pb2 as org_pb2,
    organization_service_pb2_grpc as org_grpc,
    phone_number_service_pb2 as pn_pb2,
    phone_number_service_pb2_grpc as pn_grpc,
    resources_pb2 as res,
)
from server.api import convert
from server.api.auth import principal
from server.api.errors import handles_errors
from server.domain.auth import Role
from server.domain.errors import FieldViolation, InvalidArgument
from server.domain.ids import parse_name
from server.service import catalog, organizations
from server.service.batches import WindowInput
from server.service.context import ServiceContext

AGENT_FIELDS = ("display_name", "architecture", "active", "recording_enabled", "transcript_enabled", "sip_connection")
SIP_PARTS = ("uri", "username", "password", "header_fields")
AGENT_MASK_PATHS = AGENT_FIELDS + tuple(f"sip_connection.{part}" for part in SIP_PARTS)
ORG_FIELDS = (
    "display_name", "concurrency_limit", "default_calling_window", "frequency_cap_per_24h",
    "circuit_breaker_window", "circuit_breaker_threshold", "credits_enforced",
    "calling_any_time", "require_consent", "calls_per_second", "reserved_concurrency",
)


def _mask_paths(mask: Any, allowed: tuple[str, ...], field: str) -> list[str]:
    paths = list(mask.paths) if mask is not None else []
    bad = [p for p in paths if p not in allowed]
    if bad:
        raise InvalidArgument(FieldViolation(field, f"unknown field(s): {', '.join(bad)}; allowed: {', '.join(allowed)}"))
    return paths or list(allowed)


def _sip_values(c: res.AgentSipConnection, parts: tuple[str, ...] | list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        value = getattr(c, part)
        out[f"sip_{part}"] = list(value) if part == "header_fields" else value
    return out


def _agent_values(a: res.Agent, paths: list[str]) -> dict[str, Any]:
    """Column values of the masked fields (``sip_connection`` = every part)."""
    values: dict[str, Any] = {}
    for p in paths:
        if p == "architecture":
            values[p] = convert.enum_word(res.AgentArchitecture, "AGENT_ARCHITECTURE", a.architecture)
        elif p == "sip_connection":
            values.update(_sip_values(a.sip_connection, SIP_PARTS))
        elif p.startswith("sip_connection."):
            values.update(_sip_values(a.sip_connection, [p.partition(".")[2]]))
        else:
            values[p] = getattr(a, p)
    return values


def _sent_agent_paths(a: res.Agent) -> list[str]:
    """AIP-134, an empty mask: the fields sent, i.e. with a non-default value
    (inside a sent sip_connection, its non-empty parts: a stored password
    is kept unless a new one is sent)."""
    paths = [f for f in AGENT_FIELDS if f != "sip_connection" and getattr(a, f)]
    if a.HasField("sip_connection"):
        paths += [f"sip_connection.{part}" for part in SIP_PARTS if getattr(a.sip_connection, part)]
    return paths


class AgentServicer(agent_grpc.AgentServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    @handles_errors
    async def CreateAgent(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        fields = [f for f in AGENT_FIELDS if f != "sip_connection" or request.agent.HasField("sip_connection")]
        values = _agent_values(request.agent, fields)
        if not request.agent.display_name and not request.agent.architecture:
            values["active"] = True
        row = await catalog.create_agent(self.ctx, p, values)
        return agent_pb2.CreateAgentResponse(agent=convert.agent_msg(row))

    @handles_errors
    async def GetAgent(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        row = await catalog.get_agent(self.ctx, p, parse_name(request.name, "agents"))
        return agent_pb2.GetAgentResponse(agent=convert.agent_msg(row))

    @handles_errors
    async def ListAgents(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        rows, nxt, total = await catalog.list_agents(self.ctx, p, request.page_size, request.page_token, request.voice_only)
        return agent_pb2.ListAgentsResponse(
            agents=[convert.agent_msg(r) for r in rows], next_page_token=nxt, total_size=total
        )

    @handles_errors
    async def UpdateAgent(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        agent_id = parse_name(request.agent.name, "agents", "agent.name")
        paths = _mask_paths(request.update_mask if request.HasField("update_mask") else None, AGENT_MASK_PATHS, "update_mask")
        if not request.HasField("update_mask") or not request.update_mask.paths:
            paths = _sent_agent_paths(request.agent)
        row = await catalog.update_agent(self.ctx, p, agent_id, _agent_values(request.agent, paths))
        return agent_pb2.UpdateAgentResponse(agent=convert.agent_msg(row))


PHONE_NUMBER_MASK_PATHS = ("display_name", "outbound_trunk") + tuple(f"outbound_trunk.{part}" for part in catalog.TRUNK_PARTS)


def _sent_trunk_parts(t: res.OutboundTrunk) -> list[str]:
    """AIP-134, an empty mask: the trunk parts sent (non-default values; a
    stored password is kept unless a new one is sent)."""
    return [part for part in catalog.TRUNK_PARTS
            if (t.HasField(part) if part == "simulation" else bool(getattr(t, part)))]


class PhoneNumberServicer(pn_grpc.PhoneNumberServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    @handles_errors
    async def CreatePhoneNumber(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        pn = request.phone_number
        row = await catalog.create_phone_number(self.ctx, p, pn.phone_number, pn.display_name, convert.trunk_input(pn))
        return pn_pb2.CreatePhoneNumberResponse(phone_number=(await self._with_pacing(p.org_id, [row]))[0])

    @handles_errors
    async def GetPhoneNumber(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        row = await catalog.get_phone_number(self.ctx, p, parse_name(request.name, "phoneNumbers"))
        return pn_pb2.GetPhoneNumberResponse(phone_number=(await self._with_pacing(p.org_id, [row]))[0])

    @handles_errors
    async def ListPhoneNumbers(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        rows, nxt, total = await catalog.list_phone_numbers(
            self.ctx, p, request.page_size, request.page_token, request.with_outbound_trunk_only
        )
        return pn_pb2.ListPhoneNumbersResponse(
            phone_numbers=await self._with_pacing(p.org_id, rows), next_page_token=nxt, total_size=total
        )

    async def _with_pacing(self, org_id: str, rows: list[Any]) -> list[Any]:
        """PhoneNumber messages with the pacing state of their trunks, read
        from Redis (the trunk id the dialers pace by is the caller number,
        ``dialer.cps_gate``). Redis unreachable: the configured rates."""
        msgs = [convert.phone_number_msg(r) for r in rows]
        with_trunk = [m for m in msgs if m.HasField("outbound_trunk")]
        raw: dict[str, dict[str, str]] = {}
        if with_trunk:
            try:
                raw = await self.ctx.redis_state.trunk_pacing(org_id, [m.phone_number for m in with_trunk])
            except (RedisError, OSError):
                raw = {}
        now_ms = self.ctx.clock.now().timestamp() * 1000
        for m in with_trunk:
            m.pacing_state.CopyFrom(convert.pacing_state_msg(m.outbound_trunk.calls_per_second,
                                                             raw.get(m.phone_number), now_ms))
        return msgs

    @handles_errors
    async def UpdatePhoneNumber(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        pn = request.phone_number
        pn_id = parse_name(pn.name, "phoneNumbers", "phone_number.name")
        paths = _mask_paths(request.update_mask if request.HasField("update_mask") else None,
                            PHONE_NUMBER_MASK_PATHS, "update_mask")
        if not request.HasField("update_mask") or not request.update_mask.paths:
            paths = ["display_name"] if pn.display_name else []
            if pn.HasField("outbound_trunk"):
                paths += [f"outbound_trunk.{part}" for part in _sent_trunk_parts(pn.outbound_trunk)]
        parts: list[str] | None = [q.partition(".")[2] for q in paths if q.startswith("outbound_trunk.")]
        if "outbound_trunk" in paths:
            parts = None  # the whole trunk, replaced
        row = await catalog.update_phone_number(
            self.ctx, p, pn_id, pn.display_name if "display_name" in paths else None,
            convert.trunk_input(pn), parts,
        )
        return pn_pb2.UpdatePhoneNumberResponse(phone_number=(await self._with_pacing(p.org_id, [row]))[0])

    @handles_errors
    async def DeletePhoneNumber(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        await catalog.delete_phone_number(self.ctx, p, parse_name(request.name, "phoneNumbers"))
        return pn_pb2.DeletePhoneNumberResponse()


def _org_changes(o: org_pb2.Organization, paths: list[str]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for p in paths:
        if p == "default_calling_window":
            w = o.default_calling_window
            changes[p] = (
                WindowInput(w.start_local_time, w.end_local_time, tuple(w.weekdays))
                if o.HasField("default_calling_window") and w.start_local_time
                else None
            )
        else:
            changes[p] = getattr(o, p)
    return changes


def _sent_org_paths(o: org_pb2.Organization) -> list[str]:
    """AIP-134, an empty mask: the fields sent (non-default values)."""
    return [f for f in ORG_FIELDS if (o.HasField(f) if f == "default_calling_window" else bool(getattr(o, f)))]


class OrganizationServicer(org_grpc.OrganizationServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    @handles_errors
    async def GetOrganization(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        row = await organizations.get_organization(self.ctx, p)
        return org_pb2.GetOrganizationResponse(
            organization=convert.organization_msg(row),
            role=convert.enum_value(res.Role, "ROLE", p.role.value),
            api_key=f"apiKeys/{p.key_id}",
        )

    @handles_errors
    async def UpdateOrganization(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        paths = _mask_paths(request.update_mask if request.HasField("update_mask") else None, ORG_FIELDS, "update_mask")
        if not request.HasField("update_mask") or not request.update_mask.paths:
            paths = _sent_org_paths(request.organization)
        row = await organizations.update_organization(self.ctx, p, _org_changes(request.organization, paths))
        return org_pb2.UpdateOrganizationResponse(organization=convert.organization_msg(row))

    @handles_errors
    async def CreateApiKey(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        word = convert.enum_word(res.Role, "ROLE", request.role)
        row, secret = await organizations.create_api_key(
            self.ctx, p, request.display_name, Role(word) if word else None,
            expire_at=convert.from_ts(request.expire_time, request.HasField("expire_time")),
        )
        return org_pb2.CreateApiKeyResponse(api_key=convert.api_key_msg(row), secret=secret)

    @handles_errors
    async def ListApiKeys(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        rows, nxt, total = await organizations.list_api_keys(self.ctx, p, request.page_size, request.page_token)
        return org_pb2.ListApiKeysResponse(api_keys=[convert.api_key_msg(r) for r in rows], next_page_token=nxt, total_size=total)

    @handles_errors
    async def DeleteApiKey(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        await organizations.delete_api_key(self.ctx, p, parse_name(request.name, "apiKeys"))
        return org_pb2.DeleteApiKeyResponse()

    @handles_errors
    async def TopUpCredits(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        row = await organizations.top_up(self.ctx, p, request.amount_micros, request.request_id)
        return org_pb2.TopUpCreditsResponse(organization=convert.organization_msg(row))

    @handles_errors
    async def AddDoNotCallNumbers(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        added, already = await organizations.add_dnc(self.ctx, p, list(request.phone_numbers), request.reason)
        return org_pb2.AddDoNotCallNumbersResponse(added_count=added, already_listed_count=already)

    @handles_errors
    async def RemoveDoNotCallNumbers(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        removed = await organizations.remove_dnc(self.ctx, p, list(request.phone_numbers))
        return org_pb2.RemoveDoNotCallNumbersResponse(removed_count=removed)

    @handles_errors
    async def ListDoNotCallNumbers(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        rows, nxt, total = await organizations.list_dnc(self.ctx, p, request.page_size, request.page_token, request.search)
        return org_pb2.ListDoNotCallNumbersResponse(
            entries=[
                org_pb2.DoNotCallEntry(phone_number=r.phone, reason=r.reason, create_time=convert.ts(r.created_at))
                for r in rows
            ],
            next_page_token=nxt,
            total_size=total,
        )

    @handles_errors
    async def ImportDoNotCallNumbers(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        added, already, report = await organizations.import_dnc(
            self.ctx, p, request.csv_content, request.filename, request.default_region, request.reason
        )
        return org_pb2.ImportDoNotCallNumbersResponse(
            added_count=added, already_listed_count=already, report=convert.report_msg(report)
        )
