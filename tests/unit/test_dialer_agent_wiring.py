"""The dialer's side of issue 12: the StartAttempt agent connection becomes
the SIP provider's AgentSettings; the agent answer delay travels in
FinishAttempt; the simulated agent's report is derived deterministically and
sent fire-and-forget (only for completed calls, errors swallowed)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
from batchcalls.v1 import batch_pb2, dialer_service_pb2, resources_pb2

from contract.agent import AgentSettings
from dialer.agent_results import (
    SIMULATED_SUMMARY,
    SimulatedAgentReports,
    agent_from_proto,
    simulated_result,
)
from dialer.providers.base import CallResult, Outcome
from dialer.server_client import finish_request
from dialer.settings import DialerSettings

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _result(**kw: object) -> CallResult:
    return CallResult(outcome=Outcome.COMPLETED, start_time=T0, end_time=T0 + timedelta(seconds=9),
                      answer_time=T0 + timedelta(seconds=2), duration_seconds=7.0, sip_code=200, **kw)


def test_agent_connection_becomes_agent_settings() -> None:
    resp = dialer_service_pb2.StartAttemptResponse(agent_sip_connection=resources_pb2.AgentSipConnection(
        uri="sip:bot@10.0.0.5:5080;transport=tcp", scheme="sip", user="bot", host="10.0.0.5", port=5080,
        transport="tcp", username="u", password="p", header_fields=["plan", "name"]))
    assert resp.HasField("agent_sip_connection")
    agent = agent_from_proto(resp.agent_sip_connection)
    assert agent == AgentSettings(host="10.0.0.5", port=5080, user="bot", scheme="sip", transport="tcp",
                                  username="u", password="p", header_fields=("plan", "name"))
    assert agent.uri == "sip:bot@10.0.0.5:5080;transport=tcp" and not agent.validate()
    # Parts left empty take the URI defaults.
    bare = agent_from_proto(resources_pb2.AgentSipConnection(host="agent.example", scheme="sips"))
    assert (bare.port, bare.transport) == (5061, "tls")
    assert not dialer_service_pb2.StartAttemptResponse().HasField("agent_sip_connection")


def test_finish_request_carries_the_agent_answer_delay() -> None:
    kw = {"attempt_id": "att_1", "fencing_token": 3, "outcome": resources_pb2.CALL_OUTCOME_COMPLETED,
          "closed_by": "d", "end_time": T0}
    req = finish_request(**kw, result=_result(agent_answer_delay_seconds=0.8504, agent_sip_code=200))
    assert (req.agent_answer_delay_ms, req.agent_sip_code) == (850, 200)
    # An agent leg that answered within half a millisecond is still one (0 = none).
    assert finish_request(**kw, result=_result(agent_answer_delay_seconds=0.0001)).agent_answer_delay_ms == 1
    assert finish_request(**kw, result=_result()).agent_answer_delay_ms == 0
    assert finish_request(**kw).agent_answer_delay_ms == 0


def test_simulated_result_is_deterministic() -> None:
    msg = simulated_result(_result(transcript="hi", recording_uri="https://rec.example/1.wav"))
    assert msg == batch_pb2.CallResult(disposition=batch_pb2.CALL_DISPOSITION_COMPLETED,
                                       answered_by=batch_pb2.ANSWERED_BY_HUMAN, summary=SIMULATED_SUMMARY,
                                       transcript="hi", recording_uri="https://rec.example/1.wav")
    assert simulated_result(_result(recording_uri="sim://x")).recording_uri == ""


def test_reports_only_completed_calls_and_swallow_errors() -> None:
    async def run() -> tuple[list[str], SimulatedAgentReports]:
        sent: list[str] = []

        async def send(req: object) -> None:
            sent.append(req.attempt_id)  # type: ignore[attr-defined]
            if req.attempt_id == "att_bad":  # type: ignore[attr-defined]
                raise grpc.aio.AioRpcError(grpc.StatusCode.NOT_FOUND, grpc.aio.Metadata(), grpc.aio.Metadata())

        reports = SimulatedAgentReports(send, max_in_flight=2)
        assert reports.after_call("att_1", resources_pb2.CALL_OUTCOME_COMPLETED, _result())
        assert reports.after_call("att_bad", resources_pb2.CALL_OUTCOME_COMPLETED, None)
        assert not reports.after_call("att_2", resources_pb2.CALL_OUTCOME_NO_ANSWER, None)
        assert not reports.after_call("att_3", resources_pb2.CALL_OUTCOME_AGENT_ERROR, _result())
        await reports.drain(2.0)
        return sent, reports

    sent, reports = asyncio.run(run())
    assert sorted(sent) == ["att_1", "att_bad"]
    assert (reports.sent, reports.dropped) == (1, 1)


def test_setting_defaults_on_and_turns_off() -> None:
    assert DialerSettings.from_env({}).simulated_agent_reports is True
    assert DialerSettings.from_env({"BATCHCALLS_SIMULATED_AGENT_REPORTS": "0"}).simulated_agent_reports is False


def test_call_request_brings_the_agent_on_sip_trunks_only() -> None:
    from types import SimpleNamespace

    from contract.trunk import TrunkSettings
    from dialer.call import CallSteps

    grant = dialer_service_pb2.StartAttemptResponse(
        attempt_id="att_9", phone_number="+14155550100", from_phone_number="+12025550100",
        agent_sip_connection=resources_pb2.AgentSipConnection(host="127.0.0.1", port=5080, user="agent",
                                                              scheme="sip", transport="udp"))
    claim = SimpleNamespace(provider_call_id="cid", org_id="org", batch_id="b", contact_id="1")
    steps = SimpleNamespace(settings=SimpleNamespace(ring_timeout_seconds=30.0))
    for kind, expect in (("sip", "sip:agent@127.0.0.1:5080;transport=udp"), ("simulated", None)):
        call = SimpleNamespace(claim=claim, grant=grant, trunk=TrunkSettings(kind=kind), max_call_s=60)
        req = CallSteps.call_request(steps, call)  # type: ignore[arg-type]
        assert req.attempt_id == "att_9"
        assert (req.agent.uri if req.agent else None) == expect
    grant.ClearField("agent_sip_connection")
    call = SimpleNamespace(claim=claim, grant=grant, trunk=TrunkSettings(kind="sip"), max_call_s=60)
    assert CallSteps.call_request(steps, call).agent is None  # type: ignore[arg-type]
