import json
from datetime import datetime, timedelta, timezone

import pytest

from batchcalls.v1 import resources_pb2
from dialer.providers.base import CallResult, Outcome, TrunkSettings
from dialer.providers.registry import ProviderRegistry, UnknownTrunkKind
from dialer.server_client import finish_request, outcome_to_proto, trunk_from_json, trunk_from_proto, trunk_to_json


def test_every_outcome_maps_to_the_proto_enum():
    for outcome in Outcome:
        name = resources_pb2.CallOutcome.Name(outcome_to_proto(outcome))
        assert name == "CALL_OUTCOME_" + outcome.name


def test_trunk_from_proto_and_json_round_trip():
    t = resources_pb2.OutboundTrunk(
        kind=resources_pb2.TRUNK_KIND_SIP, host="sip.example", port=5060, transport=resources_pb2.SIP_TRANSPORT_TCP,
        username="u", password="p", caller_id_format=resources_pb2.CALLER_ID_FORMAT_NATIONAL,
    )
    s = trunk_from_proto(t)
    assert s == TrunkSettings(kind="sip", host="sip.example", port=5060, transport="tcp", username="u", password="p",
                              caller_id_format="national")
    assert trunk_from_json(trunk_to_json(s)) == s
    sim = trunk_from_proto(resources_pb2.OutboundTrunk(
        kind=resources_pb2.TRUNK_KIND_SIMULATED,
        simulation=resources_pb2.SimulationProfile(weight_busy=2, mean_call_seconds=3)))
    assert sim.kind == "simulated" and sim.simulation == {"busy": 2.0, "mean_call_seconds": 3.0}
    assert json.loads(trunk_to_json(sim))["simulation"] == {"busy": 2.0, "mean_call_seconds": 3.0}
    assert trunk_from_proto(resources_pb2.OutboundTrunk()).kind == "unspecified"


def test_finish_request_carries_the_result():
    start = datetime(2024, 1, 1, 12, tzinfo=timezone.utc)
    r = CallResult(outcome=Outcome.COMPLETED, start_time=start, end_time=start + timedelta(seconds=70),
                   answer_time=start + timedelta(seconds=5), duration_seconds=65, sip_code=200,
                   recording_uri="rec://1", transcript="hi", detail="ok")
    req = finish_request(attempt_id="a", fencing_token=9, outcome=outcome_to_proto(r.outcome), closed_by="d1",
                         end_time=0, result=r)
    assert req.fencing_token == 9 and req.closed_by == "d1" and req.outcome == resources_pb2.CALL_OUTCOME_COMPLETED
    assert req.answer_time.ToDatetime(tzinfo=timezone.utc) == start + timedelta(seconds=5)
    assert req.end_time.ToDatetime(tzinfo=timezone.utc) == start + timedelta(seconds=70)
    assert (req.duration_seconds, req.sip_code, req.recording_uri, req.transcript) == (65, 200, "rec://1", "hi")
    lost = finish_request(attempt_id="a", fencing_token=1, outcome=resources_pb2.CALL_OUTCOME_DIALER_LOST,
                          closed_by="reaper:x", end_time=1_700_000_000.5, detail="lost")
    assert not lost.HasField("answer_time") and lost.end_time.ToMilliseconds() == 1_700_000_000_500


def test_registry_is_lazy_and_per_kind():
    made = []

    def factory(settings):
        made.append(settings)
        return object()

    reg = ProviderRegistry("S", factories={"simulated": factory, "broken": lambda s: 1 / 0})
    assert made == []
    p = reg.get("simulated")
    assert reg.get("SIMULATED") is p and made == ["S"]
    with pytest.raises(ZeroDivisionError):
        reg.get("broken")  # only that kind fails
    with pytest.raises(UnknownTrunkKind):
        reg.get("carrier-pigeon")


def test_default_registry_builds_the_simulated_provider():
    class S:
        simcarrier_url = "http://127.0.0.1:1"

    reg = ProviderRegistry(S())
    p = reg.get("simulated")
    assert type(p).__name__ == "SimulatedProvider"
