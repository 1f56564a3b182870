"""Voicemail, retries by outcome and reserved capacity (issue 13, items 3–5),
through a real dialer process and the simulated carrier.

The module spawns its own carrier (time scale 0.01: a simulated minute is
0.6 s) and one dialer, so the carrier's record is at hand: it is the ground
truth for machine answers and for the live-call overlap. The session server
runs with ``BATCHCALLS_RETRY_DELAYS=0.3,0.6`` (tests/conftest.py) and the
default voicemail delay, one hour."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from batchcalls.v1 import (
    batch_pb2,
    batch_service_pb2,
    organization_service_pb2,
    resources_pb2,
)

from admin_ui.client import ApiError, BatchcallsClient
from simcarrier import number_with_outcome
from simcarrier import spawn as spawn_carrier
from simcarrier.analysis import max_overlap

BS = resources_pb2.BatchStatus
CS = resources_pb2.ContactStatus
CO = resources_pb2.CallOutcome
TIMEOUT_S = 120
DONE_STATUSES = (BS.BATCH_STATUS_COMPLETED, BS.BATCH_STATUS_FAILED, BS.BATCH_STATUS_CANCELLED)


@pytest.fixture(scope="module")
def carrier_and_stack(stack: Any) -> Iterator[tuple[Any, str]]:
    carrier = spawn_carrier(time_scale=0.01, seed=13)
    dialer = stack.spawn(
        ["-m", "dialer"],
        env={"BATCHCALLS_SIMCARRIER_URL": carrier.url, "BATCHCALLS_DIALER_METRICS_PORT": "0",
             "BATCHCALLS_LOG_LEVEL": "WARNING"},
    )
    yield stack, carrier.url
    if dialer.poll() is None:
        dialer.terminate()
        try:
            dialer.wait(15)
        except Exception:  # noqa: BLE001
            dialer.kill()
    carrier.stop()


def _calls(url: str, batch_id: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/calls?batch_id={batch_id}", timeout=30) as resp:
        return json.loads(resp.read())


def _org(stack: Any, limit: int = 10) -> tuple[BatchcallsClient, Any]:
    keys = stack.new_org(f"issue13-{uuid.uuid4().hex[:6]}", concurrency_limit=limit)
    return BatchcallsClient(stack.grpc_address, keys.owner_key), keys


def _number(client: BatchcallsClient, **weights: float) -> str:
    profile = resources_pb2.SimulationProfile(**weights)
    return client.create_phone_number(resources_pb2.PhoneNumber(
        phone_number=f"+1415556{uuid.uuid4().int % 9000 + 1000:04d}", display_name="issue 13",
        outbound_trunk=resources_pb2.OutboundTrunk(kind=resources_pb2.TRUNK_KIND_SIMULATED,
                                                   calls_per_second=1000.0, simulation=profile),
    )).name


def _batch(client: BatchcallsClient, keys: Any, number: str, phones: list[str], **kw: Any) -> str:
    rows = "".join(f"{p},C{i}\n" for i, p in enumerate(phones))
    kw.setdefault("max_attempts", 1)
    return client.create_batch(batch_service_pb2.CreateBatchRequest(
        request_id=f"i13-{uuid.uuid4()}", display_name="issue 13", agent=keys.agent_name,
        from_phone_number=number, csv_content=f"phone,name\n{rows}".encode(), filename="c.csv",
        calling_window_mode=resources_pb2.CALLING_WINDOW_MODE_NONE, **kw,
    )).batch.name


def _phones(n: int, start: int) -> list[str]:
    return [number_with_outcome("random", start + i) for i in range(n)]


def _wait_done(client: BatchcallsClient, name: str) -> batch_pb2.Batch:
    deadline = time.monotonic() + TIMEOUT_S
    while (b := client.get_batch(name)).status not in DONE_STATUSES:
        assert time.monotonic() < deadline, f"batch did not finish: {b.stats}"
        time.sleep(0.3)
    return b


def _contacts(client: BatchcallsClient, name: str) -> list[batch_pb2.Contact]:
    return [client.get_contact(c.name) for c in client.list_contacts(name, page_size=100).contacts]


def _policy(**delays: list[int]) -> batch_pb2.RetryPolicy:
    return batch_pb2.RetryPolicy(outcome_retries=[
        batch_pb2.OutcomeRetry(outcome=CO.Value(f"CALL_OUTCOME_{o.upper()}"), delay_seconds=d)
        for o, d in delays.items()
    ])


def _seconds(ts: Any) -> float:
    return ts.seconds + ts.nanos / 1e9


# -- voicemail ----------------------------------------------------------------


def test_voicemail_retry_later_queues_with_the_voicemail_default(carrier_and_stack: tuple[Any, str]) -> None:
    stack, url = carrier_and_stack
    client, keys = _org(stack)
    number = _number(client, weight_voicemail=1.0, mean_call_seconds=30.0, ring_seconds=2.0)
    name = _batch(client, keys, number, _phones(3, 100), max_attempts=2)
    batch = client.get_batch(name)
    assert batch.voicemail_action == batch_pb2.VOICEMAIL_ACTION_RETRY_LATER
    shown = {r.outcome: list(r.delay_seconds) for r in batch.retry_policy.outcome_retries}
    assert shown[CO.CALL_OUTCOME_VOICEMAIL] == [3600]  # the documented default
    assert shown[CO.CALL_OUTCOME_BUSY] == [0, 1]  # the server's (test-scaled) default list, rounded
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        contacts = _contacts(client, name)
        if all(c.attempts == 1 and c.status == CS.CONTACT_STATUS_QUEUED for c in contacts):
            break
        assert time.monotonic() < deadline, [(c.status, c.attempts) for c in contacts]
        time.sleep(0.3)
    for c in contacts:
        (att,) = c.attempt_details
        assert att.outcome == CO.CALL_OUTCOME_VOICEMAIL and c.last_outcome == CO.CALL_OUTCOME_VOICEMAIL
        assert att.HasField("answer_time")  # the machine answered
        wait = _seconds(c.next_attempt_time) - _seconds(att.end_time)
        assert 3590 <= wait <= 3610, wait  # "next retry at": an hour later
    records = _calls(url, batch.batch_id)
    assert len(records) == 3 and all(r["answered_by"] == "machine" for r in records)
    client.cancel_batch(name)


def test_voicemail_own_delay_retries_then_fails_and_is_no_pickup(carrier_and_stack: tuple[Any, str]) -> None:
    stack, url = carrier_and_stack
    client, keys = _org(stack)
    number = _number(client, weight_voicemail=1.0, mean_call_seconds=30.0, ring_seconds=2.0)
    name = _batch(client, keys, number, _phones(3, 200), max_attempts=2, retry_policy=_policy(voicemail=[1]))
    batch = _wait_done(client, name)
    assert batch.status == BS.BATCH_STATUS_COMPLETED
    for c in _contacts(client, name):
        assert (c.status, c.failure_reason, c.attempts) == (CS.CONTACT_STATUS_FAILED, "permanently_failed", 2)
        assert [a.outcome for a in c.attempt_details] == [CO.CALL_OUTCOME_VOICEMAIL] * 2
        a1, a2 = sorted(c.attempt_details, key=lambda a: a.attempt_number)
        assert _seconds(a2.start_time) - _seconds(a1.end_time) >= 0.8  # the batch's 1 s voicemail delay
    s = batch.stats
    assert (s.connected_calls, s.machine_answers, s.human_answers, s.pickup_rate) == (6, 6, 0, 0.0)
    assert len(_calls(url, batch.batch_id)) == 6


def test_voicemail_done_completes_the_contact(carrier_and_stack: tuple[Any, str]) -> None:
    stack, _ = carrier_and_stack
    client, keys = _org(stack)
    number = _number(client, weight_voicemail=1.0, mean_call_seconds=30.0, ring_seconds=2.0)
    name = _batch(client, keys, number, _phones(3, 300), max_attempts=3,
                  voicemail_action=batch_pb2.VOICEMAIL_ACTION_DONE)
    batch = _wait_done(client, name)
    assert batch.status == BS.BATCH_STATUS_COMPLETED and batch.voicemail_action == batch_pb2.VOICEMAIL_ACTION_DONE
    for c in _contacts(client, name):
        assert (c.status, c.failure_reason, c.attempts) == (CS.CONTACT_STATUS_COMPLETED, "voicemail", 1)
        assert c.last_outcome == CO.CALL_OUTCOME_VOICEMAIL
    assert batch.stats.successful == 3


def test_pickup_rate_counts_humans_only(carrier_and_stack: tuple[Any, str]) -> None:
    stack, url = carrier_and_stack
    client, keys = _org(stack)
    number = _number(client, weight_completed=1.0, weight_voicemail=1.0, mean_call_seconds=30.0, ring_seconds=2.0)
    name = _batch(client, keys, number, _phones(16, 400), max_attempts=1)
    batch = _wait_done(client, name)
    records = _calls(url, batch.batch_id)
    machines = sum(1 for r in records if r["answered_by"] == "machine")
    humans = sum(1 for r in records if r["answered_by"] == "human")
    assert machines and humans and machines + humans == 16  # both kinds happened
    s = batch.stats
    assert (s.machine_answers, s.human_answers, s.connected_calls) == (machines, humans, 16)
    assert s.pickup_rate == pytest.approx(humans / 16)
    by_outcome = {c.last_outcome for c in _contacts(client, name)}
    assert by_outcome == {CO.CALL_OUTCOME_VOICEMAIL, CO.CALL_OUTCOME_COMPLETED}


# -- retries by outcome ---------------------------------------------------------


def test_each_outcome_waits_its_own_delay_and_final_outcomes_are_not_retried(
    carrier_and_stack: tuple[Any, str],
) -> None:
    stack, _ = carrier_and_stack
    client, keys = _org(stack)
    number = _number(client, weight_completed=1.0, mean_call_seconds=30.0)
    phones = ([number_with_outcome("busy", 500 + i) for i in range(3)]
              + [number_with_outcome("no_answer", 510 + i) for i in range(3)]
              + [number_with_outcome("invalid_number", 520), number_with_outcome("blocked", 521),
                 number_with_outcome("carrier_error", 522)])
    name = _batch(client, keys, number, phones, max_attempts=2, retry_policy=_policy(busy=[2], no_answer=[6]))
    shown = {r.outcome: list(r.delay_seconds) for r in client.get_batch(name).retry_policy.outcome_retries}
    assert shown[CO.CALL_OUTCOME_BUSY] == [2] and shown[CO.CALL_OUTCOME_NO_ANSWER] == [6]
    # While they wait, each shows its own "next retry at".
    seen: dict[str, float] = {}
    deadline = time.monotonic() + TIMEOUT_S
    while (b := client.get_batch(name)).status not in DONE_STATUSES:
        assert time.monotonic() < deadline
        for c in client.list_contacts(name, page_size=100).contacts:
            if c.status == CS.CONTACT_STATUS_QUEUED and c.HasField("next_attempt_time") and c.name not in seen:
                seen[c.name] = _seconds(c.next_attempt_time) - _seconds(c.last_attempt_time)
        time.sleep(0.2)
    assert b.status == BS.BATCH_STATUS_COMPLETED
    by_phone = {c.phone_number: c for c in _contacts(client, name)}
    for phone in phones[:6]:
        c = by_phone[phone]
        want = 2 if phone in phones[:3] else 6
        expected_outcome = CO.CALL_OUTCOME_BUSY if want == 2 else CO.CALL_OUTCOME_NO_ANSWER
        assert (c.status, c.attempts, c.last_outcome) == (CS.CONTACT_STATUS_FAILED, 2, expected_outcome)
        a1, a2 = sorted(c.attempt_details, key=lambda a: a.attempt_number)
        gap = _seconds(a2.start_time) - _seconds(a1.end_time)
        assert want - 0.5 <= gap <= want + 3.5, (phone, want, gap)
        if c.name in seen:
            assert want - 0.5 <= seen[c.name] <= want + 3.5, (phone, want, seen[c.name])
    assert any(n in seen for n in (by_phone[p].name for p in phones[:6])), "no queued contact was observed"
    for phone, status in zip(phones[6:], (CS.CONTACT_STATUS_INVALID_NUMBER, CS.CONTACT_STATUS_BLOCKED,
                                           CS.CONTACT_STATUS_CARRIER_ERROR)):
        c = by_phone[phone]
        assert (c.status, c.attempts) == (status, 1), phone  # never retried


@pytest.mark.parametrize(("policy", "field"), [
    (_policy(busy=[7 * 24 * 3600 + 1]), "retry_policy"),
    (_policy(voicemail=[60] * 11), "retry_policy"),
    (_policy(busy=[]), "retry_policy"),
    (_policy(invalid_number=[60]), "retry_policy"),
    (batch_pb2.RetryPolicy(outcome_retries=[batch_pb2.OutcomeRetry(outcome=CO.CALL_OUTCOME_BUSY, delay_seconds=[1]),
                                            batch_pb2.OutcomeRetry(outcome=CO.CALL_OUTCOME_BUSY, delay_seconds=[2])]),
     "retry_policy"),
])
def test_retry_policy_bounds(carrier_and_stack: tuple[Any, str], policy: batch_pb2.RetryPolicy, field: str) -> None:
    stack, _ = carrier_and_stack
    client, keys = _org(stack)
    with pytest.raises(ApiError) as err:
        _batch(client, keys, keys.phone_number_name, _phones(1, 600), retry_policy=policy)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert any(v.field.startswith(field) for v in err.value.field_violations), err.value.field_violations


# -- reserved capacity ----------------------------------------------------------


def _set_reserve(client: BatchcallsClient, org_name: str, n: int) -> organization_service_pb2.Organization:
    return client.update_organization(organization_service_pb2.Organization(name=org_name, reserved_concurrency=n),
                                      ["reserved_concurrency"])


def test_reserved_capacity_caps_batches_and_a_change_applies_on_the_next_claim(
    carrier_and_stack: tuple[Any, str],
) -> None:
    stack, url = carrier_and_stack
    client, keys = _org(stack, limit=5)
    org = client.get_organization().organization
    with pytest.raises(ApiError) as err:
        _set_reserve(client, org.name, 5)  # must stay below the limit
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert _set_reserve(client, org.name, 2).reserved_concurrency == 2
    number = _number(client, weight_completed=1.0, mean_call_seconds=120.0, ring_seconds=1.0)
    # The batch's own limit (10) is above the organization's: only the reserve binds.
    name = _batch(client, keys, number, _phones(30, 700), concurrency_limit=10)
    batch_id = client.get_batch(name).batch_id
    deadline = time.monotonic() + TIMEOUT_S
    while len([c for c in _calls(url, batch_id) if c.get("end") is not None]) < 9:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    switched = time.time()
    _set_reserve(client, org.name, 0)
    assert _wait_done(client, name).status == BS.BATCH_STATUS_COMPLETED
    calls = _calls(url, batch_id)
    assert len(calls) == 30
    spans = [(float(c["start"]), float(c["end"])) for c in calls]
    before = max_overlap(s for s in spans if s[0] < switched)
    after = max_overlap(s for s in spans if s[0] >= switched)
    assert before == 3, f"with limit 5 and reserve 2: {before} live calls"
    assert after == 5, f"reserve 0 on the next claim: {after} live calls"


def test_reconciler_writes_the_limit_minus_the_reserve(stack: Any) -> None:
    """The repair pass (compare-and-set) and a rebuild put back what batches
    may use, never the bare organization limit."""
    from contract import keys as redis_keys
    from server.service import background

    client, keys = _org(stack, limit=7)
    org_name = client.get_organization().organization.name
    _set_reserve(client, org_name, 3)
    redis = stack.ctx.redis_state.redis
    config = redis_keys.org_config(keys.org_id)

    async def scenario() -> list[bytes | None]:
        written = await redis.hget(config, "limit")  # by UpdateOrganization
        await redis.hdel(config, "limit")  # lost
        await background.reconcile(stack.ctx)
        restored = await redis.hget(config, "limit")
        await redis.hset(config, "limit", 7)  # the bare limit, and nobody changes it
        await background.reconcile(stack.ctx)
        return [written, restored, await redis.hget(config, "limit")]

    assert stack.run(scenario()) == [b"4", b"4", b"4"]
