"""Maintained counters, live figures (ETA, waits, retries) and cost, against
the real stack, with the batch driven through DialerService."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from batchcalls.v1 import (
    batch_service_pb2 as bpb,
    batch_service_pb2_grpc as bgrpc,
    dialer_service_pb2 as dpb,
    dialer_service_pb2_grpc as dgrpc,
    organization_service_pb2 as opb,
    organization_service_pb2_grpc as ogrpc,
    resources_pb2 as res,
)
from server.domain.cost import call_cost_micros
from server.domain.eta import DEFAULT_MEAN_CALL_SECONDS
from tests.support.drive import create_batch, drive_batch, list_all_contacts, run_attempt, service_md

COUNTERS = (
    "pending", "queued", "dialing", "connected", "completed", "failed", "invalid_number",
    "blocked", "carrier_error", "cancelled", "suppressed",
)


def phones(n: int, base: int = 1000) -> list[str]:
    return [f"+1415555{base + i:04d}" for i in range(n)]


def csv_of(names_phones: list[tuple[str, str]]) -> str:
    return "name,phone\n" + "".join(f"{n},{p}\n" for n, p in names_phones)


def get_batch(stack, org, batch_id):
    with stack.channel() as ch:
        return bgrpc.BatchServiceStub(ch).GetBatch(bpb.GetBatchRequest(name=f"batches/{batch_id}"), metadata=org.md()).batch


def recount(stack, batch_id: str) -> dict[str, int]:
    async def q():
        async with stack.ctx.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT status, count(*) FROM contacts WHERE batch_id = :b GROUP BY status"), {"b": batch_id}
            )
            return {s: n for s, n in rows}

    return stack.run(q())


def attempt_figures(stack, batch_id: str) -> dict[str, float]:
    async def q():
        async with stack.ctx.engine.connect() as conn:
            r = (
                await conn.execute(
                    text(
                        "SELECT count(*) AS n, count(answered_at) AS answered, "
                        "coalesce(sum(duration_seconds), 0) AS dur, coalesce(sum(cost_micros), 0) AS cost "
                        "FROM attempts WHERE batch_id = :b AND ended_at IS NOT NULL"
                    ),
                    {"b": batch_id},
                )
            ).one()
            hist = await conn.execute(
                text(
                    "SELECT attempts, count(*) FROM contacts WHERE batch_id = :b "
                    "AND status NOT IN ('pending','queued','dialing','connected') AND attempts > 0 GROUP BY attempts"
                ),
                {"b": batch_id},
            )
            return {"n": r.n, "answered": r.answered, "dur": float(r.dur), "cost": int(r.cost),
                    "hist": {str(a): c for a, c in hist}}

    return stack.run(q())


def check_counters(stack, org, batch_id: str):
    batch = get_batch(stack, org, batch_id)
    counts = recount(stack, batch_id)
    stats = batch.stats
    for s in COUNTERS:
        assert getattr(stats, s) == counts.get(s, 0), (s, getattr(stats, s), counts)
    assert stats.total_contacts == sum(counts.values())
    assert stats.processing == sum(counts.get(s, 0) for s in ("pending", "queued", "dialing", "connected"))
    return batch, counts


def balance(stack, org) -> int:
    with stack.channel() as ch:
        return ogrpc.OrganizationServiceStub(ch).GetOrganization(
            opb.GetOrganizationRequest(), metadata=org.md()
        ).organization.credit_balance_micros


OUTCOMES = {
    # name -> outcome per attempt (the last one repeats)
    "ok1": ["completed"],
    "ok2": ["completed"],
    "retry_ok": ["no_answer", "completed"],
    "busy3": ["busy"],  # permanently failed after 3 attempts
    "bad": ["invalid_number"],
    "blocked": ["blocked"],
    "carrier": ["carrier_error"],
    "agent": ["agent_error"],
    "timeout_ok": ["timeout", "timeout", "completed"],
}
DURATIONS = {"ok1": 61.5, "ok2": 12.25, "retry_ok": 90.0, "agent": 7.0, "timeout_ok": 1.0}


def outcome_for(c):
    seq = OUTCOMES[c.display_name]
    return seq[min(c.attempts, len(seq) - 1)]


def test_full_batch_counters_cost_and_figures(stack):
    org = stack.new_org(credits_usd=50)
    start_balance = balance(stack, org)
    names = list(OUTCOMES)
    batch = create_batch(stack, org, csv_of(list(zip(names, phones(len(names))))), max_attempts=3)
    assert batch.status == res.BATCH_STATUS_RUNNING
    assert batch.stats.pending == len(names)
    result = drive_batch(stack, org, batch.batch_id, outcome_for,
                         duration=lambda c: DURATIONS.get(c.display_name, 0.0))
    assert result.batch_status == res.BATCH_STATUS_COMPLETED

    batch, counts = check_counters(stack, org, batch.batch_id)
    assert counts == {"completed": 4, "failed": 2, "invalid_number": 1, "blocked": 1, "carrier_error": 1}
    s = batch.stats
    assert s.successful == 4 and s.failed_total == 5
    assert s.success_rate == pytest.approx(4 / 9) and s.failure_rate == pytest.approx(5 / 9)
    assert s.processing == 0
    # attempts: 1+1+2+3+1+1+1+1+3
    figures = attempt_figures(stack, batch.batch_id)
    assert s.attempts_total == figures["n"] == 14
    assert s.connected_calls == figures["answered"] == 5  # 4 completed + agent_error
    assert s.total_duration_seconds == pytest.approx(figures["dur"]) == pytest.approx(sum(DURATIONS.values()))
    assert s.average_duration_seconds == pytest.approx(sum(DURATIONS.values()) / 5)
    assert {str(h.attempts): h.contacts for h in s.attempts_histogram} == figures["hist"]
    by_attempt = {(o.attempt_number, res.CallOutcome.Name(o.outcome)): o.count for o in s.outcomes_by_attempt}
    assert by_attempt[(1, "CALL_OUTCOME_BUSY")] == 1 and by_attempt[(3, "CALL_OUTCOME_BUSY")] == 1
    assert by_attempt[(3, "CALL_OUTCOME_COMPLETED")] == 1
    assert s.retries_pending == 0 and s.waiting_for_window == 0

    # Cost: per call, billed per connected second; the batch sums them; the
    # organization pays exactly that.
    prices = stack.ctx.prices
    expected = sum(call_cost_micros(d, prices) for d in DURATIONS.values())
    assert s.cost_micros == figures["cost"] == expected
    assert call_cost_micros(61.5, prices) == 74825  # 61.5 s x $0.073/min, half up
    assert balance(stack, org) == start_balance - expected
    with stack.channel() as ch:
        stub = bgrpc.BatchServiceStub(ch)
        contacts = {c.display_name: c for c in list_all_contacts(stub, org, batch.batch_id)}
        ok1 = stub.GetContact(bpb.GetContactRequest(name=contacts["ok1"].name), metadata=org.md()).contact
    assert ok1.cost_micros == call_cost_micros(61.5, prices)
    assert [a.cost_micros for a in ok1.attempt_details] == [call_cost_micros(61.5, prices)]
    assert contacts["busy3"].failure_reason == "permanently_failed"
    assert contacts["busy3"].cost_micros == 0

    # Estimated cost: the seed's 3-minute assumption per dialable contact.
    assert s.estimated_cost_micros == 9 * 3 * prices.per_minute_micros
    # Completed: the ETA is the completion instant.
    assert batch.stats.HasField("estimated_completion_time")
    assert batch.stats.estimated_completion_time == batch.complete_time


def test_counters_after_pause_resume_cancel(stack):
    org = stack.new_org()
    batch = create_batch(stack, org, csv_of([(f"c{i}", p) for i, p in enumerate(phones(10, 2000))]))
    bid = batch.batch_id
    drive_batch(stack, org, bid, lambda c: "completed" if int(c.display_name[1:]) % 2 else "no_answer", limit=4)
    check_counters(stack, org, bid)
    with stack.channel() as ch, stack.internal_channel() as ich:
        stub = bgrpc.BatchServiceStub(ch)
        dialer = dgrpc.DialerServiceStub(ich)
        # One call in progress across the pause and the cancel.
        live = list_all_contacts(stub, org, bid, (res.CONTACT_STATUS_PENDING,))[0]
        start = dialer.StartAttempt(
            dpb.StartAttemptRequest(organization_id=org.org_id, batch_id=bid, contact_id=live.contact_id,
                                    fencing_token=42, lease_id="l-live", dialer_id="t", provider_call_id="p-live"),
            metadata=service_md(stack),
        )
        assert start.decision == dpb.START_ATTEMPT_DECISION_GRANTED
        paused = stub.PauseBatch(bpb.PauseBatchRequest(name=f"batches/{bid}"), metadata=org.md()).batch
        assert paused.status == res.BATCH_STATUS_PAUSED
        assert paused.stats.dialing == 1
        assert not paused.stats.HasField("estimated_completion_time")
        check_counters(stack, org, bid)
        resumed = stub.ResumeBatch(bpb.ResumeBatchRequest(name=f"batches/{bid}"), metadata=org.md()).batch
        assert resumed.status == res.BATCH_STATUS_RUNNING
        assert resumed.stats.HasField("estimated_completion_time")
        check_counters(stack, org, bid)
    drive_batch(stack, org, bid, lambda c: "busy", limit=2)
    check_counters(stack, org, bid)
    with stack.channel() as ch, stack.internal_channel() as ich:
        stub = bgrpc.BatchServiceStub(ch)
        cancelled = stub.CancelBatch(bpb.CancelBatchRequest(name=f"batches/{bid}"), metadata=org.md()).batch
        assert cancelled.status == res.BATCH_STATUS_CANCELLED
        assert not cancelled.stats.HasField("estimated_completion_time")
        batch, counts = check_counters(stack, org, bid)
        assert counts.get("pending", 0) == counts.get("queued", 0) == 0
        assert counts["dialing"] == 1
        # The live call ends after the cancel and is recorded.
        dgrpc.DialerServiceStub(ich).FinishAttempt(
            dpb.FinishAttemptRequest(attempt_id=start.attempt_id, fencing_token=42,
                                     outcome=res.CALL_OUTCOME_COMPLETED, duration_seconds=5.0,
                                     answer_time=batch.update_time),
            metadata=service_md(stack),
        )
    batch, counts = check_counters(stack, org, bid)
    assert counts.get("dialing", 0) == 0 and counts["completed"] >= 1


def test_eta_decreases_and_reaches_completion(stack):
    org = stack.new_org(concurrency_limit=10)
    n, limit = 12, 2
    batch = create_batch(stack, org, csv_of([(f"e{i}", p) for i, p in enumerate(phones(n, 3000))]),
                         concurrency_limit=limit)
    bid = batch.batch_id
    # Before any call: n contacts, `limit` at a time, 3-minute calls.
    created = batch.stats.estimated_completion_time.ToDatetime(timezone.utc)
    expected = datetime.now(timezone.utc) + timedelta(seconds=(n / limit) * DEFAULT_MEAN_CALL_SECONDS)
    assert abs((created - expected).total_seconds()) < 5

    etas: list[datetime] = []

    def record(_f):
        b = get_batch(stack, org, bid)
        if b.stats.HasField("estimated_completion_time") and b.status == res.BATCH_STATUS_RUNNING:
            etas.append(b.stats.estimated_completion_time.ToDatetime(timezone.utc))

    drive_batch(stack, org, bid, lambda c: "completed", duration=60.0, on_finish=record)
    # Once a call has been observed the mean is 60 s. With `limit` slots the
    # remaining work goes down one 60 s round every `limit` calls; in between
    # the estimate holds (it never goes up, up to the time the test takes).
    assert len(etas) == n - 1
    steps = [(earlier - later).total_seconds() for earlier, later in zip(etas, etas[1:])]
    for step in steps:
        assert step == pytest.approx(0.0, abs=2.0) or step == pytest.approx(60.0, abs=2.0), steps
    assert (etas[0] - etas[-1]).total_seconds() == pytest.approx(60.0 * (len(etas) - 1) / limit, abs=62.0)
    assert sum(1 for s in steps if s > 30) >= (n - 2) // limit - 1
    final = get_batch(stack, org, bid)
    assert final.status == res.BATCH_STATUS_COMPLETED
    assert final.stats.estimated_completion_time == final.complete_time
    assert final.complete_time.ToDatetime(timezone.utc) <= etas[-1]


def test_retries_pending_and_waiting_for_window(stack):
    org = stack.new_org()
    # A custom window open only on a weekday that is neither today nor
    # tomorrow in California: the contacts are deferred, not dialed.
    today = datetime.now(ZoneInfo("America/Los_Angeles")).isoweekday()
    closed_day = (today + 1) % 7 + 1
    batch = create_batch(
        stack, org, csv_of([(f"w{i}", p) for i, p in enumerate(phones(3, 4000))]),
        calling_window_mode=res.CALLING_WINDOW_MODE_CUSTOM,
        calling_window=res.CallingWindow(start_local_time="09:00", end_local_time="18:00", weekdays=[closed_day]),
    )
    bid = batch.batch_id
    with stack.channel() as ch, stack.internal_channel() as ich:
        stub = bgrpc.BatchServiceStub(ch)
        dialer = dgrpc.DialerServiceStub(ich)
        contacts = list_all_contacts(stub, org, bid)
        for c in contacts[:2]:
            f = run_attempt(dialer, stack, org, bid, c, "completed")
            assert f is None  # deferred
    b = get_batch(stack, org, bid)
    assert b.stats.queued == 2 and b.stats.pending == 1
    assert b.stats.waiting_for_window == 2
    assert b.stats.retries_pending == 0
    # The estimate waits for the window to open.
    eta = b.stats.estimated_completion_time.ToDatetime(timezone.utc)
    assert eta > datetime.now(timezone.utc) + timedelta(hours=12)

    # Retries: a batch without a window, one contact answered "no_answer".
    org2 = stack.new_org()
    batch2 = create_batch(stack, org2, csv_of([(f"r{i}", p) for i, p in enumerate(phones(3, 5000))]))
    drive_batch(stack, org2, batch2.batch_id, lambda c: "no_answer", limit=2)
    b2 = get_batch(stack, org2, batch2.batch_id)
    assert b2.stats.queued == 2
    assert b2.stats.retries_pending == 2
    assert b2.stats.waiting_for_window == 0
    check_counters(stack, org2, batch2.batch_id)


def test_live_figures_query_uses_the_batch_status_index(stack):
    """The queued-contacts query of GetBatch is a per-batch index scan."""
    from server.service.analytics import queued_summary_query

    async def plan():
        async with stack.ctx.engine.connect() as conn:
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            q = queued_summary_query("batch_0000000000000000").compile(compile_kwargs={"literal_binds": True})
            return "\n".join(r[0] for r in await conn.execute(text(f"EXPLAIN {q}")))

    out = stack.run(plan())
    # Which per-batch index the planner picks depends on table statistics
    # (other tests fill the table); a scan of the whole table is the bug.
    assert "Seq Scan" not in out and "ix_contacts_batch" in out, out
