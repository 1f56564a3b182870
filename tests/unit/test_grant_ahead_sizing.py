"""How many reservations a dialer keeps (dialer.grant_ahead): its call-end
rate x a lead time that grows with StartAttempt's latency, bounded so a
reservation still finds a slot before its dial grace."""

from __future__ import annotations

import asyncio

import pytest

from dialer.grant_ahead import ACTIVATE_GRACE_SHARE, LEAD_FACTOR, LEAD_SHARE_OF_WAIT, GrantAhead
from dialer.settings import DialerSettings


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def grant_ahead(**kw) -> tuple[GrantAhead, Clock]:
    clock = Clock()
    settings = DialerSettings(dialer_id="d1", server_addr="127.0.0.1:1", service_token="t", **kw)
    return GrantAhead(settings, None, None, None, None, clock, lambda claim: None), clock


def ends(ga: GrantAhead, org: str, n: int) -> None:
    for _ in range(n):
        ga.note_call_end(org)


def test_a_quick_server_keeps_the_configured_lead():
    ga, _ = grant_ahead(prefetch_seconds=0.1, max_prefetch=100, dial_grace_seconds=1.0)
    for _ in range(50):
        ga.note_grant_latency(0.02)  # 2 x 20 ms < 100 ms
    assert ga.lead_seconds() == pytest.approx(0.1)
    ends(ga, "o", 200)  # ~200 ends/s over the rate's 1 s time constant
    assert ga.target("o") == 20


def test_a_slow_server_reserves_further_ahead_but_within_the_wait():
    ga, _ = grant_ahead(prefetch_seconds=0.1, max_prefetch=100, dial_grace_seconds=1.0)
    for _ in range(100):
        ga.note_grant_latency(0.15)
    assert ga.lead_seconds() == pytest.approx(LEAD_FACTOR * 0.15, rel=0.01)
    ends(ga, "o", 200)
    assert ga.target("o") == int(200 * ga.lead_seconds())
    for _ in range(100):
        ga.note_grant_latency(2.0)  # a stalled server: capped
    assert ga.lead_seconds() == pytest.approx(LEAD_SHARE_OF_WAIT * ACTIVATE_GRACE_SHARE * 1.0)
    assert ga.target("o") <= 100


def test_no_reservations_when_grant_ahead_is_off():
    ga, _ = grant_ahead(prefetch_seconds=0.0)
    ga.note_grant_latency(0.5)
    ends(ga, "o", 500)
    assert ga.target("o") == 0


def test_a_hand_off_resolves_the_waiting_reservation_once():
    async def main():
        ga, _ = grant_ahead()
        fut = asyncio.get_running_loop().create_future()
        ga._waiting["L1"] = fut
        assert ga.take_hand_off("L1") is True and fut.result() is True
        assert ga.take_hand_off("L1") is False  # a repeated message
        assert ga.take_hand_off("unknown") is False
        ga.reservations["o"] = {"L2"}  # granted, between two activate calls
        assert ga.take_hand_off("L2") is True and "L2" in ga._handed_early

    asyncio.run(main())
