"""An in-memory fake of the batchcalls.v1 gRPC API, for UI tests and UI work.

It follows the API contract (auth metadata, roles, rich error details, the
action matrix, pagination) closely enough to drive every page of the admin
UI without Postgres, Redis or a dialer. It is NOT the real server: batches
"run" instantly (every contact ends on the next read), and outcomes are
decided by the last digit of the number (…3 no answer until retries are
exhausted, …9 busy ditto, everything else completed).

    python -m admin_ui.devtools.fake_api --port 50051

prints an owner, an admin and a member key.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import itertools
import secrets
import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
import phonenumbers
from google.protobuf import any_pb2, timestamp_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from batchcalls.v1 import (
    agent_service_pb2,
    agent_service_pb2_grpc,
    batch_pb2,
    batch_service_pb2,
    batch_service_pb2_grpc,
    organization_service_pb2,
    organization_service_pb2_grpc,
    phone_number_service_pb2,
    phone_number_service_pb2_grpc,
    resources_pb2,
)

R = resources_pb2
BS = R.BatchStatus
CS = R.ContactStatus
RATE_MICROS_PER_MIN = 73_000

_MATRIX = {
    "pause": {BS.BATCH_STATUS_RUNNING},
    "resume": {BS.BATCH_STATUS_PAUSED},
    "cancel": {BS.BATCH_STATUS_PENDING, BS.BATCH_STATUS_SCHEDULED, BS.BATCH_STATUS_RUNNING, BS.BATCH_STATUS_PAUSED},
    "delete": {
        BS.BATCH_STATUS_PENDING, BS.BATCH_STATUS_SCHEDULED, BS.BATCH_STATUS_PAUSED, BS.BATCH_STATUS_COMPLETED,
        BS.BATCH_STATUS_FAILED, BS.BATCH_STATUS_CANCELLED,
    },
    "reschedule": {BS.BATCH_STATUS_PENDING, BS.BATCH_STATUS_SCHEDULED},
    "export": {BS.BATCH_STATUS_COMPLETED, BS.BATCH_STATUS_FAILED},
}


_REASONS = {"pause": "PAUSABLE", "resume": "RESUMABLE", "cancel": "CANCELLABLE", "delete": "DELETABLE",
            "reschedule": "RESCHEDULABLE", "export": "EXPORTABLE"}


class Abort(Exception):
    def __init__(self, code: int, message: str, violations=(), reason: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.violations, self.reason = code, message, list(violations), reason

    def status(self) -> Any:
        details = []
        if self.violations:
            br = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in self.violations
                ]
            )
            a = any_pb2.Any()
            a.Pack(br)
            details.append(a)
        if self.reason:
            a = any_pb2.Any()
            a.Pack(error_details_pb2.ErrorInfo(reason=self.reason, domain="batchcalls.dev"))
            details.append(a)
        return rpc_status.to_status(status_pb2.Status(code=self.code, message=self.message, details=details))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _ts(d: dt.datetime) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(d)
    return t


@dataclass
class Org:
    org: Any
    keys: dict[str, Any] = field(default_factory=dict)  # secret -> ApiKey
    agents: dict[str, Any] = field(default_factory=dict)
    numbers: dict[str, Any] = field(default_factory=dict)
    batches: dict[str, Any] = field(default_factory=dict)  # name -> Batch
    contacts: dict[str, list[Any]] = field(default_factory=dict)  # batch name -> contacts
    requests: dict[str, str] = field(default_factory=dict)  # request_id -> batch name
    dnc: dict[str, Any] = field(default_factory=dict)


@dataclass
class Keys:
    owner_key: str
    admin_key: str
    member_key: str
    agent_name: str
    phone_number_name: str


class FakeState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.orgs: dict[str, Org] = {}
        self.ids = itertools.count(1)

    def nid(self, prefix: str) -> str:
        return f"{prefix}_{next(self.ids):05d}{secrets.token_hex(2)}"

    def new_org(self, name: str) -> Keys:
        with self.lock:
            oid = self.nid("org")
            o = Org(
                org=organization_service_pb2.Organization(
                    name=f"organizations/{oid}", organization_id=oid, display_name=name, concurrency_limit=10,
                    credit_balance_micros=50_000_000, circuit_breaker_window=20, circuit_breaker_threshold=0.5,
                    credits_enforced=True, create_time=_ts(_now()),
                )
            )
            self.orgs[oid] = o
            keys = {}
            for role in (R.ROLE_OWNER, R.ROLE_ADMIN, R.ROLE_MEMBER):
                keys[role] = self._add_key(o, f"{R.Role.Name(role)[5:].lower()} key", role)
            aid = self.nid("agent")
            o.agents[f"agents/{aid}"] = R.Agent(
                name=f"agents/{aid}", agent_id=aid, display_name="Payment Collection Agent",
                architecture=R.AGENT_ARCHITECTURE_PIPELINE, active=True, create_time=_ts(_now()),
            )
            tid = self.nid("agent")
            o.agents[f"agents/{tid}"] = R.Agent(
                name=f"agents/{tid}", agent_id=tid, display_name="Chat Bot", architecture=R.AGENT_ARCHITECTURE_TEXT,
                active=True, create_time=_ts(_now()),
            )
            pid = self.nid("pn")
            o.numbers[f"phoneNumbers/{pid}"] = R.PhoneNumber(
                name=f"phoneNumbers/{pid}", phone_number_id=pid, phone_number="+12025550100", display_name="Main",
                outbound_trunk=R.OutboundTrunk(kind=R.TRUNK_KIND_SIMULATED), create_time=_ts(_now()),
            )
            return Keys(keys[R.ROLE_OWNER], keys[R.ROLE_ADMIN], keys[R.ROLE_MEMBER], f"agents/{aid}",
                        f"phoneNumbers/{pid}")

    def _add_key(self, o: Org, label: str, role: int) -> str:
        kid = self.nid("key")
        secret = f"bc_{secrets.token_urlsafe(18)}"
        o.keys[secret] = organization_service_pb2.ApiKey(
            name=f"apiKeys/{kid}", api_key_id=kid, display_name=label, role=role, prefix=secret[:7],
            create_time=_ts(_now()),
        )
        return secret

    def auth(self, context: grpc.ServicerContext, write: bool = False, owner: bool = False) -> tuple[Org, Any]:
        md = dict(context.invocation_metadata())
        h = md.get("authorization", "")
        secret = h[7:] if h.startswith("Bearer ") else ""
        for o in self.orgs.values():
            if secret in o.keys:
                key = o.keys[secret]
                if owner and key.role != R.ROLE_OWNER:
                    raise Abort(code_pb2.PERMISSION_DENIED, "Only owners can do this.", reason="OWNER_REQUIRED")
                if write and key.role not in (R.ROLE_OWNER, R.ROLE_ADMIN):
                    raise Abort(code_pb2.PERMISSION_DENIED, "Members can view; owners and admins can change.",
                                reason="WRITE_ROLE_REQUIRED")
                return o, key
        raise Abort(code_pb2.UNAUTHENTICATED, "Missing, unknown or revoked API key.")


def _wrap(fn):
    def handler(self, request, context):
        try:
            with self.s.lock:
                return fn(self, request, context)
        except Abort as a:
            context.abort_with_status(a.status())

    return handler


def _wrap_stream(fn):
    def handler(self, request, context):
        try:
            with self.s.lock:
                items = list(fn(self, request, context))
        except Abort as a:
            context.abort_with_status(a.status())
            return
        yield from items

    return handler


def _page(items: list[Any], size: int, token: str, default: int = 50) -> tuple[list[Any], str]:
    size = size or default
    start = int(token) if token else 0
    chunk = items[start:start + size]
    nxt = str(start + size) if start + size < len(items) else ""
    return chunk, nxt


# --- CSV validation -------------------------------------------------------------------------


def validate_csv(content: bytes, filename: str, region: str, dnc: dict[str, Any]):
    if not filename.lower().endswith(".csv"):
        raise Abort(code_pb2.INVALID_ARGUMENT, "The file must be a CSV.", [("filename", "must end in .csv")])
    if len(content) > 10 * 1024 * 1024:
        raise Abort(code_pb2.INVALID_ARGUMENT, "The file is larger than 10 MB.", [("csv_content", "at most 10 MB")])
    text = content.decode("utf-8-sig", errors="replace")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise Abort(code_pb2.INVALID_ARGUMENT, "The CSV is empty.", [("csv_content", "empty file")])
    header = [h.strip().lower() for h in rows[0]]
    if "phone" not in header:
        raise Abort(code_pb2.INVALID_ARGUMENT, "CSV must have 'phone' column",
                    [("csv_content", "CSV must have 'phone' column")])
    pi = header.index("phone")
    ni = header.index("name") if "name" in header else None
    ei = header.index("email") if "email" in header else None
    custom = [h for h in header if h not in ("phone", "name", "email") and h]
    rep = batch_pb2.ValidationReport(header_detected=True, delimiter=",", custom_columns=custom)
    seen: dict[str, int] = {}
    valid: list[dict[str, Any]] = []
    for i, row in enumerate(rows[1:], start=2):
        rep.total_rows += 1
        if not any(c.strip() for c in row):
            rep.empty_rows += 1
            continue
        raw = row[pi].strip() if pi < len(row) else ""
        try:
            num = phonenumbers.parse(raw, region or None)
            ok = phonenumbers.is_valid_number(num)
        except phonenumbers.NumberParseException:
            ok = False
        if not ok:
            rep.invalid_count += 1
            rep.invalid_rows.add(row_number=i, reason="invalid phone number" if raw else "missing phone",
                                 value=raw[:40])
            continue
        e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
        if e164 != raw:
            rep.normalized_count += 1
        if e164 in seen:
            rep.duplicate_count += 1
            rep.duplicate_rows.add(row_number=i, duplicate_of_row=seen[e164], phone_number=e164)
            continue
        seen[e164] = i
        if e164 in dnc:
            rep.suppressed_count += 1
            rep.suppressed_rows.add(row_number=i, phone_number=e164)
        valid.append({
            "row": i, "phone": e164, "name": row[ni].strip() if ni is not None and ni < len(row) else "",
            "email": row[ei].strip() if ei is not None and ei < len(row) else "",
            "vars": {h: row[j] for j, h in enumerate(header) if h in custom and j < len(row)},
        })
    rep.valid_rows = len(valid)
    est = batch_pb2.CostEstimate(contacts=len(valid) - rep.suppressed_count, assumed_minutes_per_call=3.0,
                                 rate_micros_per_minute=RATE_MICROS_PER_MIN)
    est.estimated_cost_micros = int(est.contacts * 3 * RATE_MICROS_PER_MIN)
    return rep, est, valid


# --- servicers ------------------------------------------------------------------------------------


class OrgServicer(organization_service_pb2_grpc.OrganizationServiceServicer):
    def __init__(self, s: FakeState) -> None:
        self.s = s

    @_wrap
    def GetOrganization(self, request, context):
        o, key = self.s.auth(context)
        return organization_service_pb2.GetOrganizationResponse(organization=o.org, role=key.role, api_key=key.name)

    @_wrap
    def UpdateOrganization(self, request, context):
        o, _ = self.s.auth(context, owner=True)
        paths = list(request.update_mask.paths)
        if "concurrency_limit" in paths and not 1 <= request.organization.concurrency_limit <= 500:
            raise Abort(code_pb2.INVALID_ARGUMENT, "Invalid settings.", [("organization.concurrency_limit", "1–500")])
        for p in paths:
            if p == "default_calling_window":
                if request.organization.HasField("default_calling_window"):
                    o.org.default_calling_window.CopyFrom(request.organization.default_calling_window)
                else:
                    o.org.ClearField("default_calling_window")
            else:
                setattr(o.org, p, getattr(request.organization, p))
        return organization_service_pb2.UpdateOrganizationResponse(organization=o.org)

    @_wrap
    def TopUpCredits(self, request, context):
        o, _ = self.s.auth(context, owner=True)
        if request.amount_micros <= 0:
            raise Abort(code_pb2.INVALID_ARGUMENT, "Invalid amount.", [("amount_micros", "must be positive")])
        o.org.credit_balance_micros += request.amount_micros
        return organization_service_pb2.TopUpCreditsResponse(organization=o.org)

    @_wrap
    def CreateApiKey(self, request, context):
        o, _ = self.s.auth(context, owner=True)
        if not request.display_name.strip():
            raise Abort(code_pb2.INVALID_ARGUMENT, "Invalid API key.", [("display_name", "required")])
        secret = self.s._add_key(o, request.display_name, request.role or R.ROLE_MEMBER)
        return organization_service_pb2.CreateApiKeyResponse(api_key=o.keys[secret], secret=secret)

    @_wrap
    def ListApiKeys(self, request, context):
        o, _ = self.s.auth(context)
        items, nxt = _page(list(o.keys.values()), request.page_size, request.page_token)
        return organization_service_pb2.ListApiKeysResponse(api_keys=items, next_page_token=nxt,
                                                            total_size=len(o.keys))

    @_wrap
    def DeleteApiKey(self, request, context):
        o, _ = self.s.auth(context, owner=True)
        for sec, k in list(o.keys.items()):
            if k.name == request.name:
                del o.keys[sec]
                return organization_service_pb2.DeleteApiKeyResponse()
        raise Abort(code_pb2.NOT_FOUND, f"API key {request.name} not found.")

    @_wrap
    def AddDoNotCallNumbers(self, request, context):
        o, _ = self.s.auth(context, write=True)
        bad = [(f"phone_numbers[{i}]", "not a valid E.164 number") for i, n in enumerate(request.phone_numbers)
               if not n.startswith("+") or not n[1:].isdigit()]
        if bad:
            raise Abort(code_pb2.INVALID_ARGUMENT, "Invalid phone numbers.", bad)
        added = 0
        for n in request.phone_numbers:
            if n not in o.dnc:
                o.dnc[n] = organization_service_pb2.DoNotCallEntry(phone_number=n, reason=request.reason,
                                                                   create_time=_ts(_now()))
                added += 1
        return organization_service_pb2.AddDoNotCallNumbersResponse(
            added_count=added, already_listed_count=len(request.phone_numbers) - added)

    @_wrap
    def RemoveDoNotCallNumbers(self, request, context):
        o, _ = self.s.auth(context, write=True)
        n = sum(1 for x in request.phone_numbers if o.dnc.pop(x, None) is not None)
        return organization_service_pb2.RemoveDoNotCallNumbersResponse(removed_count=n)

    @_wrap
    def ListDoNotCallNumbers(self, request, context):
        o, _ = self.s.auth(context)
        items = [e for e in o.dnc.values() if request.search in e.phone_number]
        chunk, nxt = _page(items, request.page_size, request.page_token)
        return organization_service_pb2.ListDoNotCallNumbersResponse(entries=chunk, next_page_token=nxt,
                                                                     total_size=len(items))

    @_wrap
    def ImportDoNotCallNumbers(self, request, context):
        o, _ = self.s.auth(context, write=True)
        rep, _, valid = validate_csv(request.csv_content, request.filename, request.default_region, {})
        added = 0
        for v in valid:
            if v["phone"] not in o.dnc:
                o.dnc[v["phone"]] = organization_service_pb2.DoNotCallEntry(
                    phone_number=v["phone"], reason=request.reason, create_time=_ts(_now()))
                added += 1
        return organization_service_pb2.ImportDoNotCallNumbersResponse(
            added_count=added, already_listed_count=len(valid) - added, report=rep)


class AgentServicer(agent_service_pb2_grpc.AgentServiceServicer):
    def __init__(self, s: FakeState) -> None:
        self.s = s

    @_wrap
    def CreateAgent(self, request, context):
        o, _ = self.s.auth(context, write=True)
        a = request.agent
        v = []
        if not a.display_name.strip():
            v.append(("agent.display_name", "required"))
        if not a.architecture:
            v.append(("agent.architecture", "required"))
        if v:
            raise Abort(code_pb2.INVALID_ARGUMENT, "Invalid agent.", v)
        aid = self.s.nid("agent")
        new = R.Agent()
        new.CopyFrom(a)
        new.name, new.agent_id = f"agents/{aid}", aid
        new.create_time.CopyFrom(_ts(_now()))
        o.agents[new.name] = new
        return agent_service_pb2.CreateAgentResponse(agent=new)

    @_wrap
    def GetAgent(self, request, context):
        o, _ = self.s.auth(context)
        if request.name not in o.agents:
            raise Abort(code_pb2.NOT_FOUND, f"Agent {request.name} not found.")
        return agent_service_pb2.GetAgentResponse(agent=o.agents[request.name])

    @_wrap
    def ListAgents(self, request, context):
        o, _ = self.s.auth(context)
        items = [a for a in o.agents.values() if not request.voice_only or (
            a.active and a.architecture in (R.AGENT_ARCHITECTURE_PIPELINE, R.AGENT_ARCHITECTURE_REALTIME))]
        chunk, nxt = _page(items, request.page_size, request.page_token)
        return agent_service_pb2.ListAgentsResponse(agents=chunk, next_page_token=nxt, total_size=len(items))

    @_wrap
    def UpdateAgent(self, request, context):
        o, _ = self.s.auth(context, write=True)
        cur = o.agents.get(request.agent.name)
        if cur is None:
            raise Abort(code_pb2.NOT_FOUND, f"Agent {request.agent.name} not found.")
        for p in request.update_mask.paths or ["display_name", "architecture", "active", "recording_enabled",
                                               "transcript_enabled"]:
            setattr(cur, p, getattr(request.agent, p))
        return agent_service_pb2.UpdateAgentResponse(agent=cur)


class PhoneServicer(phone_number_service_pb2_grpc.PhoneNumberServiceServicer):
    def __init__(self, s: FakeState) -> None:
        self.s = s

    @_wrap
    def CreatePhoneNumber(self, request, context):
        o, _ = self.s.auth(context, write=True)
        pn = request.phone_number
        if not pn.phone_number.startswith("+") or not pn.phone_number[1:].isdigit():
            raise Abort(code_pb2.INVALID_ARGUMENT, "Invalid phone number.",
                        [("phone_number.phone_number", "must be E.164, like +12025550100")])
        if pn.HasField("outbound_trunk") and pn.outbound_trunk.kind == R.TRUNK_KIND_SIP and not pn.outbound_trunk.host:
            raise Abort(code_pb2.INVALID_ARGUMENT, "Invalid trunk.",
                        [("phone_number.outbound_trunk.host", "required for a SIP trunk")])
        pid = self.s.nid("pn")
        new = R.PhoneNumber()
        new.CopyFrom(pn)
        new.name, new.phone_number_id = f"phoneNumbers/{pid}", pid
        if new.HasField("outbound_trunk"):
            new.outbound_trunk.password_set = bool(new.outbound_trunk.password)
            new.outbound_trunk.password = ""
        new.create_time.CopyFrom(_ts(_now()))
        o.numbers[new.name] = new
        return phone_number_service_pb2.CreatePhoneNumberResponse(phone_number=new)

    @_wrap
    def GetPhoneNumber(self, request, context):
        o, _ = self.s.auth(context)
        if request.name not in o.numbers:
            raise Abort(code_pb2.NOT_FOUND, f"Phone number {request.name} not found.")
        return phone_number_service_pb2.GetPhoneNumberResponse(phone_number=o.numbers[request.name])

    @_wrap
    def ListPhoneNumbers(self, request, context):
        o, _ = self.s.auth(context)
        items = [n for n in o.numbers.values() if not request.with_outbound_trunk_only or n.HasField("outbound_trunk")]
        chunk, nxt = _page(items, request.page_size, request.page_token)
        return phone_number_service_pb2.ListPhoneNumbersResponse(phone_numbers=chunk, next_page_token=nxt,
                                                                 total_size=len(items))

    @_wrap
    def DeletePhoneNumber(self, request, context):
        o, _ = self.s.auth(context, write=True)
        if o.numbers.pop(request.name, None) is None:
            raise Abort(code_pb2.NOT_FOUND, f"Phone number {request.name} not found.")
        return phone_number_service_pb2.DeletePhoneNumberResponse()


_FINAL = {CS.CONTACT_STATUS_COMPLETED, CS.CONTACT_STATUS_FAILED, CS.CONTACT_STATUS_INVALID_NUMBER,
          CS.CONTACT_STATUS_BLOCKED, CS.CONTACT_STATUS_CARRIER_ERROR, CS.CONTACT_STATUS_CANCELLED,
          CS.CONTACT_STATUS_SUPPRESSED}


class BatchServicer(batch_service_pb2_grpc.BatchServiceServicer):
    def __init__(self, s: FakeState) -> None:
        self.s = s

    # helpers
    def _get(self, o: Org, name: str) -> Any:
        if not name.startswith("batches/"):
            name = f"batches/{name}"
        b = o.batches.get(name)
        if b is None:
            raise Abort(code_pb2.NOT_FOUND, f"Batch {name} not found.")
        return b

    def _advance(self, o: Org, b: Any) -> None:
        """Every read of a running batch finishes all of its contacts."""
        if b.status == BS.BATCH_STATUS_SCHEDULED and b.scheduled_start_time.ToDatetime(
                tzinfo=dt.timezone.utc) <= _now():
            b.status = BS.BATCH_STATUS_RUNNING
        if b.status != BS.BATCH_STATUS_RUNNING:
            return
        if not b.HasField("start_time"):
            b.start_time.CopyFrom(_ts(_now()))
            return  # one read in RUNNING before completing, so the UI can see it run
        t = _now()
        for i, c in enumerate(o.contacts[b.name]):
            if c.status in _FINAL:
                continue
            last = c.phone_number[-1]
            c.attempts = c.max_attempts if last in "39" else 1
            c.last_attempt_time.CopyFrom(_ts(t - dt.timedelta(seconds=5 * (len(o.contacts[b.name]) - i))))
            if last in "39":
                c.status = CS.CONTACT_STATUS_FAILED
                c.last_outcome = R.CALL_OUTCOME_NO_ANSWER if last == "3" else R.CALL_OUTCOME_BUSY
                c.failure_reason = "permanently_failed"
            else:
                c.status = CS.CONTACT_STATUS_COMPLETED
                c.last_outcome = R.CALL_OUTCOME_COMPLETED
                c.duration_seconds = 30 + (int(c.phone_number[-3:]) % 200)
                c.call_start_time.CopyFrom(c.last_attempt_time)
                c.call_end_time.CopyFrom(_ts(c.last_attempt_time.ToDatetime(tzinfo=dt.timezone.utc)
                                             + dt.timedelta(seconds=c.duration_seconds)))
                c.cost_micros = int(c.duration_seconds / 60 * RATE_MICROS_PER_MIN)
        b.status = BS.BATCH_STATUS_COMPLETED
        b.complete_time.CopyFrom(_ts(t))
        self._stats(o, b)

    def _stats(self, o: Org, b: Any) -> None:
        cs = o.contacts[b.name]
        st = batch_pb2.BatchStats(total_contacts=len(cs))
        fields = {CS.CONTACT_STATUS_PENDING: "pending", CS.CONTACT_STATUS_QUEUED: "queued",
                  CS.CONTACT_STATUS_DIALING: "dialing", CS.CONTACT_STATUS_CONNECTED: "connected",
                  CS.CONTACT_STATUS_COMPLETED: "completed", CS.CONTACT_STATUS_FAILED: "failed",
                  CS.CONTACT_STATUS_INVALID_NUMBER: "invalid_number", CS.CONTACT_STATUS_BLOCKED: "blocked",
                  CS.CONTACT_STATUS_CARRIER_ERROR: "carrier_error", CS.CONTACT_STATUS_CANCELLED: "cancelled",
                  CS.CONTACT_STATUS_SUPPRESSED: "suppressed"}
        hist: dict[int, int] = {}
        for c in cs:
            setattr(st, fields[c.status], getattr(st, fields[c.status]) + 1)
            st.attempts_total += c.attempts
            st.total_duration_seconds += c.duration_seconds
            st.cost_micros += c.cost_micros
            if c.attempts:
                hist[c.attempts] = hist.get(c.attempts, 0) + 1
        st.successful = st.completed
        st.failed_total = st.failed + st.invalid_number + st.blocked + st.carrier_error
        st.processing = st.pending + st.queued + st.dialing + st.connected
        st.connected_calls = st.completed
        st.success_rate = st.successful / st.total_contacts if st.total_contacts else 0
        st.failure_rate = st.failed_total / st.total_contacts if st.total_contacts else 0
        st.average_duration_seconds = st.total_duration_seconds / st.connected_calls if st.connected_calls else 0
        st.estimated_cost_micros = len(cs) * 3 * RATE_MICROS_PER_MIN
        for k, v in sorted(hist.items()):
            st.attempts_histogram.add(attempts=k, contacts=v)
        b.stats.CopyFrom(st)

    def _check(self, b: Any, action: str) -> None:
        if b.status not in _MATRIX[action]:
            label = BS.Name(b.status).removeprefix("BATCH_STATUS_").lower()
            raise Abort(code_pb2.FAILED_PRECONDITION, f"Cannot {action} a batch that is {label}.",
                        reason="BATCH_NOT_" + _REASONS[action])

    # rpcs
    @_wrap
    def ValidateContacts(self, request, context):
        o, _ = self.s.auth(context)
        rep, est, _ = validate_csv(request.csv_content, request.filename, request.default_region, o.dnc)
        return batch_service_pb2.ValidateContactsResponse(report=rep, cost_estimate=est)

    @_wrap
    def CreateBatch(self, request, context):
        o, _ = self.s.auth(context, write=True)
        if request.request_id and request.request_id in o.requests:
            b = o.batches[o.requests[request.request_id]]
            return batch_service_pb2.CreateBatchResponse(batch=b)
        v = []
        if not request.display_name.strip():
            v.append(("display_name", "required"))
        elif len(request.display_name) > 200:
            v.append(("display_name", "at most 200 characters"))
        if request.agent not in o.agents:
            v.append(("agent", "unknown agent"))
        if request.from_phone_number not in o.numbers:
            v.append(("from_phone_number", "unknown phone number"))
        if request.concurrency_limit and not 1 <= request.concurrency_limit <= 50:
            v.append(("concurrency_limit", "must be between 1 and 50"))
        if request.max_attempts and not 1 <= request.max_attempts <= 10:
            v.append(("max_attempts", "must be between 1 and 10"))
        if v:
            raise Abort(code_pb2.INVALID_ARGUMENT, "The batch is invalid.", v)
        rep, est, valid = validate_csv(request.csv_content, request.filename, request.default_region, o.dnc)
        if not valid:
            raise Abort(code_pb2.INVALID_ARGUMENT, "The CSV has no valid contact.", [("csv_content", "no valid rows")])
        bid = self.s.nid("batch")
        name = f"batches/{bid}"
        b = batch_pb2.Batch(
            name=name, batch_id=bid, display_name=request.display_name.strip(), description=request.description,
            status=BS.BATCH_STATUS_RUNNING, agent=request.agent,
            agent_display_name=o.agents[request.agent].display_name, from_phone_number=request.from_phone_number,
            from_phone_number_e164=o.numbers[request.from_phone_number].phone_number,
            concurrency_limit=request.concurrency_limit or 5, max_attempts=request.max_attempts or 3,
            timezone=request.timezone or "UTC", create_time=_ts(_now()), custom_columns=rep.custom_columns,
            calling_window_mode=request.calling_window_mode, max_call_duration_seconds=1800,
        )
        if request.calling_window_mode == R.CALLING_WINDOW_MODE_CUSTOM:
            b.calling_window.CopyFrom(request.calling_window)
        if request.scheduled_local_time:
            self._schedule(b, request.scheduled_local_time, request.timezone or "UTC", "scheduled_local_time")
        mx = b.max_attempts
        cs = []
        for v_ in valid:
            cid = self.s.nid("c")
            c = batch_pb2.Contact(
                name=f"{name}/contacts/{cid}", contact_id=cid, display_name=v_["name"], phone_number=v_["phone"],
                email=v_["email"], variables=v_["vars"], status=CS.CONTACT_STATUS_PENDING, max_attempts=mx,
                row_number=v_["row"], timezones=[b.timezone],
            )
            if v_["phone"] in o.dnc:
                c.status = CS.CONTACT_STATUS_SUPPRESSED
                c.failure_reason = "on do-not-call list"
            cs.append(c)
        o.batches[name] = b
        o.contacts[name] = cs
        if request.request_id:
            o.requests[request.request_id] = name
        self._stats(o, b)
        return batch_service_pb2.CreateBatchResponse(batch=b, report=rep, cost_estimate=est)

    def _schedule(self, b: Any, local: str, tz: str, fieldname: str) -> None:
        from zoneinfo import ZoneInfo

        try:
            when = dt.datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(tz))
        except Exception:
            raise Abort(code_pb2.INVALID_ARGUMENT, "Invalid schedule.", [(fieldname, "not a valid local time")])
        if when <= _now():
            raise Abort(code_pb2.INVALID_ARGUMENT, "Invalid schedule.", [(fieldname, "must be in the future")])
        b.scheduled_start_time.CopyFrom(_ts(when.astimezone(dt.timezone.utc)))
        b.timezone = tz
        b.status = BS.BATCH_STATUS_SCHEDULED

    @_wrap
    def GetBatch(self, request, context):
        o, _ = self.s.auth(context)
        b = self._get(o, request.name)
        self._advance(o, b)
        return batch_service_pb2.GetBatchResponse(batch=b)

    @_wrap
    def ListBatches(self, request, context):
        o, _ = self.s.auth(context)
        items = sorted(o.batches.values(), key=lambda b: b.create_time.ToNanoseconds(), reverse=True)
        if request.statuses:
            items = [b for b in items if b.status in request.statuses]
        if request.search:
            items = [b for b in items if request.search.lower() in b.display_name.lower()]
        chunk, nxt = _page(items, request.page_size, request.page_token)
        return batch_service_pb2.ListBatchesResponse(batches=chunk, next_page_token=nxt, total_size=len(items))

    @_wrap
    def ListContacts(self, request, context):
        o, _ = self.s.auth(context)
        b = self._get(o, request.parent)
        if request.page_size not in (0, 25, 50, 100):
            raise Abort(code_pb2.INVALID_ARGUMENT, "Invalid page size.", [("page_size", "25, 50 or 100")])
        items = list(o.contacts[b.name])
        if request.statuses:
            items = [c for c in items if c.status in request.statuses]
        if request.HasField("min_attempts") and request.min_attempts >= 0:
            items = [c for c in items if c.attempts >= request.min_attempts]
        if request.HasField("max_attempts") and request.max_attempts >= 0:
            items = [c for c in items if c.attempts <= request.max_attempts]
        if request.HasField("last_attempt_from"):
            items = [c for c in items if c.HasField("last_attempt_time")
                     and c.last_attempt_time.ToNanoseconds() >= request.last_attempt_from.ToNanoseconds()]
        if request.HasField("last_attempt_to"):
            items = [c for c in items if c.HasField("last_attempt_time")
                     and c.last_attempt_time.ToNanoseconds() < request.last_attempt_to.ToNanoseconds()]
        if request.search:
            q = request.search.lower()
            items = [c for c in items if q in c.phone_number or q in c.display_name.lower()
                     or q == CS.Name(c.status).removeprefix("CONTACT_STATUS_").lower().replace("_", " ")]
        chunk, nxt = _page(items, request.page_size, request.page_token)
        return batch_service_pb2.ListContactsResponse(contacts=chunk, next_page_token=nxt, total_size=len(items))

    @_wrap
    def GetContact(self, request, context):
        o, _ = self.s.auth(context)
        parent = request.name.split("/contacts/")[0]
        b = self._get(o, parent)
        for c in o.contacts[b.name]:
            if c.name == request.name:
                out = batch_pb2.Contact()
                out.CopyFrom(c)
                for n in range(1, c.attempts + 1):
                    out.attempt_details.add(attempt_number=n, outcome=c.last_outcome, start_time=c.last_attempt_time,
                                            duration_seconds=c.duration_seconds if n == c.attempts else 0)
                return batch_service_pb2.GetContactResponse(contact=out)
        raise Abort(code_pb2.NOT_FOUND, f"Contact {request.name} not found.")

    def _transition(self, context, name, action, new_status):
        o, _ = self.s.auth(context, write=True)
        b = self._get(o, name)
        self._check(b, action)
        b.status = new_status
        if new_status == BS.BATCH_STATUS_CANCELLED:
            for c in o.contacts[b.name]:
                if c.status not in _FINAL:
                    c.status = CS.CONTACT_STATUS_CANCELLED
            b.complete_time.CopyFrom(_ts(_now()))
            self._stats(o, b)
        return b

    @_wrap
    def PauseBatch(self, request, context):
        return batch_service_pb2.PauseBatchResponse(
            batch=self._transition(context, request.name, "pause", BS.BATCH_STATUS_PAUSED))

    @_wrap
    def ResumeBatch(self, request, context):
        return batch_service_pb2.ResumeBatchResponse(
            batch=self._transition(context, request.name, "resume", BS.BATCH_STATUS_RUNNING))

    @_wrap
    def CancelBatch(self, request, context):
        return batch_service_pb2.CancelBatchResponse(
            batch=self._transition(context, request.name, "cancel", BS.BATCH_STATUS_CANCELLED))

    @_wrap
    def DeleteBatch(self, request, context):
        o, _ = self.s.auth(context, write=True)
        b = self._get(o, request.name)
        self._check(b, "delete")
        del o.batches[b.name]
        del o.contacts[b.name]
        return batch_service_pb2.DeleteBatchResponse()

    @_wrap
    def RescheduleBatch(self, request, context):
        o, _ = self.s.auth(context, write=True)
        b = self._get(o, request.name)
        self._check(b, "reschedule")
        self._schedule(b, request.scheduled_local_time, request.timezone or "UTC", "scheduled_local_time")
        return batch_service_pb2.RescheduleBatchResponse(batch=b)

    @_wrap_stream
    def WatchBatch(self, request, context):
        o, _ = self.s.auth(context)
        b = self._get(o, request.name)
        yield batch_service_pb2.WatchBatchResponse(snapshot=b)

    @_wrap_stream
    def ExportBatch(self, request, context):
        o, _ = self.s.auth(context)
        b = self._get(o, request.name)
        self._check(b, "export")
        items = o.contacts[b.name]
        if request.filter == batch_service_pb2.EXPORT_FILTER_SUCCESSFUL:
            items = [c for c in items if c.status == CS.CONTACT_STATUS_COMPLETED]
        elif request.filter == batch_service_pb2.EXPORT_FILTER_FAILED:
            items = [c for c in items if c.status in (CS.CONTACT_STATUS_FAILED, CS.CONTACT_STATUS_INVALID_NUMBER,
                                                      CS.CONTACT_STATUS_BLOCKED, CS.CONTACT_STATUS_CARRIER_ERROR)]
        if request.format == batch_service_pb2.EXPORT_FORMAT_PDF:
            data = b"%PDF-1.4\n% fake report\n" + f"{b.display_name}: {len(items)} contacts\n".encode() + b"%%EOF\n"
            ctype, fname = "application/pdf", f"{b.batch_id}.pdf"
        else:
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(["name", "phone", "status", "attempts", "duration_seconds", "failure_reason", "call_time"])
            for c in items:
                phone = "'" + c.phone_number if c.phone_number[:1] in "=+-@" else c.phone_number
                w.writerow([c.display_name, phone, CS.Name(c.status).removeprefix("CONTACT_STATUS_").lower(),
                            c.attempts, f"{c.duration_seconds:.0f}", c.failure_reason,
                            c.last_attempt_time.ToJsonString() if c.HasField("last_attempt_time") else ""])
            data = buf.getvalue().encode()
            ctype, fname = "text/csv", f"{b.batch_id}.csv"
        for i in range(0, max(len(data), 1), 64):
            msg = batch_service_pb2.ExportBatchResponse(chunk=data[i:i + 64])
            if i == 0:
                msg.content_type, msg.filename = ctype, fname
            yield msg


def start_fake_server(port: int = 0) -> tuple[grpc.Server, str, FakeState]:
    state = FakeState()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    organization_service_pb2_grpc.add_OrganizationServiceServicer_to_server(OrgServicer(state), server)
    agent_service_pb2_grpc.add_AgentServiceServicer_to_server(AgentServicer(state), server)
    phone_number_service_pb2_grpc.add_PhoneNumberServiceServicer_to_server(PhoneServicer(state), server)
    batch_service_pb2_grpc.add_BatchServiceServicer_to_server(BatchServicer(state), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, f"127.0.0.1:{bound}", state


def main() -> None:  # pragma: no cover - manual tool
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, default=50051)
    args = ap.parse_args()
    server, addr, state = start_fake_server(args.port)
    keys = state.new_org("Demo Org")
    print(f"fake batchcalls API on {addr}")
    print(f"owner key:  {keys.owner_key}\nadmin key:  {keys.admin_key}\nmember key: {keys.member_key}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":  # pragma: no cover
    main()
