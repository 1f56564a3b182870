"""Machine answers on the simulated carrier and in the dialer (issue 13, item 3)."""

from __future__ import annotations

from batchcalls.v1 import resources_pb2

from dialer.providers.base import Outcome
from dialer.providers.simulated import result_from_json
from dialer.server_client import outcome_to_proto, trunk_from_proto
from simcarrier.model import SimulationProfile, plan_call


def test_voicemail_weight_plans_an_answered_machine_call() -> None:
    profile = SimulationProfile.from_mapping({"voicemail": 1.0})
    assert profile.weights == {"voicemail": 1.0}
    for i in range(20):
        plan = plan_call(call_id=f"c{i}", to_number="+14155550123", profile=profile, ring_timeout=30,
                         max_call_duration=600)
        assert plan.outcome == "voicemail" and plan.answer_after is not None
        assert plan.end_after > plan.answer_after and plan.sip_code == 200


def test_the_dialer_maps_a_machine_answer_to_voicemail() -> None:
    call = {"outcome": "voicemail", "answered_by": "machine", "start": 100.0, "answer": 101.0, "end": 105.0,
            "duration_seconds": 4.0, "sip_code": 200}
    assert result_from_json(call).outcome is Outcome.VOICEMAIL
    # A carrier that reports a completed call answered by a machine: still voicemail.
    assert result_from_json({**call, "outcome": "completed"}).outcome is Outcome.VOICEMAIL
    assert result_from_json({**call, "answered_by": "human", "outcome": "completed"}).outcome is Outcome.COMPLETED
    assert outcome_to_proto(Outcome.VOICEMAIL) == resources_pb2.CALL_OUTCOME_VOICEMAIL


def test_the_voicemail_weight_reaches_the_carrier() -> None:
    trunk = resources_pb2.OutboundTrunk(kind=resources_pb2.TRUNK_KIND_SIMULATED,
                                        simulation=resources_pb2.SimulationProfile(weight_voicemail=2.0))
    assert trunk_from_proto(trunk).simulation == {"voicemail": 2.0}
