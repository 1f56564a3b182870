"""SipProvider against a real SIP peer: sipp as the trunk's UAS on loopback.

Skipped when sipp is not on PATH, unless CI=true (then it is an error).
Every outcome is placed over UDP and over TCP, digest auth (401 verified by
sipp's verifyauth, and 407) included, and sipp's own counters must agree:
one INVITE per call (plus one per auth challenge), CANCELs, BYEs both ways,
no unexpected message, and the number of calls live at once.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import pytest

from dialer.providers.base import CallRequest, CallResult, CallState, Outcome, TrunkSettings
from dialer.providers.sip import SipProvider, SipProviderSettings, SipTimers
from tests.sip.sipp import NUMBERS, SIPP_PASSWORD, SIPP_USERNAME, SippProcess, require_sipp, start_sipp

_skip = require_sipp()  # raises under CI=true when sipp is missing
pytestmark = [pytest.mark.sip, pytest.mark.skipif(_skip is not None, reason=_skip or "")]

TIMERS = SipTimers().scaled(0.2)  # T1 = 100 ms: Timer B = 6.4 s
SILENT_MS = 7500  # sipp keeps "silent" calls longer than Timer B

EXPECTED = {
    "completed": (Outcome.COMPLETED, 200),
    "hold": (Outcome.COMPLETED, 200),
    "ring_forever": (Outcome.NO_ANSWER, 487),
    "silent": (Outcome.TIMEOUT, 0),
    "auth401": (Outcome.COMPLETED, 200),
    "auth407": (Outcome.COMPLETED, 200),
    "ignore_cancel": (Outcome.TIMEOUT, 0),
    "busy": (Outcome.BUSY, 486),
    "busy_everywhere": (Outcome.BUSY, 600),
    "unavailable": (Outcome.NO_ANSWER, 480),
    "request_timeout": (Outcome.NO_ANSWER, 408),
    "not_found": (Outcome.INVALID_NUMBER, 404),
    "address_incomplete": (Outcome.INVALID_NUMBER, 484),
    "does_not_exist": (Outcome.INVALID_NUMBER, 604),
    "forbidden": (Outcome.BLOCKED, 403),
    "decline": (Outcome.BLOCKED, 603),
    "service_unavailable": (Outcome.CARRIER_ERROR, 503),
    "server_error": (Outcome.CARRIER_ERROR, 500),
}


@pytest.fixture(params=["udp", "tcp"])
def transport(request) -> str:
    return request.param


@pytest.fixture()
def sipp(transport):
    proc = start_sipp("trunk_uas.xml", transport, silent_ms=SILENT_MS)
    yield proc
    if proc.running():
        proc.stop()
    errors = proc.errors()
    proc.cleanup()
    # "Dead call (successful)" lines are our UDP retransmissions (BYE, ACK) that
    # arrived after sipp had ended the call: normal. Aborted calls are not.
    assert "Aborting call" not in errors and "aborted at" not in errors, errors[:3000]


def trunk_for(sipp: SippProcess, password: str = SIPP_PASSWORD, fmt: str = "e164") -> TrunkSettings:
    return TrunkSettings(
        kind="sip",
        host=sipp.host,
        port=sipp.port,
        transport=sipp.transport,
        username=SIPP_USERNAME,
        password=password,
        caller_id_format=fmt,
    )


def request_for(
    trunk: TrunkSettings, number: str, *, ring: float = 1.0, max_duration: float = 2.0
) -> CallRequest:
    return CallRequest(
        provider_call_id=uuid.uuid4().hex,
        to_number=number,
        from_number="+12025550100",
        trunk=trunk,
        ring_timeout_seconds=ring,
        max_call_duration_seconds=max_duration,
        organization_id="org-1",
        batch_id="batch-1",
        contact_id="contact-1",
        agent_id="agent-1",
        attempt_number=1,
    )


class Answers:
    def __init__(self) -> None:
        self.times: dict[str, datetime] = {}

    def for_call(self, call_id: str):
        async def on_answer(t: datetime) -> None:
            assert call_id not in self.times, "on_answer called twice"
            self.times[call_id] = t

        return on_answer


def provider(timers: SipTimers = TIMERS) -> SipProvider:
    return SipProvider(SipProviderSettings(timers=timers))


def test_every_outcome(sipp: SippProcess):
    answers = Answers()

    async def run() -> dict[str, tuple[CallRequest, CallResult]]:
        prov = provider()
        trunk = trunk_for(sipp)
        reqs = {name: request_for(trunk, NUMBERS[name]) for name in EXPECTED}
        results = await asyncio.gather(
            *(prov.place_call(r, answers.for_call(r.provider_call_id)) for r in reqs.values())
        )
        out = dict(zip(reqs, zip(reqs.values(), results)))
        for req, res in out.values():
            status = await prov.call_status(req.provider_call_id, trunk)
            assert status.state is CallState.ENDED and status.result == res
        assert sipp.wait_idle(20), "sipp still has calls"
        await prov.close()
        return out

    out = asyncio.run(run())
    for name, (req, res) in out.items():
        outcome, code = EXPECTED[name]
        assert (res.outcome, res.sip_code) == (outcome, code), (name, res)
        answered = res.answer_time is not None
        assert answered == (req.provider_call_id in answers.times), name
        if answered:
            assert res.answer_time == answers.times[req.provider_call_id]
            assert res.start_time <= res.answer_time <= res.end_time
        else:
            assert res.duration_seconds == 0
    # Remote BYE after ~1 s of talk; the held call ends at 2 s after the INVITE.
    for name in ("completed", "auth401", "auth407"):
        assert out[name][1].detail == "remote hangup"
        assert 0.8 <= out[name][1].duration_seconds <= 1.6, name
    hold = out["hold"][1]
    assert hold.detail.startswith("max call duration reached (BYE 200)")
    assert 1.4 <= (hold.end_time - hold.start_time).total_seconds() <= 2.6

    sipp.stop()
    st = sipp.stats()
    n = len(EXPECTED)
    # One sipp call per attempt, every one of them ran its scenario to the end.
    assert st.total_calls == n and st.successful_calls == n and st.failed_calls == 0
    assert st.unexpected == 0
    assert {rec.call_id for rec in st.calls.values()} == {r.provider_call_id for r, _ in out.values()}
    # INVITEs: one per call plus one re-INVITE per auth challenge, no duplicates.
    assert st.invites == n + 2
    for name in ("auth401", "auth407"):
        assert st.calls[out[name][0].provider_call_id].auth == [name[-3:]]
    # Retransmitted INVITEs only for the silent number over UDP (Timer A), none over TCP.
    if sipp.transport == "tcp":
        assert st.retransmitted.get("INVITE", 0) == 0 and st.retransmitted.get("CANCEL", 0) == 0
    else:
        assert 4 <= st.retransmitted.get("INVITE", 0) <= 6
    assert st.cancels == 2  # ring_forever and ignore_cancel
    assert st.byes_received == 1  # our BYE at max duration
    assert st.byes_sent == 3  # remote hangups answered with 200
    assert st.sent.get("487") == 1
    # ACKs: 3 answered-then-BYE + hold (2xx) + 401/407 + 487 + the 11 rejections.
    assert st.acks == 4 + 2 + 1 + 11
    ends = {name: st.calls[req.provider_call_id].end for name, (req, _) in out.items()}
    assert ends["ring_forever"] == "cancelled" and ends["hold"] == "answered"
    assert ends["silent"] == "silent" and ends["busy"] == "rejected"


def test_wrong_password_is_refused_once(sipp: SippProcess):
    async def run() -> CallResult:
        prov = provider()
        req = request_for(trunk_for(sipp, password="wrong"), NUMBERS["auth401"])
        res = await prov.place_call(req, Answers().for_call(req.provider_call_id))
        assert sipp.wait_idle(5)
        await prov.close()
        return res

    res = asyncio.run(run())
    assert (res.outcome, res.sip_code) == (Outcome.BLOCKED, 403)
    sipp.stop()
    st = sipp.stats()
    assert st.invites == 2 and st.sent.get("401") == 1 and st.sent.get("403") == 1


@pytest.mark.parametrize(
    ("fmt", "user"), [("e164", "+12025550100"), ("e164_no_plus", "12025550100"), ("national", "2025550100")]
)
def test_from_user_and_x_headers_reach_the_trunk(sipp: SippProcess, fmt: str, user: str):
    req = request_for(trunk_for(sipp, fmt=fmt), NUMBERS["busy"])

    async def run() -> CallResult:
        prov = provider()
        res = await prov.place_call(req, Answers().for_call(req.provider_call_id))
        await prov.close()
        return res

    assert asyncio.run(run()).outcome is Outcome.BUSY
    assert sipp.wait_idle(5)
    sipp.stop()
    rec = sipp.stats().calls[req.provider_call_id]
    assert rec.number == NUMBERS["busy"]
    assert rec.headers == {
        "from": user, "batch": "batch-1", "contact": "contact-1", "agent": "agent-1", "attempt": "1",
    }  # fmt: skip


def test_cancelling_the_task_hangs_up(sipp: SippProcess):
    """Cancelling place_call sends CANCEL before the answer, BYE after, then re-raises."""

    async def run() -> tuple[SipProvider, list[CallRequest]]:
        prov = provider()
        trunk = trunk_for(sipp)
        answers = Answers()
        ringing = request_for(trunk, NUMBERS["ring_forever"], ring=30, max_duration=60)
        talking = request_for(trunk, NUMBERS["hold"], ring=30, max_duration=60)
        t1 = asyncio.create_task(prov.place_call(ringing, answers.for_call(ringing.provider_call_id)))
        t2 = asyncio.create_task(prov.place_call(talking, answers.for_call(talking.provider_call_id)))
        await asyncio.sleep(0.6)  # ringing, and answered after 0.2 s
        assert (await prov.call_status(ringing.provider_call_id, trunk)).state is CallState.RINGING
        assert (await prov.call_status(talking.provider_call_id, trunk)).state is CallState.IN_PROGRESS
        t1.cancel()
        t2.cancel()
        for t in (t1, t2):
            with pytest.raises(asyncio.CancelledError):
                await t
        assert sipp.wait_idle(5)
        s1 = await prov.call_status(ringing.provider_call_id, trunk)
        s2 = await prov.call_status(talking.provider_call_id, trunk)
        assert s1.state is CallState.ENDED and s1.result.outcome is Outcome.NO_ANSWER
        assert s2.state is CallState.ENDED and s2.result.outcome is Outcome.COMPLETED
        assert s2.result.answer_time is not None
        await prov.close()
        return prov, [ringing, talking]

    _, (ringing, talking) = asyncio.run(run())
    sipp.stop()
    st = sipp.stats()
    assert st.invites == 2 and st.cancels == 1 and st.byes_received == 1
    assert st.calls[ringing.provider_call_id].end == "cancelled"
    assert st.calls[talking.provider_call_id].end == "answered"
    assert st.successful_calls == 2 and st.unexpected == 0


def test_close_hangs_up_live_calls(sipp: SippProcess):
    req = request_for(trunk_for(sipp), NUMBERS["hold"], ring=30, max_duration=60)

    async def run() -> None:
        prov = provider()
        task = asyncio.create_task(prov.place_call(req, Answers().for_call(req.provider_call_id)))
        await asyncio.sleep(0.6)
        await prov.close()  # hangs up (BYE) before closing the transport
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass
        assert sipp.wait_idle(5)

    asyncio.run(run())
    sipp.stop()
    st = sipp.stats()
    assert st.byes_received == 1 and st.calls[req.provider_call_id].end == "answered"
    # close() drops the TCP connection right after the 200 to our BYE; sipp may
    # count that as "TCP closed" if it had not yet run its last (empty) step.
    assert st.successful_calls + st.failed_tcp_closed == 1 and st.unexpected == 0


N_CONCURRENT = 150


def test_many_concurrent_calls(sipp: SippProcess):
    """N calls at once on one socket/connection: sipp sees N live calls at the same time."""

    async def run() -> list[CallResult]:
        # RFC timers (T1 = 500 ms): with a scaled-down T1 a burst of N INVITEs
        # gets retransmitted before sipp (one thread) answers them all, and
        # sipp aborts calls on INVITE retransmissions that arrive once the
        # call has moved past its INVITE step.
        prov = provider(SipTimers())
        trunk = trunk_for(sipp)
        answers = Answers()
        reqs = [request_for(trunk, NUMBERS["hold"], ring=10, max_duration=3.0) for _ in range(N_CONCURRENT)]
        results = await asyncio.gather(*(prov.place_call(r, answers.for_call(r.provider_call_id)) for r in reqs))
        assert len(answers.times) == N_CONCURRENT
        assert sipp.wait_idle(10)
        # One socket (UDP) or one connection (TCP) carried them all.
        assert prov.uac.transports.open_count == 1
        await prov.close()
        return results

    results = asyncio.run(run())
    assert all(r.outcome is Outcome.COMPLETED and r.sip_code == 200 for r in results)
    sipp.stop()
    st = sipp.stats()
    assert st.invites == N_CONCURRENT and st.byes_received == N_CONCURRENT
    assert st.successful_calls == N_CONCURRENT and st.unexpected == 0
    assert st.peak_concurrent == N_CONCURRENT  # exact, from sipp's START/END log
    assert st.peak_current_calls == N_CONCURRENT  # sipp's own CurrentCall sample (every 1 s)
