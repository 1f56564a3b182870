"""Issue 12 end to end: a batch on a SIP trunk (sipp as carrier and callee)
whose agent has a SIP connection (a second sipp as the agent) runs through
the real server and a ``python -m dialer`` process. The dialer wires the
StartAttempt agent connection into the call (the agent's INVITE carries the
attempt's ids and the selected contact variable), and the attempt keeps the
agent's answer: ``agent_answer_delay_ms`` and ``agent_sip_code`` in
GetContact; an agent that is busy ends the attempt as ``agent_error``."""

from __future__ import annotations

import secrets
import socket
import time
import uuid
from collections.abc import Iterator

import pytest
from batchcalls.v1 import (
    agent_service_pb2 as apb,
)
from batchcalls.v1 import (
    agent_service_pb2_grpc as agrpc,
)
from batchcalls.v1 import (
    batch_service_pb2 as bpb,
)
from batchcalls.v1 import (
    batch_service_pb2_grpc as bgrpc,
)
from batchcalls.v1 import (
    phone_number_service_pb2 as pn_pb2,
)
from batchcalls.v1 import (
    phone_number_service_pb2_grpc as pn_grpc,
)
from batchcalls.v1 import (
    resources_pb2 as res,
)

from tests.sip.sipp import CALLEE_NUMBERS, SippProcess, require_sipp, start_sipp

TIMEOUT_S = 60


@pytest.fixture(scope="module")
def peers() -> Iterator[tuple[SippProcess, SippProcess]]:
    why = require_sipp()
    if why:
        pytest.skip(why)
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    callee = start_sipp("callee_uas_media.xml", "udp", media_ip="127.0.0.1")
    agent = start_sipp("agent_uas.xml", "udp", keys={"rtp_port": rtp.getsockname()[1]}, trace_msg=True)
    yield callee, agent
    for proc in (callee, agent):
        proc.stop()
        proc.cleanup()
    rtp.close()


def _run_batch(stack: object, org: object, callee: SippProcess, agent: SippProcess, user: str) -> bpb.GetContactResponse:
    md = org.md()  # type: ignore[attr-defined]
    with stack.channel() as ch:  # type: ignore[attr-defined]
        agents = agrpc.AgentServiceStub(ch)
        agent_name = agents.CreateAgent(apb.CreateAgentRequest(agent=res.Agent(
            display_name=f"sip agent {user}", architecture=res.AGENT_ARCHITECTURE_PIPELINE, active=True,
            sip_connection=res.AgentSipConnection(uri=f"sip:{user}@127.0.0.1:{agent.port};transport=udp",
                                                  header_fields=["plan"]),
        )), metadata=md).agent.name
        number = pn_grpc.PhoneNumberServiceStub(ch).CreatePhoneNumber(pn_pb2.CreatePhoneNumberRequest(
            phone_number=res.PhoneNumber(
                phone_number=f"+12025551{secrets.randbelow(900) + 100:03d}", display_name="sip agent trunk",
                outbound_trunk=res.OutboundTrunk(kind=res.TRUNK_KIND_SIP, host="127.0.0.1", port=callee.port,
                                                 transport=res.SIP_TRANSPORT_UDP, calls_per_second=1000.0),
            )), metadata=md).phone_number
        stub = bgrpc.BatchServiceStub(ch)
        batch = stub.CreateBatch(bpb.CreateBatchRequest(
            request_id=str(uuid.uuid4()), display_name=f"agent {user}", agent=agent_name,
            from_phone_number=number.name, filename="c.csv", max_attempts=1, max_call_duration_seconds=30,
            csv_content=f"phone,name,plan\n{CALLEE_NUMBERS['hangup']},Ann,gold\n".encode(),
            calling_window_mode=res.CALLING_WINDOW_MODE_NONE,
        ), metadata=md).batch
        deadline = time.monotonic() + TIMEOUT_S
        while stub.GetBatch(bpb.GetBatchRequest(name=batch.name), metadata=md).batch.status != res.BATCH_STATUS_COMPLETED:
            assert time.monotonic() < deadline, "batch did not complete"
            time.sleep(0.3)
        (contact,) = stub.ListContacts(bpb.ListContactsRequest(parent=batch.name), metadata=md).contacts
        return stub.GetContact(bpb.GetContactRequest(name=contact.name), metadata=md)


def test_agent_answers_and_the_attempt_keeps_its_answer_delay(stack_with_dialer, org, peers) -> None:
    callee, agent = peers
    contact = _run_batch(stack_with_dialer, org, callee, agent, "agent").contact
    (att,) = contact.attempt_details
    assert att.outcome == res.CALL_OUTCOME_COMPLETED
    assert att.agent_sip_code == 200
    assert 0 < att.agent_answer_delay_ms < 5000
    invites = [h for h in agent.received_requests("INVITE")
               if h.get("x-batchcalls-attempt-id") == [att.attempt_id]]
    assert len(invites) == 1, agent.received_requests("INVITE")
    headers = invites[0]
    assert headers["x-batchcalls-contact-id"] == [contact.contact_id]
    assert headers["x-batchcalls-call-id"] == [att.provider_call_id]
    assert headers["x-bc-plan"] == ["gold"]


def test_busy_agent_ends_the_attempt_as_agent_error(stack_with_dialer, org, peers) -> None:
    callee, agent = peers
    contact = _run_batch(stack_with_dialer, org, callee, agent, "busy").contact
    (att,) = contact.attempt_details
    assert att.outcome == res.CALL_OUTCOME_AGENT_ERROR
    assert att.agent_sip_code == 486
    assert 0 < att.agent_answer_delay_ms < 5000


def test_batch_concurrency_holds_at_the_carrier_peer_with_the_agent_leg(stack_with_dialer, org, peers) -> None:
    """Issue 12 item 6, "limits still hold at the carrier peer": 6 contacts,
    batch concurrency 2, each callee hangs up 2 s after the ACK and the
    agent answers. From the carrier sipp's own record (its per-call log and
    -trace_stat CSV): never more than 2 calls live at once, 6 INVITEs for 6
    distinct numbers; from the agent sipp: one INVITE per attempt."""
    if require_sipp():
        pytest.skip(require_sipp())
    _, agent = peers
    # A carrier peer of its own, so its statistics are this batch's alone.
    callee = start_sipp("callee_uas_media.xml", "udp", media_ip="127.0.0.1")
    numbers = [f"+1415555021{i}" for i in range(6)]  # callee_uas_media.xml: as "hangup"
    md = org.md()
    try:
        with stack_with_dialer.channel() as ch:
            agent_name = agrpc.AgentServiceStub(ch).CreateAgent(apb.CreateAgentRequest(agent=res.Agent(
                display_name="sip agent limit", architecture=res.AGENT_ARCHITECTURE_PIPELINE, active=True,
                sip_connection=res.AgentSipConnection(uri=f"sip:agent@127.0.0.1:{agent.port};transport=udp"),
            )), metadata=md).agent.name
            number = pn_grpc.PhoneNumberServiceStub(ch).CreatePhoneNumber(pn_pb2.CreatePhoneNumberRequest(
                phone_number=res.PhoneNumber(
                    phone_number=f"+12025551{secrets.randbelow(900) + 100:03d}", display_name="sip agent trunk",
                    outbound_trunk=res.OutboundTrunk(kind=res.TRUNK_KIND_SIP, host="127.0.0.1", port=callee.port,
                                                     transport=res.SIP_TRANSPORT_UDP, calls_per_second=1000.0),
                )), metadata=md).phone_number
            stub = bgrpc.BatchServiceStub(ch)
            csv_rows = "".join(f"{n},C{i}\n" for i, n in enumerate(numbers))
            batch = stub.CreateBatch(bpb.CreateBatchRequest(
                request_id=str(uuid.uuid4()), display_name="agent limit", agent=agent_name,
                from_phone_number=number.name, filename="c.csv", max_attempts=1, max_call_duration_seconds=30,
                concurrency_limit=2, csv_content=f"phone,name\n{csv_rows}".encode(),
                calling_window_mode=res.CALLING_WINDOW_MODE_NONE,
            ), metadata=md).batch
            started = time.monotonic()
            deadline = started + TIMEOUT_S
            while (stub.GetBatch(bpb.GetBatchRequest(name=batch.name), metadata=md).batch.status
                   != res.BATCH_STATUS_COMPLETED):
                assert time.monotonic() < deadline, "batch did not complete"
                time.sleep(0.3)
            elapsed = time.monotonic() - started
            listed = stub.ListContacts(bpb.ListContactsRequest(parent=batch.name, page_size=100), metadata=md).contacts
            contacts = [stub.GetContact(bpb.GetContactRequest(name=c.name), metadata=md).contact for c in listed]
        assert callee.wait_idle(15)
        callee.stop()
        st = callee.stats()
    finally:
        callee.stop()
        errors = callee.errors()
        callee.cleanup()

    attempts = [a for c in contacts for a in c.attempt_details]
    print(f"\nbatch done in {elapsed:.1f}s; carrier: invites={st.invites} total_calls={st.total_calls} "
          f"peak_concurrent(log)={st.peak_concurrent} peak_current_calls(stat)={st.peak_current_calls} "
          f"successful={st.successful_calls} failed={st.failed_calls} unexpected={st.unexpected} "
          f"byes_sent={st.byes_sent}; outcomes={[res.CallOutcome.Name(a.outcome) for a in attempts]}")
    # Every contact completed, once, with its agent leg answered.
    assert len(contacts) == 6
    assert all(c.status == res.CONTACT_STATUS_COMPLETED for c in contacts), [c.status for c in contacts]
    assert all(len(c.attempt_details) == 1 for c in contacts), [len(c.attempt_details) for c in contacts]
    assert all(a.outcome == res.CALL_OUTCOME_COMPLETED and a.agent_sip_code == 200 for a in attempts), attempts
    # The carrier peer's own record: 6 calls, 6 distinct numbers, all the
    # callee's hang-ups, and never more than 2 live at once.
    assert st.invites == st.total_calls == 6, (st.invites, st.total_calls)
    dialed = sorted(rec.number for rec in st.calls.values())
    assert dialed == sorted(numbers), dialed
    assert all(rec.end == "hungup" and rec.end_ms is not None for rec in st.calls.values()), st.calls
    assert st.byes_sent == 6 and st.unexpected == 0 and st.failed_calls == 0, (st, errors)
    assert 1 <= st.peak_concurrent <= 2, st.peak_concurrent
    assert st.peak_current_calls <= 2, st.peak_current_calls
    # The agent peer: one INVITE per attempt, all six.
    ours = {a.attempt_id for a in attempts}
    agent_invites = [h["x-batchcalls-attempt-id"][0] for h in agent.received_requests("INVITE")
                     if h.get("x-batchcalls-attempt-id", [""])[0] in ours]
    print(f"agent INVITEs for this batch: {len(agent_invites)} ({len(set(agent_invites))} distinct attempts)")
    assert sorted(agent_invites) == sorted(ours) and len(ours) == 6, agent_invites
