"""The simulated trunk's built-in agent reports through the results API
(issue 12, item 1): a small batch runs on a real dialer process and
simulated carrier (``stack_with_dialer``); every completed contact then shows,
in GetContact, the result the dialer sent with ResultsService.ReportCallResult
on the internal listener (service token), exactly where a real agent's report
shows; calls that were not answered have none. The simulated trunk has no
agent leg: the attempt's agent answer delay stays 0."""

from __future__ import annotations

import time
import uuid

import pytest
from batchcalls.v1 import batch_pb2, batch_service_pb2, resources_pb2

from admin_ui.client import BatchcallsClient
from dialer.agent_results import SIMULATED_SUMMARY

BS = resources_pb2.BatchStatus
CS = resources_pb2.ContactStatus
TIMEOUT_S = 120
N_CONTACTS = 8


@pytest.fixture(scope="module")
def client_and_keys(stack_with_dialer: object) -> tuple[BatchcallsClient, object]:
    keys = stack_with_dialer.new_org("Sim agent")  # type: ignore[attr-defined]
    return BatchcallsClient(stack_with_dialer.grpc_address, keys.owner_key), keys  # type: ignore[attr-defined]


def test_completed_calls_carry_the_simulated_agents_result(client_and_keys: tuple[BatchcallsClient, object]) -> None:
    client, keys = client_and_keys
    # Mostly answered, some not: only answered calls get a report.
    number = client.create_phone_number(resources_pb2.PhoneNumber(
        phone_number=f"+1415556{uuid.uuid4().int % 9000 + 1000:04d}", display_name="sim agent",
        outbound_trunk=resources_pb2.OutboundTrunk(
            kind=resources_pb2.TRUNK_KIND_SIMULATED, calls_per_second=1000.0,
            simulation=resources_pb2.SimulationProfile(weight_completed=3.0, weight_no_answer=1.0,
                                                       mean_call_seconds=30.0, ring_seconds=2.0),
        ),
    ))
    rows = "".join(f"+1415555{2000 + i:04d},C{i}\n" for i in range(N_CONTACTS))
    created = client.create_batch(batch_service_pb2.CreateBatchRequest(
        request_id=f"sim-agent-{uuid.uuid4()}", display_name="sim agent reports",
        agent=keys.agent_name, from_phone_number=number.name,  # type: ignore[attr-defined]
        csv_content=f"phone,name\n{rows}".encode(), filename="c.csv", max_attempts=1,
        calling_window_mode=resources_pb2.CALLING_WINDOW_MODE_NONE,
    ))
    name = created.batch.name
    deadline = time.monotonic() + TIMEOUT_S
    while client.get_batch(name).status not in (BS.BATCH_STATUS_COMPLETED, BS.BATCH_STATUS_FAILED,
                                                 BS.BATCH_STATUS_CANCELLED):
        assert time.monotonic() < deadline, "batch did not finish"
        time.sleep(0.5)
    assert client.get_batch(name).status == BS.BATCH_STATUS_COMPLETED

    contacts = list(client.list_contacts(name, page_size=100).contacts)
    assert len(contacts) == N_CONTACTS
    completed = [c for c in contacts if c.last_outcome == resources_pb2.CALL_OUTCOME_COMPLETED]
    assert completed, "no call was answered"
    # The reports go out after FinishAttempt, in the background: poll.
    pending = {c.name for c in completed}
    shown: dict[str, batch_pb2.Contact] = {}
    while pending and time.monotonic() < deadline:
        for cname in list(pending):
            c = client.get_contact(cname)
            if c.HasField("result"):
                shown[cname] = c
                pending.discard(cname)
        if pending:
            time.sleep(0.3)
    assert not pending, f"no simulated agent result for {sorted(pending)}"
    for c in shown.values():
        assert c.status == CS.CONTACT_STATUS_COMPLETED
        r = c.result
        assert r.disposition == batch_pb2.CALL_DISPOSITION_COMPLETED
        assert r.answered_by == batch_pb2.ANSWERED_BY_HUMAN
        assert r.summary == SIMULATED_SUMMARY
        assert r.HasField("report_time")
        (att,) = c.attempt_details
        assert att.outcome == resources_pb2.CALL_OUTCOME_COMPLETED
        assert att.result == r and att.attempt_id
        # Simulated trunk: no SIP agent leg, so no agent answer delay.
        assert att.agent_answer_delay_ms == 0 and att.agent_sip_code == 0
    for c in contacts:
        if c.last_outcome != resources_pb2.CALL_OUTCOME_COMPLETED:
            full = client.get_contact(c.name)
            assert not full.HasField("result")
            assert not any(a.HasField("result") for a in full.attempt_details)
