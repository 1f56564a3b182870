"""Transactions, outcome mapping and transport failures of the SIP provider.

No sipp here: fake flows for the timers, loopback sockets for ICMP/refused.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from datetime import UTC, datetime

import pytest

from contract.masking import mask_phone
from dialer.providers.base import CallRequest, CallState, Outcome, TrunkSettings
from dialer.providers.sip import (
    SipProvider,
    SipProviderSettings,
    SipTimers,
    outcome_for_status,
)
from dialer.providers.sip.call import InviteResult
from dialer.providers.sip.message import (
    SipRequest,
    SipResponse,
    is_valid_call_id,
    parse_message,
)
from dialer.providers.sip.provider import outcome_for_invite
from dialer.providers.sip.transaction import (
    ClientTransaction,
    TransactionTimeout,
    build_ack_for_non2xx,
)
from dialer.providers.sip.transport import Flow
from dialer.providers.sip.uac import SipUac

FAST = SipTimers().scaled(0.02)  # T1 = 10 ms, Timer B = 640 ms


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (486, Outcome.BUSY), (600, Outcome.BUSY),
        (480, Outcome.NO_ANSWER), (408, Outcome.NO_ANSWER), (487, Outcome.NO_ANSWER),
        (404, Outcome.INVALID_NUMBER), (484, Outcome.INVALID_NUMBER), (604, Outcome.INVALID_NUMBER),
        (403, Outcome.BLOCKED), (603, Outcome.BLOCKED),
        (503, Outcome.CARRIER_ERROR), (500, Outcome.CARRIER_ERROR), (401, Outcome.CARRIER_ERROR),
        (407, Outcome.CARRIER_ERROR), (488, Outcome.CARRIER_ERROR), (302, Outcome.CARRIER_ERROR),
        (502, Outcome.CARRIER_ERROR), (606, Outcome.CARRIER_ERROR),
    ],
)  # fmt: skip
def test_outcome_for_status(status, outcome):
    assert outcome_for_status(status) is outcome


@pytest.mark.parametrize(
    ("kind", "status", "outcome"),
    [
        ("answered", 200, Outcome.COMPLETED),
        ("cancelled", 487, Outcome.NO_ANSWER),
        ("timeout", 0, Outcome.TIMEOUT),
        ("cancel_timeout", 0, Outcome.TIMEOUT),
        ("transport_error", 0, Outcome.CARRIER_ERROR),
        ("rejected", 486, Outcome.BUSY),
        ("rejected", 403, Outcome.BLOCKED),
    ],
)
def test_outcome_for_invite(kind, status, outcome):
    assert outcome_for_invite(InviteResult(kind=kind, status=status)) is outcome


def test_call_id_validation_and_masking():
    assert is_valid_call_id(uuid.uuid4().hex)
    assert is_valid_call_id("abc-123@host.example")
    assert not is_valid_call_id("")
    assert not is_valid_call_id("a b")
    assert not is_valid_call_id("a@b@c")
    assert not is_valid_call_id("x\r\ny")
    assert mask_phone("+12025550123") == "+1202555••23"


class FakeFlow(Flow):
    def __init__(self, reliable: bool = False) -> None:
        self.reliable = reliable
        self.transport = "TCP" if reliable else "UDP"
        self.remote = ("192.0.2.1", 5060)
        self.local_host = "127.0.0.1"
        self.local_port = 5555
        self.sent: list[tuple[float, bytes]] = []

    def send(self, data: bytes) -> None:
        self.sent.append((asyncio.get_running_loop().time(), data))


def _invite() -> SipRequest:
    req = SipRequest(method="INVITE", uri="sip:+14155550100@192.0.2.1:5060;transport=udp")
    req.add("Via", "SIP/2.0/UDP 127.0.0.1:5555;branch=z9hG4bKtest1;rport")
    req.add("From", "<sip:+12025550100@127.0.0.1>;tag=f1")
    req.add("To", "<sip:+14155550100@192.0.2.1>")
    req.add("Call-ID", "cid-1")
    req.add("CSeq", "5 INVITE")
    return req


def _response(req: SipRequest, status: int, tag: str = "t1") -> SipResponse:
    resp = SipResponse(status=status, reason="X")
    resp.add("Via", req.get("Via") or "")
    resp.add("From", req.get("From") or "")
    resp.add("To", f"{req.get('To')};tag={tag}")
    resp.add("Call-ID", req.call_id)
    resp.add("CSeq", req.get("CSeq") or "")
    return resp


def test_invite_timer_a_doubles_and_timer_b_times_out():
    async def run():
        uac = SipUac(FAST)
        flow = FakeFlow()
        tx = ClientTransaction(uac.transactions, flow, _invite())
        tx.start()
        ev = await asyncio.wait_for(tx.events.get(), 2)
        return flow.sent, ev, uac

    sent, ev, uac = asyncio.run(run())
    assert isinstance(ev, TransactionTimeout)
    # Planned at 0, T1, 3T1, 7T1, 15T1, 31T1, 63T1; Timer B at 64T1. Planned on
    # the loop clock from the first send, so a stalled loop makes one late but
    # never shifts the rest: none is early, and the 63T1 one may lose the race
    # with Timer B on a busy machine. (Without the doubling there would be 64.)
    assert 6 <= len(sent) <= 7
    planned = [FAST.t1 * (2**i - 1) for i in range(len(sent))]
    offsets = [s[0] - sent[0][0] for s in sent]
    for off, plan in zip(offsets, planned):
        assert off >= plan - 0.002, (offsets, planned)
    assert not uac.transactions


def test_no_retransmission_over_reliable_transport():
    async def run():
        uac = SipUac(FAST)
        flow = FakeFlow(reliable=True)
        tx = ClientTransaction(uac.transactions, flow, _invite())
        tx.start()
        ev = await asyncio.wait_for(tx.events.get(), 2)
        return flow.sent, ev

    sent, ev = asyncio.run(run())
    assert len(sent) == 1 and isinstance(ev, TransactionTimeout)


def test_provisional_stops_retransmission_and_timer_b():
    async def run():
        uac = SipUac(FAST)
        flow = FakeFlow()
        req = _invite()
        tx = ClientTransaction(uac.transactions, flow, req)
        tx.start()
        uac.on_message(_response(req, 180), flow)
        first = await tx.events.get()
        await asyncio.sleep(FAST.timer_b * 1.5)
        return flow.sent, first, tx.events.empty(), tx.state

    sent, first, empty, state = asyncio.run(run())
    assert first.status == 180 and len(sent) == 1 and empty and state == "proceeding"


def test_non2xx_final_is_acked_in_transaction_and_again_on_retransmission():
    async def run():
        uac = SipUac(FAST)
        flow = FakeFlow()
        req = _invite()
        tx = ClientTransaction(uac.transactions, flow, req)
        tx.start()
        final = _response(req, 486)
        uac.on_message(final, flow)
        uac.on_message(final, flow)  # retransmitted final response
        ev = await tx.events.get()
        return flow.sent, ev, tx.events.empty()

    sent, ev, empty = asyncio.run(run())
    assert ev.status == 486 and empty  # delivered once
    acks = [parse_message(d) for _, d in sent if d.startswith(b"ACK ")]
    assert len(acks) == 2
    ack = acks[0]
    assert ack.branch == "z9hG4bKtest1"  # same transaction
    assert ack.cseq == (5, "ACK") and ack.to_tag == "t1" and ack.uri == _invite().uri


def test_build_ack_for_non2xx_keeps_routes():
    req = _invite()
    req.add("Route", "<sip:proxy;lr>")
    ack = build_ack_for_non2xx(req, _response(req, 503))
    assert ack.get_all("Route") == ["<sip:proxy;lr>"]
    assert len(ack.get_all("Via")) == 1


def test_non_invite_timer_e_is_capped_at_t2():
    timers = SipTimers(t1=0.01, t2=0.04, t4=0.05)

    async def run():
        uac = SipUac(timers)
        flow = FakeFlow()
        bye = SipRequest(method="BYE", uri="sip:x@192.0.2.1")
        bye.add("Via", "SIP/2.0/UDP 127.0.0.1:5555;branch=z9hG4bKbye")
        bye.add("Call-ID", "c")
        bye.add("CSeq", "6 BYE")
        tx = ClientTransaction(uac.transactions, flow, bye)
        tx.start()
        ev = await asyncio.wait_for(tx.events.get(), 2)
        return flow.sent, ev

    sent, ev = asyncio.run(run())
    assert isinstance(ev, TransactionTimeout)
    gaps = [b[0] - a[0] for a, b in zip(sent, sent[1:])]
    assert max(gaps) < 0.04 * 1.8  # never more than ~T2 apart


def _request(port: int, transport: str, to: str = "+14155550100", host: str = "127.0.0.1") -> CallRequest:
    return CallRequest(
        provider_call_id=uuid.uuid4().hex,
        to_number=to,
        from_number="+12025550100",
        trunk=TrunkSettings(kind="sip", host=host, port=port, transport=transport),
        ring_timeout_seconds=2,
        max_call_duration_seconds=5,
        organization_id="org",
        batch_id="b",
        contact_id="c",
        agent_id="a",
        attempt_number=1,
    )


async def _never_answered(_t: datetime) -> None:
    raise AssertionError("not answered")


def _closed_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_icmp_port_unreachable_is_carrier_error_without_waiting_timer_b():
    port = _closed_port(socket.SOCK_DGRAM)

    async def run():
        prov = SipProvider(SipProviderSettings(timers=SipTimers()))  # Timer B = 32 s
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        res = await prov.place_call(_request(port, "udp"), _never_answered)
        took = loop.time() - t0
        await prov.close()
        return res, took

    res, took = asyncio.run(run())
    assert res.outcome is Outcome.CARRIER_ERROR, res
    assert "unreachable" in res.detail
    assert took < 5


def test_tcp_connection_refused_is_carrier_error():
    port = _closed_port(socket.SOCK_STREAM)

    async def run():
        prov = SipProvider(SipProviderSettings(timers=FAST))
        res = await prov.place_call(_request(port, "tcp"), _never_answered)
        status = await prov.call_status(uuid.uuid4().hex, TrunkSettings(kind="sip"))
        await prov.close()
        return res, status

    res, status = asyncio.run(run())
    assert res.outcome is Outcome.CARRIER_ERROR and "TCP connection" in res.detail
    assert status.state is CallState.UNKNOWN


def test_dns_failure_is_carrier_error():
    async def run():
        prov = SipProvider(SipProviderSettings(timers=FAST))
        req = _request(5060, "udp", host="no-such-host.invalid")
        res = await prov.place_call(req, _never_answered)
        status = await prov.call_status(req.provider_call_id, req.trunk)
        await prov.close()
        return res, status

    res, status = asyncio.run(run())
    assert res.outcome is Outcome.CARRIER_ERROR and "DNS" in res.detail
    assert status.state is CallState.ENDED and status.result == res
    assert res.start_time <= res.end_time and res.start_time.tzinfo is UTC


def test_invalid_call_id_is_refused():
    async def run():
        prov = SipProvider()
        req = _request(5060, "udp")
        bad = CallRequest(**{**req.__dict__, "provider_call_id": "has space"})
        with pytest.raises(ValueError):
            await prov.place_call(bad, _never_answered)
        await prov.close()

    asyncio.run(run())
