"""SipProvider: the TelephonyProvider of SIP trunks.

One ``SipUac`` per provider, so one UDP socket (per address family) and one
TCP connection per trunk address carry every call the dialer process places.

Timing contract:

- ring timeout: counted from the first INVITE; when it passes, CANCEL (once a
  provisional response came; RFC 3261 §9.1), then 487 -> ``no_answer``.
- max call duration: the call is hung up (BYE) at the latest
  ``max_call_duration_seconds`` after the first INVITE was sent, i.e. after
  the attempt started. That is the bound recovery relies on (docs/design.md §5: a
  dead dialer's call is over once the max call duration has passed since the
  attempt started), so talk time is max duration minus ring time.

Voice agent (``request.agent``): third-party call control, RFC 3725 Flow I
(README.md, "The agent leg"): the callee's INVITE carries no SDP; its 2xx
(the callee's offer) is not ACKed until the agent, INVITEd with that offer
once the callee answered, answers with its SDP, which goes to the callee
in the ACK. No RTP passes through the dialer. The agent has
``answer_timeout_seconds`` (clamped below the callee's 2xx retransmission
window) to answer; any failure ACKs the callee with an inactive answer and
hangs it up at once (``agent_error``). Either side's BYE is relayed to the
other; the max call duration ends both.

Recovery: SIP has no standard way to ask a trunk about a call another
process placed. ``call_status`` answers from this process's own memory
(RINGING, IN_PROGRESS, ENDED with the result) and UNKNOWN otherwise; for a
call of a dead dialer the server then waits out the max call duration, as
docs/design.md §5 allows. A live dialer ends its calls by that bound; a call
whose dialer died lives on until the far end or the trunk ends it (trunks
usually enforce a max duration or session timer of their own), which no
other process can change over SIP without the dialog state.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from contract.agent import AgentSettings, agent_headers, id_headers
from contract.masking import mask_phone

from ..base import (
    AnswerCallback,
    CallRequest,
    CallResult,
    CallState,
    CallStatus,
    Outcome,
    TrunkSettings,
)
from .auth import Credentials
from .call import InviteEnd, InviteResult, OutboundLeg
from .message import format_caller_id, is_valid_call_id, request_uri, sdp_offer
from .transaction import SipTimers
from .transport import SipTransportError
from .uac import SipUac

log = logging.getLogger(__name__)


def new_call_id(domain: str = "batchcalls") -> str:
    """A fresh SIP Call-ID for the dialer to choose before placing a call."""
    return f"{secrets.token_hex(16)}@{domain}"


def outcome_for_status(status: int) -> Outcome:
    """Product outcome of a final non-2xx INVITE response."""
    if status in (486, 600):
        return Outcome.BUSY
    if status in (480, 408, 487):
        return Outcome.NO_ANSWER
    if status in (404, 484, 604):
        return Outcome.INVALID_NUMBER
    if status in (403, 603):
        return Outcome.BLOCKED
    if 200 <= status < 300:
        return Outcome.COMPLETED
    return Outcome.CARRIER_ERROR


def outcome_for_invite(result: InviteResult) -> Outcome:
    """Product outcome of how the INVITE ended (see README.md, "Outcomes")."""
    if result.kind == InviteEnd.ANSWERED:
        return Outcome.COMPLETED
    if result.kind == InviteEnd.CANCELLED:
        return Outcome.NO_ANSWER
    if result.kind in (InviteEnd.TIMEOUT, InviteEnd.CANCEL_TIMEOUT, InviteEnd.ABANDONED):
        return Outcome.TIMEOUT
    if result.kind == InviteEnd.TRANSPORT_ERROR:
        return Outcome.CARRIER_ERROR
    return outcome_for_status(result.status)


@dataclass(frozen=True)
class SipProviderSettings:
    timers: SipTimers = field(default_factory=SipTimers)
    # Local address to bind the UDP socket on ("" = all).
    bind_host: str = ""
    # Address put in Via/Contact/From; default: the local address that routes to the trunk.
    advertise_host: str | None = None
    user_agent: str = "batchcalls"
    # Ended calls remembered for call_status.
    remembered_calls: int = 10_000
    # Upper bound of an agent's answer time, as a fraction of Timer B (64*T1):
    # the callee retransmits its 2xx (our ACK waits for the agent) for 64*T1.
    agent_answer_window_fraction: float = 0.75
    # TLS to agents (sips: / transport=tls); default: the system's trust
    # store with host name checking (ssl.create_default_context()).
    tls_context: ssl.SSLContext | None = None


def agent_call_id(provider_call_id: str) -> str:
    """The agent leg's Call-ID: the callee's with ``-agent`` on its local part."""
    local, at, domain = provider_call_id.partition("@")
    return f"{local}-agent{at}{domain}"


@dataclass
class _AgentCall:
    """The agent leg of one call: its INVITE task, and the leg once it exists."""

    task: asyncio.Future[InviteResult] | None = None
    leg: OutboundLeg | None = None
    release_task: asyncio.Future[None] | None = None


@dataclass
class _LiveCall:
    callee: OutboundLeg
    agent: _AgentCall | None = None


@dataclass
class _Known:
    state: CallState
    result: CallResult | None = None


class SipProvider:
    """TelephonyProvider over SIP trunks (see the module docstring)."""

    #: SIP cannot ask about another process's dialog: UNKNOWN proves nothing.
    authoritative_status = False

    def __init__(
        self,
        settings: SipProviderSettings | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings or SipProviderSettings()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._uac: SipUac | None = None
        self._known: OrderedDict[str, _Known] = OrderedDict()
        # The legs of each call in progress, by provider_call_id.
        self._live: dict[str, _LiveCall] = {}
        self._hangups: set[asyncio.Task[None]] = set()

    @property
    def uac(self) -> SipUac:
        if self._uac is None:
            s = self.settings
            self._uac = SipUac(
                s.timers,
                bind_host=s.bind_host,
                advertise_host=s.advertise_host,
                user_agent=s.user_agent,
                tls_context=s.tls_context,
            )
        return self._uac

    # -- TelephonyProvider ---------------------------------------------
    async def place_call(self, request: CallRequest, on_answer: AnswerCallback) -> CallResult:
        if not is_valid_call_id(request.provider_call_id):
            raise ValueError("provider_call_id is not a valid SIP Call-ID")
        trunk = request.trunk
        loop = asyncio.get_running_loop()
        start = self._clock()
        t0 = loop.time()
        self._remember(request.provider_call_id, _Known(CallState.RINGING))
        log.info(
            "SIP call %s to %s via %s:%s/%s",
            request.provider_call_id,
            mask_phone(request.to_number),
            trunk.host,
            trunk.port,
            trunk.transport,
        )

        try:
            flow = await self.uac.flow_for(trunk.host, trunk.port, trunk.transport)
        except SipTransportError as exc:
            return self._finish(request, Outcome.CARRIER_ERROR, start, detail=str(exc))

        callee = OutboundLeg(
            self.uac,
            flow,
            call_id=request.provider_call_id,
            request_uri=request_uri(request.to_number, trunk.host, trunk.port, flow.transport),
            from_user=format_caller_id(request.from_number, trunk.caller_id_format),
            to_user=request.to_number,
            to_host=trunk.host,
            extra_headers=[
                ("X-Batch-Id", request.batch_id),
                ("X-Contact-Id", request.contact_id),
                ("X-Agent-Id", request.agent_id),
                ("X-Attempt", str(request.attempt_number)),
            ],
            # With an agent the callee's INVITE is offerless (RFC 3725 Flow I):
            # its 2xx brings the offer the agent answers.
            sdp=b"" if request.agent is not None else sdp_offer(secrets.randbelow(2**31)),
            credentials=Credentials(trunk.username, trunk.password) if trunk.username else None,
            defer_ack=request.agent is not None,
        )
        live = _LiveCall(callee)
        self._live[request.provider_call_id] = live
        answer_time: datetime | None = None
        try:
            res = await callee.invite(request.ring_timeout_seconds)
            if res.kind != InviteEnd.ANSWERED:
                outcome = outcome_for_invite(res)
                detail = res.detail or f"{res.status} {res.reason}".strip()
                # A refusal of the call's setup (carrier push-back is judged
                # on it): a final answer before any ringing; a 503 after 180/183
                # reached the far end and stays a carrier error.
                refused = res.kind == InviteEnd.REJECTED and not any(100 < p < 200 for p in res.provisional)
                return self._finish(request, outcome, start, sip_code=res.status, detail=detail,
                                    refusal=(res.reason, res.retry_after) if refused else None)

            answer_time = self._clock()
            answered_at = loop.time()
            self._known[request.provider_call_id] = _Known(CallState.IN_PROGRESS)
            await on_answer(answer_time)
            if request.agent is not None:
                live.agent = _AgentCall()
                return await self._bridge(request, live, res, start, answer_time, t0, answered_at)
            remaining = request.max_call_duration_seconds - (loop.time() - t0)
            if await callee.wait_remote_bye(remaining):
                detail = "remote hangup"
            else:
                status = await callee.bye()
                detail = f"max call duration reached (BYE {status or 'timed out'})"
            end = self._clock()
            return self._finish(
                request,
                Outcome.COMPLETED,
                start,
                end=end,
                answer_time=answer_time,
                sip_code=200,
                detail=detail,
            )
        except BaseException as exc:
            # Cancelled (the dialer hangs up) or on_answer failed: never leave
            # the call up. The hang-up runs to its end even if we are
            # cancelled again; close() waits for it.
            task = asyncio.ensure_future(self._hangup_call(live))
            self._hangups.add(task)
            task.add_done_callback(self._hangups.discard)
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                pass
            end = self._clock()
            why = "hung up by the dialer" if isinstance(exc, asyncio.CancelledError) else f"hung up: {exc!r}"
            self._finish(
                request,
                Outcome.COMPLETED if answer_time is not None else Outcome.NO_ANSWER,
                start,
                end=end,
                answer_time=answer_time,
                sip_code=200 if answer_time is not None else 0,
                detail=why,
            )
            raise
        finally:
            callee.finish()
            if live.agent is not None:
                self._release_agent(live.agent)  # finishes the agent leg (at once if it ended)
            self._live.pop(request.provider_call_id, None)

    async def call_status(self, provider_call_id: str, trunk: TrunkSettings) -> CallStatus:
        known = self._known.get(provider_call_id)
        if known is None:
            return CallStatus(CallState.UNKNOWN)
        return CallStatus(known.state, known.result)

    async def close(self) -> None:
        for live in list(self._live.values()):
            task = asyncio.ensure_future(self._hangup_call(live))
            self._hangups.add(task)
            task.add_done_callback(self._hangups.discard)
        if self._hangups:
            await asyncio.gather(*list(self._hangups), return_exceptions=True)
        if self._uac is not None:
            await self._uac.close()
            self._uac = None

    # -- the agent leg (third-party call control) ------------------------
    def _agent_timeout(self, agent: AgentSettings, remaining: float) -> float:
        window = self.settings.agent_answer_window_fraction * self.uac.timers.timer_b
        return max(0.0, min(agent.answer_timeout_seconds, window, remaining))

    async def _invite_agent(
        self, request: CallRequest, agent_call: _AgentCall, offer: bytes, timeout: float
    ) -> InviteResult:
        """Opens the flow to the agent and INVITEs it with the callee's offer."""
        agent = request.agent
        assert agent is not None
        try:
            flow = await self.uac.flow_for(agent.host, agent.port, agent.transport)
        except SipTransportError as exc:
            return InviteResult(kind=InviteEnd.TRANSPORT_ERROR, detail=str(exc))
        headers = id_headers(
            batch_id=request.batch_id,
            contact_id=request.contact_id,
            attempt_id=request.attempt_id,
            call_id=request.provider_call_id,
        )
        headers += agent_headers(request.variables, agent.header_fields)
        local = flow.local_host if ":" not in flow.local_host else f"[{flow.local_host}]"
        leg = OutboundLeg(
            self.uac,
            flow,
            call_id=agent_call_id(request.provider_call_id),
            request_uri=agent.uri,
            # The agent sees the callee as its caller (a LiveKit participant's
            # phone number is the From user), and itself as the To.
            from_user=request.to_number,
            to_user=agent.user,
            to_host=agent.host,
            from_uri=f"<{agent.scheme}:{request.to_number}@{local}>",
            to_uri=f"<{agent.uri.split(';', 1)[0]}>",
            extra_headers=headers,
            sdp=offer,
            credentials=Credentials(agent.username, agent.password) if agent.username else None,
            give_up_unprovisioned=True,
        )
        agent_call.leg = leg
        try:
            return await leg.invite(timeout)
        except Exception as exc:  # a bad agent setting must end as agent_error, not crash the call
            log.exception("SIP agent leg %s failed", leg.call_id)
            return InviteResult(kind=InviteEnd.TRANSPORT_ERROR, detail=f"agent leg error: {exc!r}")

    def _release_agent(self, agent_call: _AgentCall) -> asyncio.Future[None]:
        """Ends the agent leg in the background, whatever its state (idempotent)."""
        if agent_call.release_task is None:
            agent_call.release_task = asyncio.ensure_future(self._release_agent_now(agent_call))
            self._hangups.add(agent_call.release_task)  # type: ignore[arg-type]
            agent_call.release_task.add_done_callback(self._hangups.discard)  # type: ignore[arg-type]
        return agent_call.release_task

    async def _release_agent_now(self, agent_call: _AgentCall) -> None:
        task = agent_call.task
        try:
            if task is not None and not task.done():
                if agent_call.leg is None:
                    task.cancel()  # still opening the flow: no INVITE sent yet
                else:
                    agent_call.leg.stop_ringing()
            if task is not None:
                try:
                    await task
                except asyncio.CancelledError:
                    pass
            leg = agent_call.leg
            if leg is not None:
                how = await leg.hangup()
                if how != "ended":
                    log.info("SIP agent leg %s hung up (%s)", leg.call_id, how)
        except Exception:
            log.exception("SIP agent leg: hang-up failed")
        finally:
            if agent_call.leg is not None:
                agent_call.leg.finish()

    async def _bridge(
        self,
        request: CallRequest,
        live: _LiveCall,
        callee_res: InviteResult,
        start: datetime,
        answer_time: datetime,
        t0: float,
        answered_at: float,
    ) -> CallResult:
        """The callee answered with its offer: bring the agent in and hold the call (RFC 3725 Flow I)."""
        loop = asyncio.get_running_loop()
        agent = request.agent
        agent_call = live.agent
        assert agent is not None and agent_call is not None
        callee = live.callee

        def done(outcome: Outcome, detail: str, delay: float | None, agent_code: int = 0) -> CallResult:
            return self._finish(
                request,
                outcome,
                start,
                answer_time=answer_time,
                sip_code=200,
                detail=detail,
                agent_answer_delay=delay,
                agent_sip_code=agent_code,
            )

        if not callee_res.body.strip():
            await callee.bye()
            return done(Outcome.CARRIER_ERROR, "the callee's 2xx to an offerless INVITE had no SDP offer", None)

        remaining = request.max_call_duration_seconds - (loop.time() - t0)
        timeout = self._agent_timeout(agent, remaining)
        agent_call.task = asyncio.ensure_future(self._invite_agent(request, agent_call, callee_res.body, timeout))
        callee_bye = asyncio.ensure_future(callee.remote_bye.wait())
        try:
            await asyncio.wait({agent_call.task, callee_bye}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            callee_bye.cancel()
        delay = loop.time() - answered_at

        if callee.remote_bye.is_set():
            # The callee hung up while the agent was still ringing: CANCEL the
            # agent (or BYE it if its 2xx crossed). Not the agent's failure.
            callee.ack_rejecting()
            self._release_agent(agent_call)
            return done(Outcome.COMPLETED, "callee hung up before the agent answered", delay)

        if not agent_call.task.done():
            # No answer in time: the callee must not wait in silence.
            self._release_agent(agent_call)  # CANCEL; close() waits for it
            status = await callee.bye()
            return done(
                Outcome.AGENT_ERROR,
                f"agent did not answer within {timeout:g} s (callee BYE {status or 'timed out'})",
                delay,
            )

        agent_res = agent_call.task.result()
        leg = agent_call.leg
        if agent_res.kind != InviteEnd.ANSWERED or leg is None:
            status = await callee.bye()
            why = agent_res.detail or f"{agent_res.status} {agent_res.reason}".strip()
            return done(
                Outcome.AGENT_ERROR,
                f"agent leg failed: {why} (callee BYE {status or 'timed out'})",
                delay,
                agent_res.status,
            )
        if not agent_res.body.strip():
            await asyncio.gather(callee.bye(), leg.bye())
            return done(Outcome.AGENT_ERROR, "the agent's 2xx had no SDP answer", delay, agent_res.status)

        # Connected: the agent's answer goes to the callee in the ACK of its 2xx.
        callee.send_ack(agent_res.body)
        log.info("SIP call %s bridged to agent leg %s after %.3f s", request.provider_call_id, leg.call_id, delay)
        remaining = request.max_call_duration_seconds - (loop.time() - t0)
        first = await _first_remote_bye((callee, leg), remaining)
        if first is callee:
            status = await leg.bye()
            detail = "callee hung up" + (f" (agent BYE {status})" if status else "")
        elif first is leg:
            status = await callee.bye()
            detail = "agent hung up" + (f" (callee BYE {status})" if status else "")
        else:
            s1, s2 = await asyncio.gather(callee.bye(), leg.bye())
            detail = f"max call duration reached (BYE {s1 or 'timed out'}, agent BYE {s2 or 'timed out'})"
        return done(Outcome.COMPLETED, detail, delay, agent_res.status)

    async def _hangup_call(self, live: _LiveCall) -> None:
        """Hangs up every leg of a call at once (the dialer's cancel, close())."""
        jobs: list[asyncio.Future[None]] = [asyncio.ensure_future(self._hangup(live.callee))]
        if live.agent is not None:
            jobs.append(self._release_agent(live.agent))
        await asyncio.gather(*jobs, return_exceptions=True)

    # -- internals -----------------------------------------------------
    async def _hangup(self, leg: OutboundLeg) -> None:
        try:
            how = await leg.hangup()
            log.info("SIP call %s hung up (%s)", leg.call_id, how)
        except Exception:
            log.exception("SIP call %s: hang-up failed", leg.call_id)

    def _remember(self, call_id: str, known: _Known) -> None:
        self._known[call_id] = known
        self._known.move_to_end(call_id)
        while len(self._known) > self.settings.remembered_calls:
            self._known.popitem(last=False)

    def _finish(
        self,
        request: CallRequest,
        outcome: Outcome,
        start: datetime,
        *,
        end: datetime | None = None,
        answer_time: datetime | None = None,
        sip_code: int = 0,
        detail: str = "",
        agent_answer_delay: float | None = None,
        agent_sip_code: int = 0,
        refusal: tuple[str, str | None] | None = None,
    ) -> CallResult:
        """``refusal``: (reason phrase, Retry-After) of a final INVITE response."""
        end = end or self._clock()
        duration = (end - answer_time).total_seconds() if answer_time is not None else 0.0
        result = CallResult(
            outcome=outcome,
            start_time=start,
            end_time=end,
            answer_time=answer_time,
            duration_seconds=max(duration, 0.0),
            sip_code=sip_code,
            detail=detail,
            agent_answer_delay_seconds=agent_answer_delay,
            agent_sip_code=agent_sip_code,
            refused=refusal is not None,
            reason=refusal[0] if refusal is not None else "",
            retry_after=refusal[1] if refusal is not None else None,
        )
        self._remember(request.provider_call_id, _Known(CallState.ENDED, result))
        log.info(
            "SIP call %s ended: %s (SIP %s) %s",
            request.provider_call_id,
            outcome.value,
            sip_code,
            detail,
        )
        return result


async def _first_remote_bye(legs: tuple[OutboundLeg, ...], timeout: float) -> OutboundLeg | None:
    """The first of ``legs`` whose far end hangs up within ``timeout`` seconds, or None."""
    for leg in legs:
        if leg.remote_bye.is_set():
            return leg
    waits = {asyncio.ensure_future(leg.remote_bye.wait()): leg for leg in legs}
    try:
        await asyncio.wait(waits, timeout=max(timeout, 0.0), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
    for leg in legs:
        if leg.remote_bye.is_set():
            return leg
    return None
