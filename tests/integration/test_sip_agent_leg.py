"""The voice agent leg against real SIP peers: two sipp UAS on loopback.

One sipp is the carrier and its callee (``callee_uas_media.xml``: answers
the dialer's offerless INVITE with an SDP offer, plays sipp's g711a.pcap
once the ACK brings the answer); the other is the voice agent
(``agent_uas.xml``: answers with an SDP naming a UDP port this test owns).
The provider bridges them by third-party call control (RFC 3725 Flow I,
``dialer/providers/sip/README.md``), over UDP and over TCP.

What is checked comes from the peers themselves: sipp's counters, its
per-call log lines (with its own clock), the agent's message trace (the
headers it received), and the RTP packets that reached the receiver named
in the agent's SDP (sent by the callee's sipp, never through the dialer).

Skipped when sipp is not on PATH, unless CI=true (then it is an error).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator

import pytest

from contract.agent import AgentSettings
from dialer.providers.base import CallRequest, CallResult, Outcome, TrunkSettings
from dialer.providers.sip import SipProvider, SipProviderSettings, SipTimers
from tests.sip.sipp import (
    AGENT_PASSWORD,
    AGENT_USERNAME,
    CALLEE_NUMBERS,
    SippProcess,
    require_sipp,
    start_sipp,
)
from tests.support.helpers import free_port

_skip = require_sipp()  # raises under CI=true when sipp is missing
pytestmark = [pytest.mark.sip, pytest.mark.skipif(_skip is not None, reason=_skip or "")]

TIMERS = SipTimers().scaled(0.2)  # T1 = 100 ms: Timer B = 6.4 s, agent window 4.8 s

#: sipp stamps a trace line when it writes it, after the send, so a peer's
#: receipt may carry a stamp a hair before the other peer's send (CI saw
#: -1 µs and -3 µs): cross-peer orderings allow this much, never a message
#: received before it was sent by more.
SIPP_STAMP_SLACK = 0.005


class RtpReceiver:
    """A UDP socket named in the agent's SDP answer; counts the RTP packets that reach it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.packets = 0
        self.payload_types: set[int] = set()
        self.sources: set[tuple[str, int]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(data) >= 12 and data[0] >> 6 == 2:  # RTP version 2
                self.packets += 1
                self.payload_types.add(data[1] & 0x7F)
                self.sources.add(addr)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture(params=["udp", "tcp"])
def transport(request) -> str:
    return request.param


@pytest.fixture()
def rtp() -> Iterator[RtpReceiver]:
    r = RtpReceiver()
    yield r
    r.close()


def _finish_sipp(proc: SippProcess) -> None:
    if proc.running():
        proc.stop()
    errors = proc.errors()
    proc.cleanup()
    assert "Aborting call" not in errors and "aborted at" not in errors, errors[:3000]


@pytest.fixture()
def callee(transport) -> Iterator[SippProcess]:
    proc = start_sipp("callee_uas_media.xml", transport, media_ip="127.0.0.1", trace_msg=True)
    yield proc
    _finish_sipp(proc)


@pytest.fixture()
def agent_peer(transport, rtp) -> Iterator[SippProcess]:
    proc = start_sipp("agent_uas.xml", transport, keys={"rtp_port": rtp.port}, trace_msg=True)
    yield proc
    _finish_sipp(proc)


def agent_at(peer: SippProcess | None, user: str, *, port: int = 0, transport: str = "", **kw) -> AgentSettings:
    return AgentSettings(
        host="127.0.0.1",
        port=port or (peer.port if peer else 0),
        user=user,
        transport=transport or (peer.transport if peer else "udp"),
        **kw,
    )


def request_for(
    callee: SippProcess,
    agent: AgentSettings,
    number: str = CALLEE_NUMBERS["hold"],
    *,
    max_duration: float = 6.0,
    variables: dict[str, str] | None = None,
) -> CallRequest:
    return CallRequest(
        provider_call_id=f"{uuid.uuid4().hex}@batchcalls",
        to_number=number,
        from_number="+12025550100",
        trunk=TrunkSettings(kind="sip", host=callee.host, port=callee.port, transport=callee.transport),
        ring_timeout_seconds=5.0,
        max_call_duration_seconds=max_duration,
        organization_id="org-1",
        batch_id="batch-7",
        contact_id="contact-42",
        agent_id="agent-1",
        attempt_number=1,
        attempt_id="attempt-99",
        variables=variables or {},
        agent=agent,
    )


def place(req: CallRequest, *peers: SippProcess) -> CallResult:
    answers: list[object] = []

    async def on_answer(t) -> None:
        answers.append(t)

    async def run() -> CallResult:
        prov = SipProvider(SipProviderSettings(timers=TIMERS))
        res = await prov.place_call(req, on_answer)
        for p in peers:  # in a thread: the loop still runs the agent's CANCEL, if any
            assert await asyncio.to_thread(p.wait_idle, 10), f"{p.scenario.name} still has calls"
        await prov.close()
        return res

    res = asyncio.run(run())
    assert len(answers) == (1 if res.answer_time is not None else 0)
    for p in peers:
        p.stop()
    return res


def only_call(proc: SippProcess):
    st = proc.stats()
    assert len(st.calls) == 1, st.calls
    return st, next(iter(st.calls.values()))


def test_bridged_call_headers_media_and_max_duration(callee, agent_peer, rtp):
    """The agent gets the ids and variables; the callee's RTP reaches the agent's receiver; max duration ends both."""
    variables = {
        "first name": "Ada\r\nX-Evil: injected",
        "plan": "gold",
        "not sent": "secret",
    }
    agent = agent_at(agent_peer, "agent", header_fields=("first name", "plan", "missing"))
    req = request_for(callee, agent, max_duration=4.0, variables=variables)
    res = place(req, callee, agent_peer)

    assert res.outcome is Outcome.COMPLETED and res.sip_code == 200 and res.agent_sip_code == 200
    assert res.detail.startswith("max call duration reached (BYE 200, agent BYE 200)"), res.detail
    # The agent answers 300 ms after its INVITE (its scenario's pause).
    assert res.agent_answer_delay_seconds is not None and 0.25 <= res.agent_answer_delay_seconds <= 1.5
    assert 3.5 <= (res.end_time - res.start_time).total_seconds() <= 5.0

    # The agent's INVITE, as the agent received it.
    invites = agent_peer.received_requests("INVITE")
    assert len(invites) == 1
    h = invites[0]
    assert h["x-batchcalls-batch-id"] == ["batch-7"]
    assert h["x-batchcalls-contact-id"] == ["contact-42"]
    assert h["x-batchcalls-attempt-id"] == ["attempt-99"]
    assert h["x-batchcalls-call-id"] == [req.provider_call_id]
    assert h["x-bc-first-name"] == ["Ada X-Evil: injected"]  # CR/LF gone: no header injection
    assert h["x-bc-plan"] == ["gold"]
    assert "x-evil" not in h and not any("not" in k and "sent" in k for k in h)
    assert h["call-id"] != [req.provider_call_id]  # its own dialog
    assert h["content-type"] == ["application/sdp"]
    # The HEADERS log line of the agent scenario (sipp's own ereg of the headers).
    ast, arec = only_call(agent_peer)
    assert arec.headers["batch"] == "batch-7" and arec.headers["attempt"] == "attempt-99"
    assert arec.headers["call"] == req.provider_call_id

    # The callee: offerless INVITE, the agent's answer in the ACK, RTP to the agent.
    cst, crec = only_call(callee)
    assert crec.media_port == rtp.port and not crec.media_inactive  # the ACK carried the agent's SDP
    assert arec.headers["offer_port"] not in ("", "0")  # the agent got the callee's offer
    assert rtp.packets > 0, "no RTP from the callee's pcap playback reached the agent's receiver"
    assert rtp.payload_types == {8}  # PCMA, as in g711a.pcap
    for st in (cst, ast):
        assert st.invites == 1 and st.acks == 1 and st.byes_received == 1 and st.byes_sent == 0
        assert st.successful_calls == 1 and st.failed_calls == 0 and st.unexpected == 0
    assert crec.end == "answered" and arec.end == "answered"


def test_agent_hangs_up_callee_gets_bye(callee, agent_peer, rtp):
    res = place(request_for(callee, agent_at(agent_peer, "agent-hangup")), callee, agent_peer)
    assert res.outcome is Outcome.COMPLETED and res.detail == "agent hung up (callee BYE 200)", res.detail
    assert res.agent_answer_delay_seconds is not None
    cst, crec = only_call(callee)
    ast, arec = only_call(agent_peer)
    assert ast.byes_sent == 1 and arec.end == "hungup"
    assert cst.byes_received == 1 and crec.end == "answered"
    # The agent hangs up 1.5 s after its ACK, which came with the callee's: the
    # callee's BYE follows within a second (on the callee's own clock).
    assert crec.answer_ms is not None and crec.end_ms is not None
    assert 1400 <= crec.end_ms - crec.answer_ms <= 1500 + 1000
    # Across the two peers (their message traces' wall clocks): the agent's
    # BYE went out, and the callee received ours within a second (less
    # SIPP_STAMP_SLACK: not a BYE sent before the agent's).
    (agent_bye,) = agent_peer.message_times("sent", "BYE")
    (callee_bye,) = callee.message_times("received", "BYE")
    assert -SIPP_STAMP_SLACK <= callee_bye - agent_bye < 1.0
    assert rtp.packets > 0
    assert cst.unexpected == 0 and ast.unexpected == 0


def test_callee_hangs_up_agent_gets_bye(callee, agent_peer, rtp):
    res = place(request_for(callee, agent_at(agent_peer, "agent"), CALLEE_NUMBERS["hangup"]), callee, agent_peer)
    assert res.outcome is Outcome.COMPLETED and res.detail == "callee hung up (agent BYE 200)", res.detail
    cst, crec = only_call(callee)
    ast, arec = only_call(agent_peer)
    assert cst.byes_sent == 1 and crec.end == "hungup"
    assert ast.byes_received == 1 and arec.end == "answered"
    # The callee hangs up 2 s after the ACK; the agent's ACK went at the same moment.
    assert arec.answer_ms is not None and arec.end_ms is not None
    assert 1900 <= arec.end_ms - arec.answer_ms <= 2000 + 1000
    (callee_bye,) = callee.message_times("sent", "BYE")
    (agent_bye,) = agent_peer.message_times("received", "BYE")
    assert -SIPP_STAMP_SLACK <= agent_bye - callee_bye < 1.0
    assert rtp.packets > 0
    assert cst.unexpected == 0 and ast.unexpected == 0


@pytest.fixture()
def blackhole(transport) -> Iterator[int]:
    """A port that takes the agent's INVITE (UDP datagrams, or a TCP connection) and never answers."""
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            s.listen(4)
        yield s.getsockname()[1]


@pytest.mark.parametrize("case", ["busy", "not_found", "unreachable", "silent", "no_answer", "bad_credentials"])
def test_agent_failure_hangs_up_the_callee(callee, agent_peer, rtp, blackhole, case):
    """No silent callee: the callee gets its ACK and a BYE within a second of the agent leg's failure."""
    if case == "unreachable":
        agent = agent_at(None, "agent", port=free_port(), transport=callee.transport)  # nothing listens there
    elif case == "silent":
        agent = agent_at(None, "agent", port=blackhole, transport=callee.transport, answer_timeout_seconds=1.0)
    elif case == "not_found":
        agent = agent_at(agent_peer, "nobody")
    elif case == "no_answer":
        agent = agent_at(agent_peer, "ring", answer_timeout_seconds=1.0)
    elif case == "bad_credentials":
        agent = agent_at(agent_peer, "auth", username=AGENT_USERNAME, password="wrong")
    else:
        agent = agent_at(agent_peer, "busy")
    peers = (callee,) if case in ("unreachable", "silent") else (callee, agent_peer)
    res = place(request_for(callee, agent), *peers)

    assert res.outcome is Outcome.AGENT_ERROR, res
    assert res.answer_time is not None and res.sip_code == 200
    assert res.agent_answer_delay_seconds is not None
    expected_code = {"busy": 486, "not_found": 404, "unreachable": 0, "silent": 0, "no_answer": 0,
                     "bad_credentials": 403}[case]  # fmt: skip
    assert res.agent_sip_code == expected_code, res.detail
    if case in ("no_answer", "silent"):
        assert 0.95 <= res.agent_answer_delay_seconds <= 1.5
    else:
        assert res.agent_answer_delay_seconds < 1.0
    # From the failure (answer + delay) to the end of the call: under a second.
    talk = (res.end_time - res.answer_time).total_seconds()
    assert talk - res.agent_answer_delay_seconds < 1.0, (talk, res.agent_answer_delay_seconds)

    cst, crec = only_call(callee)
    assert cst.acks == 1 and cst.byes_received == 1 and crec.end == "answered"
    assert crec.media_inactive  # the ACK's answer set up no media (a=inactive)
    # The callee's ACK and BYE on the callee's own clock: the BYE right after the ACK.
    assert crec.answer_ms is not None and crec.end_ms is not None and crec.end_ms - crec.answer_ms < 1000
    assert rtp.packets == 0
    assert cst.unexpected == 0 and cst.successful_calls == 1
    (callee_bye,) = callee.message_times("received", "BYE")
    if case in ("unreachable", "silent"):
        agent_peer.stop()
        assert agent_peer.stats().invites == 0
        return
    ast, arec = only_call(agent_peer)
    assert ast.unexpected == 0
    # The failure as the agent saw it (its final response, or our CANCEL), and
    # the callee's BYE: under a second apart on the two peers' wall clocks.
    if case == "no_answer":
        (failure,) = agent_peer.message_times("received", "CANCEL")
    else:
        failure = agent_peer.message_times("sent", f"SIP/2.0 {expected_code}")[-1]
    assert abs(callee_bye - failure) < 1.0  # (our CANCEL and the callee BYE go out together)
    if case == "no_answer":
        assert ast.cancels == 1 and arec.end == "cancelled"
    elif case == "bad_credentials":
        assert ast.invites == 2 and arec.end == "rejected" and arec.auth == ["401"]
    else:
        assert arec.end == "rejected"


def test_agent_digest_auth(callee, agent_peer, rtp):
    agent = agent_at(agent_peer, "auth", username=AGENT_USERNAME, password=AGENT_PASSWORD)
    res = place(request_for(callee, agent, max_duration=2.5), callee, agent_peer)
    assert res.outcome is Outcome.COMPLETED and res.agent_sip_code == 200, res.detail
    ast, arec = only_call(agent_peer)
    assert ast.invites == 2 and arec.auth == ["401"] and arec.end == "answered"
    assert ast.byes_received == 1 and ast.unexpected == 0


@pytest.mark.parametrize("when", ["agent_ringing", "connected"])
def test_dialer_cancel_hangs_up_both_legs(callee, agent_peer, rtp, when):
    """Pause/cancel: a ringing agent gets CANCEL and the callee ACK + BYE; once connected both get BYE."""
    user = "ring" if when == "agent_ringing" else "agent"
    req = request_for(callee, agent_at(agent_peer, user, answer_timeout_seconds=4.0))

    async def run() -> CallResult:
        prov = SipProvider(SipProviderSettings(timers=TIMERS))

        async def on_answer(t) -> None:
            pass

        task = asyncio.create_task(prov.place_call(req, on_answer))
        await asyncio.sleep(1.2)  # the callee answered after 0.2 s; the agent rings, or answered after 0.3 s
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(callee.wait_idle, 5)
        assert await asyncio.to_thread(agent_peer.wait_idle, 5)
        status = await prov.call_status(req.provider_call_id, req.trunk)
        await prov.close()
        return status.result

    res = asyncio.run(run())
    callee.stop()
    agent_peer.stop()
    assert res.outcome is Outcome.COMPLETED and res.detail == "hung up by the dialer"
    cst, crec = only_call(callee)
    ast, arec = only_call(agent_peer)
    assert cst.acks == 1 and cst.byes_received == 1
    if when == "agent_ringing":
        assert crec.media_inactive and ast.cancels == 1 and arec.end == "cancelled"
    else:
        assert crec.media_port == rtp.port and ast.byes_received == 1 and arec.end == "answered"
        (callee_bye,) = callee.message_times("received", "BYE")
        (agent_bye,) = agent_peer.message_times("received", "BYE")
        assert abs(callee_bye - agent_bye) < 1.0
    assert cst.unexpected == 0 and ast.unexpected == 0


@pytest.mark.parametrize("trusted", [True, False])
def test_agent_over_tls_sips(tmp_path, rtp, trusted):
    """A sips: agent over TLS (certificate checked): bridged when trusted; agent_error and callee BYE when not."""
    from tests.sip.tls_agent import TlsAgent, make_certificate

    cert, key = make_certificate(tmp_path)
    callee_peer = start_sipp("callee_uas_media.xml", "udp", media_ip="127.0.0.1")
    try:

        async def run() -> tuple[CallResult, TlsAgent]:
            tls_agent = TlsAgent(cert, key, rtp.port)
            await tls_agent.start()
            ctx = ssl.create_default_context(cafile=str(cert)) if trusted else ssl.create_default_context()
            prov = SipProvider(SipProviderSettings(timers=TIMERS, tls_context=ctx))
            agent = AgentSettings(host="127.0.0.1", port=tls_agent.port, user="agent", scheme="sips", transport="tls")
            req = request_for(callee_peer, agent, max_duration=2.5)

            async def on_answer(t) -> None:
                pass

            res = await prov.place_call(req, on_answer)
            assert await asyncio.to_thread(callee_peer.wait_idle, 10)
            await prov.close()
            await tls_agent.close()
            return res, tls_agent

        res, tls_agent = asyncio.run(run())
        callee_peer.stop()
        cst, crec = only_call(callee_peer)
        assert cst.byes_received == 1 and cst.unexpected == 0
        if trusted:
            assert res.outcome is Outcome.COMPLETED and res.agent_sip_code == 200, res.detail
            assert tls_agent.methods() == ["INVITE", "ACK", "BYE"]
            invite = tls_agent.received[0]
            assert invite.uri == f"sips:agent@127.0.0.1:{tls_agent.port};transport=tls"
            assert invite.get("Via", "").startswith("SIP/2.0/TLS ")
            assert invite.get("Contact", "").startswith("<sips:")
            assert invite.get("X-BatchCalls-Attempt-Id") == "attempt-99"
            assert crec.media_port == rtp.port and rtp.packets > 0
        else:
            assert res.outcome is Outcome.AGENT_ERROR and "certificate" in res.detail.lower(), res.detail
            assert tls_agent.received == []
            assert crec.media_inactive
            assert (res.end_time - res.answer_time).total_seconds() - res.agent_answer_delay_seconds < 1.0
    finally:
        _finish_sipp(callee_peer)


def test_callee_hangs_up_while_the_agent_rings(callee, agent_peer, rtp):
    """The callee gives up before the agent answers: its BYE is answered and its 2xx ACKed; the agent gets CANCEL."""
    agent = agent_at(agent_peer, "ring", answer_timeout_seconds=4.0)
    res = place(request_for(callee, agent, CALLEE_NUMBERS["abandon"]), callee, agent_peer)
    assert res.outcome is Outcome.COMPLETED and res.detail == "callee hung up before the agent answered", res.detail
    assert res.agent_answer_delay_seconds is not None and 0.9 <= res.agent_answer_delay_seconds < 2.0
    cst, crec = only_call(callee)
    ast, arec = only_call(agent_peer)
    assert crec.end == "abandoned" and crec.media_inactive and cst.byes_sent == 1 and cst.acks == 1
    assert ast.cancels == 1 and arec.end == "cancelled"
    (callee_bye,) = callee.message_times("sent", "BYE")
    (agent_cancel,) = agent_peer.message_times("received", "CANCEL")
    assert -SIPP_STAMP_SLACK <= agent_cancel - callee_bye < 1.0
    assert rtp.packets == 0
    assert cst.unexpected == 0 and ast.unexpected == 0
