"""OutboundLeg's third-party call control parts, over a fake flow (no sockets).

- ``defer_ack``: the 2xx (the callee's offer) is not ACKed until ``send_ack``
  brings the answer; its retransmissions are absorbed meanwhile; a BYE
  (ours, or the far end's) first ACKs it with an inactive answer.
- ``give_up_unprovisioned``: a leg that heard nothing by its deadline stops
  at once instead of waiting for Timer B (no CANCEL is allowed then).
- ``stop_ringing``: another task ends a ringing INVITE early (CANCEL).
"""

from __future__ import annotations

import asyncio

from dialer.providers.sip import SipTimers
from dialer.providers.sip.call import InviteEnd, OutboundLeg
from dialer.providers.sip.message import SipRequest, SipResponse, parse_message
from dialer.providers.sip.transport import Flow
from dialer.providers.sip.uac import SipUac

FAST = SipTimers().scaled(0.02)  # T1 = 10 ms, Timer B = 640 ms
OFFER = b"v=0\r\no=c 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8\r\n"


class FakeFlow(Flow):
    def __init__(self) -> None:
        self.remote = ("192.0.2.1", 5060)
        self.local_host = "127.0.0.1"
        self.local_port = 5555
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def requests(self, method: str) -> list[SipRequest]:
        out = []
        for d in self.sent:
            m = parse_message(d)
            if isinstance(m, SipRequest) and m.method == method:
                out.append(m)
        return out


def _reply(req: SipRequest, status: int, body: bytes = b"", tag: str = "t1") -> SipResponse:
    resp = SipResponse(status=status, reason="X")
    resp.add("Via", req.get_all("Via")[0])
    resp.add("From", req.get("From") or "")
    resp.add("To", f"{req.get('To')};tag={tag}")
    resp.add("Call-ID", req.call_id)
    resp.add("CSeq", req.get("CSeq") or "")
    resp.add("Contact", "<sip:callee@192.0.2.1:5060>")
    if body:
        resp.add("Content-Type", "application/sdp")
        resp.body = body
    return resp


def _leg(uac: SipUac, flow: FakeFlow, **kw) -> OutboundLeg:
    return OutboundLeg(
        uac, flow, call_id="cid-1", request_uri="sip:+14155550100@192.0.2.1:5060;transport=udp",
        from_user="+12025550100", to_user="+14155550100", to_host="192.0.2.1", **kw,
    )  # fmt: skip


def test_deferred_ack_carries_the_answer_and_absorbs_retransmissions():
    async def run():
        uac = SipUac(FAST)
        flow = FakeFlow()
        leg = _leg(uac, flow, defer_ack=True)
        task = asyncio.create_task(leg.invite(5))
        await asyncio.sleep(0)
        invite = flow.requests("INVITE")[0]
        assert invite.body == b"" and invite.get("Content-Type") is None  # offerless
        ok = _reply(invite, 200, OFFER)
        uac.on_message(ok, flow)
        res = await task
        assert res.kind == InviteEnd.ANSWERED and res.body == OFFER
        assert leg.ack_pending and flow.requests("ACK") == []
        uac.on_message(ok, flow)  # a retransmitted 2xx before the answer is ready: no ACK yet
        assert flow.requests("ACK") == []
        leg.send_ack(b"v=0\r\nanswer\r\n")
        uac.on_message(ok, flow)  # after it: the same ACK again
        acks = flow.requests("ACK")
        assert len(acks) == 2 and acks[0].body == b"v=0\r\nanswer\r\n"
        assert acks[0].get("Content-Type") == "application/sdp" and acks[0].cseq == (invite.cseq[0], "ACK")
        assert not leg.ack_pending

    asyncio.run(run())


def test_bye_on_a_deferred_ack_sends_an_inactive_answer_first():
    async def run():
        uac = SipUac(FAST)
        flow = FakeFlow()
        leg = _leg(uac, flow, defer_ack=True)
        task = asyncio.create_task(leg.invite(5))
        await asyncio.sleep(0)
        uac.on_message(_reply(flow.requests("INVITE")[0], 200, OFFER), flow)
        await task
        bye_task = asyncio.create_task(leg.bye())
        await asyncio.sleep(0)
        kinds = [parse_message(d) for d in flow.sent]
        methods = [m.method for m in kinds if isinstance(m, SipRequest)]
        assert methods[-2:] == ["ACK", "BYE"]
        ack = flow.requests("ACK")[0]
        assert b"a=inactive" in ack.body and b"m=audio 9 RTP/AVP 8" in ack.body
        bye = flow.requests("BYE")[0]
        uac.on_message(_reply(bye, 200), flow)
        assert await bye_task == 200

    asyncio.run(run())


def test_far_end_bye_before_the_answer_acks_the_2xx():
    async def run():
        uac = SipUac(FAST)
        flow = FakeFlow()
        leg = _leg(uac, flow, defer_ack=True)
        task = asyncio.create_task(leg.invite(5))
        await asyncio.sleep(0)
        invite = flow.requests("INVITE")[0]
        uac.on_message(_reply(invite, 200, OFFER), flow)
        await task
        bye = SipRequest(method="BYE", uri="sip:+12025550100@127.0.0.1:5555")
        bye.add("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKfar")
        bye.add("From", f"{invite.get('To')};tag=t1")
        bye.add("To", invite.get("From") or "")
        bye.add("Call-ID", "cid-1")
        bye.add("CSeq", "1 BYE")
        uac.on_message(bye, flow)
        assert leg.remote_bye.is_set() and not leg.ack_pending
        assert b"a=inactive" in flow.requests("ACK")[0].body

    asyncio.run(run())


def test_give_up_unprovisioned_stops_at_the_deadline():
    async def run():
        uac = SipUac(SipTimers())  # Timer B = 32 s: must not be waited for
        flow = FakeFlow()
        leg = _leg(uac, flow, give_up_unprovisioned=True)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        res = await leg.invite(0.2)
        took = loop.time() - t0
        n = len(flow.sent)
        await asyncio.sleep(0.6)  # no more retransmissions
        return res, took, n, len(flow.sent), len(uac.transactions)

    res, took, n, n_later, pending = asyncio.run(run())
    assert res.kind == InviteEnd.ABANDONED and 0.15 <= took < 0.5
    assert n == n_later and pending == 0


def test_stop_ringing_cancels_from_another_task():
    async def run():
        uac = SipUac(FAST)
        flow = FakeFlow()
        leg = _leg(uac, flow, give_up_unprovisioned=True)
        task = asyncio.create_task(leg.invite(30))
        await asyncio.sleep(0)
        invite = flow.requests("INVITE")[0]
        uac.on_message(_reply(invite, 180), flow)
        await asyncio.sleep(0.01)
        leg.stop_ringing()
        await asyncio.sleep(0.01)
        cancels = flow.requests("CANCEL")
        # One CANCEL transaction (Timer E may have retransmitted it), on the INVITE's branch.
        assert cancels and {c.branch for c in cancels} == {invite.branch}
        assert cancels[0].cseq == (invite.cseq[0], "CANCEL")
        uac.on_message(_reply(cancels[0], 200), flow)
        uac.on_message(_reply(invite, 487), flow)
        res = await asyncio.wait_for(task, 1)
        assert res.kind == InviteEnd.CANCELLED and res.status == 487

    asyncio.run(run())
