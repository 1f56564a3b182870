"""The simulated carrier's pure parts: outcome model, overrides, record analysis."""

from __future__ import annotations

import json
import statistics
from collections import Counter

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simcarrier.analysis import check_record, load_record, max_overlap
from simcarrier.model import (
    DEFAULT_WEIGHTS,
    OUTCOMES,
    OVERRIDES,
    SUFFIX_FOR,
    SimulationProfile,
    number_with_outcome,
    override_for,
    plan_call,
)

RING = 30.0
MAX = 600.0


def plan(to: str, call_id: str = "call-1", nth: int = 1, profile: SimulationProfile | None = None, seed: int = 0):
    return plan_call(
        call_id=call_id,
        to_number=to,
        profile=profile or SimulationProfile(),
        ring_timeout=RING,
        max_call_duration=MAX,
        nth_call_to_number=nth,
        seed=seed,
    )


# -- overrides ----------------------------------------------------------------


@pytest.mark.parametrize(
    "behaviour,outcome,answered",
    [
        ("busy", "busy", False),
        ("no_answer", "no_answer", False),
        ("timeout", "timeout", False),
        ("invalid_number", "invalid_number", False),
        ("blocked", "blocked", False),
        ("carrier_error", "carrier_error", False),
        ("agent_error", "agent_error", True),
        ("completed_short", "completed", True),
        ("completed_long", "completed", True),
    ],
)
def test_override_forces_outcome_whatever_the_call_id(behaviour: str, outcome: str, answered: bool) -> None:
    for i in range(50):
        p = plan(number_with_outcome(behaviour, i), call_id=f"c{i}")
        assert p.outcome == outcome
        assert (p.answer_after is not None) == answered
        assert p.behaviour == behaviour


def test_override_timings_follow_the_carrier_story() -> None:
    busy = plan(number_with_outcome("busy", 0))
    assert 1.0 <= busy.end_after <= 3.0 and busy.sip_code == 486
    no_answer = plan(number_with_outcome("no_answer", 0))
    assert no_answer.end_after == RING and no_answer.sip_code == 480
    timeout = plan(number_with_outcome("timeout", 0))
    assert RING + 2 <= timeout.end_after <= RING + 5 and timeout.sip_code == 408
    invalid = plan(number_with_outcome("invalid_number", 0))
    assert invalid.end_after <= 2.0 and invalid.sip_code == 404
    long = plan(number_with_outcome("completed_long", 0))
    assert long.talk_seconds == pytest.approx(MAX)
    short = plan(number_with_outcome("completed", 0))
    assert 5.0 <= short.talk_seconds <= 10.0
    agent = plan(number_with_outcome("agent_error", 0))
    assert 1.0 <= agent.talk_seconds <= 3.0


def test_no_answer_then_completed_depends_on_the_nth_call_to_the_number() -> None:
    number = number_with_outcome("no_answer_then_completed", 3)
    assert plan(number, nth=1).outcome == "no_answer"
    assert plan(number, nth=2).outcome == "completed"
    assert plan(number, nth=3).outcome == "completed"


def test_override_table_is_the_documented_one() -> None:
    assert OVERRIDES["0001"] == "busy"
    assert OVERRIDES["0009"] == "no_answer_then_completed"
    assert override_for("+14155550001") == "busy"
    assert override_for("+14155554321") is None
    assert set(OVERRIDES.values()) - {"completed_short", "no_answer_then_completed", "completed_long"} <= set(OUTCOMES)


@pytest.mark.parametrize("outcome", sorted(SUFFIX_FOR))
def test_number_with_outcome_gives_distinct_valid_numbers(outcome: str) -> None:
    numbers = [number_with_outcome(outcome, i) for i in range(0, 9000, 7)]
    assert len(set(numbers)) == len(numbers)
    for n in numbers[::50] + [numbers[-1]]:
        parsed = phonenumbers.parse(n)
        assert phonenumbers.is_valid_number(parsed), n
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == n
        assert n.endswith(SUFFIX_FOR[outcome])


def test_number_with_outcome_rejects_unknown_outcomes_and_indexes() -> None:
    with pytest.raises(ValueError):
        number_with_outcome("voicemail", 0)
    with pytest.raises(ValueError):
        number_with_outcome("busy", -1)
    with pytest.raises(ValueError):
        number_with_outcome("busy", 10**9)


def test_random_numbers_avoid_override_suffixes() -> None:
    assert override_for(number_with_outcome("random", 5)) is None


def test_not_e164_is_invalid_number() -> None:
    assert plan("0415 555 123").outcome == "invalid_number"


# -- random mix -----------------------------------------------------------------


def test_same_call_id_and_seed_give_the_same_plan() -> None:
    n = number_with_outcome("random", 1)
    assert plan(n, call_id="x-1") == plan(n, call_id="x-1")
    plans_seed0 = [plan(n, call_id=f"c{i}", seed=0) for i in range(50)]
    plans_seed1 = [plan(n, call_id=f"c{i}", seed=1) for i in range(50)]
    assert plans_seed0 != plans_seed1


def test_default_mix_matches_the_weights() -> None:
    n = number_with_outcome("random", 1)
    counts = Counter(plan(n, call_id=f"c{i}").outcome for i in range(20000))
    for word, weight in DEFAULT_WEIGHTS.items():
        assert counts[word] / 20000 == pytest.approx(weight, abs=0.015), word


def test_profile_weights_override_the_mix_and_all_zero_means_default() -> None:
    n = number_with_outcome("random", 1)
    only_busy = SimulationProfile.from_mapping({"busy": 1.0, "completed": 0})
    assert {plan(n, call_id=f"c{i}", profile=only_busy).outcome for i in range(200)} == {"busy"}
    zero = SimulationProfile.from_mapping({w: 0.0 for w in OUTCOMES})
    assert zero.weights == DEFAULT_WEIGHTS
    assert SimulationProfile.from_mapping(None).weights == DEFAULT_WEIGHTS
    junk = SimulationProfile.from_mapping({"mean_call_seconds": "abc", "ring_seconds": -4, "busy": float("nan")})
    assert junk.weights == DEFAULT_WEIGHTS and junk.mean_call_seconds == 180 and junk.ring_seconds == 6


def test_talk_time_has_the_profile_mean_and_stays_clipped() -> None:
    n = number_with_outcome("random", 1)
    profile = SimulationProfile.from_mapping({"completed": 1, "mean_call_seconds": 120, "ring_seconds": 4})
    plans = [plan(n, call_id=f"c{i}", profile=profile) for i in range(20000)]
    talks = [p.talk_seconds for p in plans]
    assert statistics.mean(talks) == pytest.approx(120, rel=0.03)
    assert min(talks) >= 5.0 and max(talks) <= MAX
    rings = [p.answer_after for p in plans]
    assert all(2.0 <= r <= 6.0 for r in rings)


def test_sigma_zero_and_ring_zero_give_exact_durations_for_benchmarks() -> None:
    n = number_with_outcome("random", 1)
    profile = SimulationProfile.from_mapping({"completed": 1, "mean_call_seconds": 180, "ring_seconds": 0, "talk_sigma": 0})
    for i in range(100):
        p = plan(n, call_id=f"c{i}", profile=profile)
        assert p.answer_after == 0 and p.end_after == 180


def test_talk_is_clipped_to_max_duration_and_ring_to_ring_timeout() -> None:
    n = number_with_outcome("random", 1)
    profile = SimulationProfile.from_mapping({"completed": 1, "mean_call_seconds": 5000, "ring_seconds": 100})
    p = plan_call(call_id="c", to_number=n, profile=profile, ring_timeout=20, max_call_duration=60)
    assert p.talk_seconds == pytest.approx(60)
    assert p.answer_after < 20
    assert p.detail == "reached max call duration"


# -- record analysis ------------------------------------------------------------


def rec(call_id: str, start: float, end: float | None, org: str = "o", batch: str = "b", contact: str = "", outcome: str = "completed") -> dict:
    return {"call_id": call_id, "org_id": org, "batch_id": batch, "contact_id": contact or call_id,
            "start": start, "end": end, "outcome": outcome if end is not None else None}


def test_end_at_the_same_instant_as_a_start_frees_first() -> None:
    check = check_record([rec("a", 0, 10), rec("b", 10, 20), rec("c", 20, 30)])
    assert check.max_concurrent_by_org == {"o": 1}
    assert check.max_concurrent == 1


def test_max_concurrency_per_org_and_batch() -> None:
    calls = [
        rec("a", 0, 10, org="o1", batch="b1"),
        rec("b", 1, 5, org="o1", batch="b2"),
        rec("c", 2, 3, org="o1", batch="b2"),
        rec("d", 4, 6, org="o2", batch="b3"),
        rec("e", 9, 12, org="o2", batch="b3"),
    ]
    check = check_record(calls)
    assert check.max_concurrent_by_org == {"o1": 3, "o2": 1}
    assert check.max_concurrent_by_batch == {"b1": 1, "b2": 2, "b3": 1}
    assert check.max_concurrent == 3
    assert check.violations(org_limits={"o1": 2, "o2": 1}, batch_limits={"b2": 2}) == ["org o1: 3 live calls > limit 2"]


def test_unfinished_calls_are_live_forever() -> None:
    check = check_record([rec("a", 0, None), rec("b", 100, 101)])
    assert check.max_concurrent == 2 and check.unfinished_calls == 1
    assert check.outcomes == {"live": 1, "completed": 1}


def test_contact_overlap_and_calls_per_contact() -> None:
    calls = [
        rec("a1", 0, 10, contact="k1"),
        rec("a2", 10, 20, contact="k1"),  # touching is not overlapping
        rec("b1", 0, 10, contact="k2"),
        rec("b2", 30, 40, contact="k2"),
        rec("b3", 5, 6, contact="k2"),  # inside b1
    ]
    check = check_record(calls)
    assert check.calls_per_contact == {"k1": 2, "k2": 3}
    assert set(check.overlapping_contacts) == {"k2"}
    assert check.has_overlap
    assert check.violations(max_attempts=2) == ["contact k2: 3 calls > max_attempts 2", "contact k2: calls b1 and b3 overlap"]


def test_overlap_found_behind_a_long_call() -> None:
    # c starts after b ended but while a (the longest) is still live.
    check = check_record([rec("a", 0, 100, contact="k"), rec("b", 1, 2, contact="k"), rec("c", 50, 60, contact="k")])
    assert "k" in check.overlapping_contacts


def test_load_record_keeps_the_last_line_per_call_and_skips_a_torn_line(tmp_path) -> None:
    path = tmp_path / "record.jsonl"
    lines = [json.dumps(rec("a", 0, None)), json.dumps(rec("b", 1, 2)), json.dumps(rec("a", 0, 5)), '{"call_id": "c", "sta']
    path.write_text("\n".join(lines))
    calls = {c["call_id"]: c for c in load_record(path)}
    assert set(calls) == {"a", "b"}
    assert calls["a"]["end"] == 5


intervals = st.lists(
    st.tuples(st.integers(0, 50), st.integers(0, 20)).map(lambda t: (float(t[0]), float(t[0] + t[1]))),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(intervals)
def test_max_overlap_agrees_with_brute_force(spans: list[tuple[float, float]]) -> None:
    instants = {s for s, _ in spans}
    brute = max((sum(1 for s, e in spans if s <= t < e) for t in instants), default=0)
    assert max_overlap(spans) == brute


def test_max_overlap_of_nothing_is_zero() -> None:
    assert max_overlap([]) == 0
    assert check_record([]).max_concurrent == 0
