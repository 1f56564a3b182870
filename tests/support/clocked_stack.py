"""A second batchcalls server whose time is a ``FakeClock``.

The session ``stack`` runs on the system clock; the compliance rules
(calling windows in the callee's zones, the rolling 24 h frequency cap) need
time to be *set*: 03:00 in New York, then 08:00, then a day later. This
module starts another server thread on the same embedded PostgreSQL and
Redis (the session fixture ``embedded``) with ``build_context(settings,
clock=FakeClock(...))``, so every ``now`` the server takes (StartAttempt's
compliance check, ``attempts.started_at``, Redis due times, retry delays)
comes from the test.

    clock = FakeClock(datetime(2025, 3, 12, 12, tzinfo=timezone.utc))
    with clocked_stack(embedded, clock) as s:
        org = s.new_org()
        clock.set(local(2025, 3, 12, 3, 0, "America/New_York"))
        resp, token = start_attempt(s, org, batch_id, contact_id)

Helpers here speak the real gRPC API (DialerService with the service token,
OrganizationService and BatchService with the org's keys).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from google.protobuf import field_mask_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import text

from batchcalls.v1 import (
    batch_pb2,
    batch_service_pb2 as bpb,
    batch_service_pb2_grpc as bgrpc,
    dialer_service_pb2 as dpb,
    dialer_service_pb2_grpc as dgrpc,
    organization_service_pb2 as opb,
    organization_service_pb2_grpc as ogrpc,
    resources_pb2 as res,
)
from server.domain.clock import FakeClock
from tests.support.stack import Stack

_tokens = itertools.count(5_000_000 + secrets.randbelow(1_000_000))

#: Settings of the clocked server. Retry delays are the production ones
#: (5 min, 30 min): they are measured on the fake clock, so they cost nothing.
CLOCKED_SETTINGS: dict[str, Any] = {
    "retry_delays": (300.0, 1800.0),
    "dial_grace_seconds": 1.0,
    "scheduler_interval_seconds": 0.2,
    "reconcile_interval_seconds": 1.0,
    "validation_workers": 2,
}


@contextmanager
def clocked_stack(embedded: Any, clock: FakeClock, **settings_overrides: Any) -> Iterator[Stack]:
    """A Stack (own server thread, own service token) on ``clock``."""
    s = Stack(
        database_url=embedded.database_url,
        redis_url=embedded.redis_url,
        service_token=secrets.token_urlsafe(24),
        clock=clock,
    )
    s.env = {
        "DATABASE_URL": s.database_url,
        "REDIS_URL": s.redis_url,
        "BATCHCALLS_SERVICE_TOKEN": s.service_token,
    }
    s.start_server({**CLOCKED_SETTINGS, **settings_overrides})
    try:
        yield s
    finally:
        s.stop()


# --- time -------------------------------------------------------------------


def local(year: int, month: int, day: int, hour: int, minute: int = 0, zone: str = "UTC", second: int = 0) -> datetime:
    """An aware instant given as a wall-clock reading in ``zone``."""
    return datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(zone))


def utc(year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)


def ts_dt(t: Timestamp) -> datetime:
    return t.ToDatetime(tzinfo=timezone.utc)


def _ts(dt: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(dt)
    return t


# --- DialerService ------------------------------------------------------------


def service_md(stack: Stack) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {stack.service_token}")]


def start_attempt(stack: Stack, org: Any, batch_id: str, contact_id: str) -> tuple[dpb.StartAttemptResponse, int]:
    """StartAttempt as a dialer would send it; returns (response, fencing token)."""
    token = next(_tokens)
    with stack.internal_channel() as ch:
        resp = dgrpc.DialerServiceStub(ch).StartAttempt(
            dpb.StartAttemptRequest(
                organization_id=org.org_id,
                batch_id=batch_id,
                contact_id=contact_id,
                fencing_token=token,
                lease_id=f"lease-{secrets.token_hex(6)}",
                dialer_id="compliance-test",
                provider_call_id=f"call-{secrets.token_hex(8)}",
            ),
            metadata=service_md(stack),
        )
    return resp, token


def finish_attempt(stack: Stack, resp: dpb.StartAttemptResponse, token: int, outcome: str,
                   end_time: datetime | None = None) -> dpb.FinishAttemptResponse:
    """FinishAttempt with ``outcome`` ("completed", "no_answer", "carrier_error", …).
    Answered outcomes are marked answered first, with a 30 s talk."""
    answered = outcome in ("completed", "agent_error")
    end = end_time or stack.clock.now()
    req = dpb.FinishAttemptRequest(
        attempt_id=resp.attempt_id,
        fencing_token=token,
        outcome=res.CallOutcome.Value(f"CALL_OUTCOME_{outcome.upper()}"),
        end_time=_ts(end),
        duration_seconds=30.0 if answered else 0.0,
        closed_by="compliance-test",
    )
    with stack.internal_channel() as ch:
        dialer = dgrpc.DialerServiceStub(ch)
        if answered:
            dialer.MarkAnswered(
                dpb.MarkAnsweredRequest(attempt_id=resp.attempt_id, fencing_token=token, answer_time=_ts(end)),
                metadata=service_md(stack),
            )
            req.answer_time.CopyFrom(_ts(end))
        return dialer.FinishAttempt(req, metadata=service_md(stack))


def call_once(stack: Stack, org: Any, batch_id: str, contact_id: str, outcome: str = "completed") -> dpb.StartAttemptResponse:
    """StartAttempt; if granted, finish it with ``outcome``. Returns the StartAttempt answer."""
    resp, token = start_attempt(stack, org, batch_id, contact_id)
    if resp.decision == dpb.START_ATTEMPT_DECISION_GRANTED:
        finish_attempt(stack, resp, token, outcome)
    return resp


# --- public API -----------------------------------------------------------------


def create_batch(stack: Stack, org: Any, numbers: list[str], *, window: tuple[str, str, list[int]] | None = None,
                 mode: int | None = None, timezone_name: str = "UTC", max_attempts: int = 3,
                 from_number: str = "", **fields: Any) -> bpb.CreateBatchResponse:
    """CreateBatch; ``window`` = (start, end, weekdays) makes it CUSTOM.
    ``mode`` overrides (CALLING_WINDOW_MODE_NONE / _UNSPECIFIED = org default)."""
    csv_text = "phone,name\n" + "".join(f"{n},Person {i}\n" for i, n in enumerate(numbers))
    if window is not None:
        fields["calling_window"] = res.CallingWindow(start_local_time=window[0], end_local_time=window[1],
                                                     weekdays=list(window[2]))
        fields.setdefault("calling_window_mode", res.CALLING_WINDOW_MODE_CUSTOM)
    if mode is not None:
        fields["calling_window_mode"] = mode
    fields.setdefault("calling_window_mode", res.CALLING_WINDOW_MODE_NONE)
    req = bpb.CreateBatchRequest(
        request_id=secrets.token_hex(8),
        display_name=f"compliance {secrets.token_hex(3)}",
        agent=org.agent_name,
        from_phone_number=from_number or org.phone_number_name,
        csv_content=csv_text.encode(),
        filename="contacts.csv",
        timezone=timezone_name,
        max_attempts=max_attempts,
        **fields,
    )
    with stack.channel() as ch:
        return bgrpc.BatchServiceStub(ch).CreateBatch(req, metadata=org.md())


def get_batch(stack: Stack, org: Any, batch_id: str) -> batch_pb2.Batch:
    with stack.channel() as ch:
        return bgrpc.BatchServiceStub(ch).GetBatch(bpb.GetBatchRequest(name=f"batches/{batch_id}"), metadata=org.md()).batch


def contacts_by_phone(stack: Stack, org: Any, batch_id: str) -> dict[str, batch_pb2.Contact]:
    out: dict[str, batch_pb2.Contact] = {}
    token = ""
    with stack.channel() as ch:
        stub = bgrpc.BatchServiceStub(ch)
        while True:
            resp = stub.ListContacts(
                bpb.ListContactsRequest(parent=f"batches/{batch_id}", page_size=100, page_token=token),
                metadata=org.md(),
            )
            out.update({c.phone_number: c for c in resp.contacts})
            token = resp.next_page_token
            if not token:
                return out


def get_contact(stack: Stack, org: Any, contact: batch_pb2.Contact) -> batch_pb2.Contact:
    with stack.channel() as ch:
        return bgrpc.BatchServiceStub(ch).GetContact(bpb.GetContactRequest(name=contact.name), metadata=org.md()).contact


def update_org(stack: Stack, org: Any, role: str = "owner", **fields: Any) -> opb.Organization:
    """UpdateOrganization with a mask of exactly the given fields."""
    o = opb.Organization()
    for k, v in fields.items():
        if k == "default_calling_window":
            if v is not None:
                start, end, days = v
                o.default_calling_window.CopyFrom(res.CallingWindow(start_local_time=start, end_local_time=end,
                                                                    weekdays=list(days)))
        else:
            setattr(o, k, v)
    with stack.channel() as ch:
        return ogrpc.OrganizationServiceStub(ch).UpdateOrganization(
            opb.UpdateOrganizationRequest(organization=o, update_mask=field_mask_pb2.FieldMask(paths=list(fields))),
            metadata=org.md(role),
        ).organization


def get_org(stack: Stack, org: Any) -> opb.Organization:
    with stack.channel() as ch:
        return ogrpc.OrganizationServiceStub(ch).GetOrganization(opb.GetOrganizationRequest(), metadata=org.md()).organization


def add_dnc(stack: Stack, org: Any, numbers: list[str], reason: str = "asked not to be called",
            role: str = "owner") -> opb.AddDoNotCallNumbersResponse:
    with stack.channel() as ch:
        return ogrpc.OrganizationServiceStub(ch).AddDoNotCallNumbers(
            opb.AddDoNotCallNumbersRequest(phone_numbers=numbers, reason=reason), metadata=org.md(role)
        )


def remove_dnc(stack: Stack, org: Any, numbers: list[str], role: str = "owner") -> opb.RemoveDoNotCallNumbersResponse:
    with stack.channel() as ch:
        return ogrpc.OrganizationServiceStub(ch).RemoveDoNotCallNumbers(
            opb.RemoveDoNotCallNumbersRequest(phone_numbers=numbers), metadata=org.md(role)
        )


def list_dnc(stack: Stack, org: Any, search: str = "", page_size: int = 100) -> list[opb.DoNotCallEntry]:
    out: list[opb.DoNotCallEntry] = []
    token = ""
    with stack.channel() as ch:
        stub = ogrpc.OrganizationServiceStub(ch)
        while True:
            resp = stub.ListDoNotCallNumbers(
                opb.ListDoNotCallNumbersRequest(page_size=page_size, page_token=token, search=search),
                metadata=org.md("member"),
            )
            out.extend(resp.entries)
            token = resp.next_page_token
            if not token:
                return out


# --- database (read only) -----------------------------------------------------------


def query(stack: Stack, sql: str, **params: Any) -> list[Any]:
    async def q() -> list[Any]:
        async with stack.ctx.engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())

    return stack.run(q())
