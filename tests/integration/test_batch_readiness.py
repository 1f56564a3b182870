"""The one "can this batch run?" rule (server/domain/batch_readiness.py) on
the paths that ask it of a running batch: a grant (StartAttempt), a changed
agent, a removed caller number and a resume. Each path stops the batch with
the blocker's one wording."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import text

from batchcalls.v1 import (
    agent_service_pb2 as apb,
    agent_service_pb2_grpc as agrpc,
    batch_service_pb2 as bpb,
    batch_service_pb2_grpc as bgrpc,
    dialer_service_pb2 as dpb,
    phone_number_service_pb2 as ppb,
    phone_number_service_pb2_grpc as pgrpc,
    resources_pb2 as res,
)
from google.protobuf.field_mask_pb2 import FieldMask
from server.domain.batch_readiness import AUTO_PAUSE_PREFIX, Blocker
from server.domain.clock import FakeClock
from tests.support.api import error_reason
from tests.support.clocked_stack import clocked_stack, contacts_by_phone, create_batch, get_batch, start_attempt, utc

NUMBERS = ["+12125550143", "+13105550199"]


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(utc(2025, 3, 12, 15))


@pytest.fixture(scope="module")
def cs(embedded, clock):  # type: ignore[no-untyped-def]
    with clocked_stack(embedded, clock) as s:
        yield s


@pytest.fixture()
def running(cs):  # type: ignore[no-untyped-def]
    """(org, running batch, its contacts)."""
    org = cs.new_org()
    batch = create_batch(cs, org, NUMBERS).batch
    assert batch.status == res.BATCH_STATUS_RUNNING
    return org, batch, list(contacts_by_phone(cs, org, batch.batch_id).values())


def assert_failed(cs, org, batch, contacts, blocker: Blocker) -> None:  # type: ignore[no-untyped-def]
    got = get_batch(cs, org, batch.batch_id)
    assert got.status == res.BATCH_STATUS_FAILED
    assert got.status_reason == blocker.message
    assert got.stats.cancelled == len(contacts) and got.stats.pending == 0
    resp, _ = start_attempt(cs, org, batch.batch_id, contacts[0].contact_id)
    assert resp.decision == dpb.START_ATTEMPT_DECISION_BATCH_NOT_RUNNING


def test_deactivating_the_agent_fails_its_running_batch(cs, running) -> None:  # type: ignore[no-untyped-def]
    org, batch, contacts = running
    with cs.channel() as ch:
        agrpc.AgentServiceStub(ch).UpdateAgent(
            apb.UpdateAgentRequest(agent=res.Agent(name=org.agent_name, active=False),
                                   update_mask=FieldMask(paths=["active"])),
            metadata=org.md(),
        )
    assert_failed(cs, org, batch, contacts, Blocker.AGENT_INACTIVE)


def test_making_the_agent_text_fails_its_running_batch(cs, running) -> None:  # type: ignore[no-untyped-def]
    org, batch, contacts = running
    with cs.channel() as ch:
        agrpc.AgentServiceStub(ch).UpdateAgent(
            apb.UpdateAgentRequest(agent=res.Agent(name=org.agent_name, architecture=res.AGENT_ARCHITECTURE_TEXT),
                                   update_mask=FieldMask(paths=["architecture"])),
            metadata=org.md(),
        )
    assert_failed(cs, org, batch, contacts, Blocker.AGENT_NOT_VOICE)


def test_removing_the_caller_number_fails_its_running_batch(cs, running) -> None:  # type: ignore[no-untyped-def]
    org, batch, contacts = running
    with cs.channel() as ch:
        pgrpc.PhoneNumberServiceStub(ch).DeletePhoneNumber(
            ppb.DeletePhoneNumberRequest(name=org.phone_number_name), metadata=org.md()
        )
    assert_failed(cs, org, batch, contacts, Blocker.NUMBER_REMOVED)


def test_a_grant_without_credits_pauses_the_batch_and_resume_is_refused(cs, running) -> None:  # type: ignore[no-untyped-def]
    org, batch, contacts = running

    async def drain() -> None:
        async with cs.ctx.engine.begin() as conn:
            await conn.execute(text("UPDATE organizations SET credit_balance_micros = 0 WHERE id = :o"), {"o": org.org_id})

    cs.run(drain())
    resp, _ = start_attempt(cs, org, batch.batch_id, contacts[0].contact_id)
    assert resp.decision == dpb.START_ATTEMPT_DECISION_BATCH_NOT_RUNNING
    assert resp.reason == Blocker.NO_CREDITS.message
    got = get_batch(cs, org, batch.batch_id)
    assert got.status == res.BATCH_STATUS_PAUSED
    assert got.status_reason == AUTO_PAUSE_PREFIX + Blocker.NO_CREDITS.message
    assert got.stats.pending == len(contacts)  # paused, not failed: the contacts wait
    with cs.channel() as ch, pytest.raises(grpc.RpcError) as err:
        bgrpc.BatchServiceStub(ch).ResumeBatch(bpb.ResumeBatchRequest(name=batch.name), metadata=org.md())
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(err.value) == "INSUFFICIENT_CREDITS"
    assert Blocker.NO_CREDITS.message in err.value.details()
