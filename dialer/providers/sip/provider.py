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
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

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
    if result.kind in (InviteEnd.TIMEOUT, InviteEnd.CANCEL_TIMEOUT):
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
        # The callee leg of each call in progress, by provider_call_id.
        self._live: dict[str, OutboundLeg] = {}
        self._hangups: set[asyncio.Task[None]] = set()

    @property
    def uac(self) -> SipUac:
        if self._uac is None:
            s = self.settings
            self._uac = SipUac(
                s.timers, bind_host=s.bind_host, advertise_host=s.advertise_host, user_agent=s.user_agent
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
            sdp=sdp_offer(secrets.randbelow(2**31)),
            credentials=Credentials(trunk.username, trunk.password) if trunk.username else None,
        )
        self._live[request.provider_call_id] = callee
        answer_time: datetime | None = None
        try:
            res = await callee.invite(request.ring_timeout_seconds)
            if res.kind != InviteEnd.ANSWERED:
                outcome = outcome_for_invite(res)
                detail = res.detail or f"{res.status} {res.reason}".strip()
                return self._finish(request, outcome, start, sip_code=res.status, detail=detail)

            answer_time = self._clock()
            self._known[request.provider_call_id] = _Known(CallState.IN_PROGRESS)
            await on_answer(answer_time)
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
            task = asyncio.ensure_future(self._hangup(callee))
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
            self._live.pop(request.provider_call_id, None)

    async def call_status(self, provider_call_id: str, trunk: TrunkSettings) -> CallStatus:
        known = self._known.get(provider_call_id)
        if known is None:
            return CallStatus(CallState.UNKNOWN)
        return CallStatus(known.state, known.result)

    async def close(self) -> None:
        for leg in list(self._live.values()):
            task = asyncio.ensure_future(self._hangup(leg))
            self._hangups.add(task)
            task.add_done_callback(self._hangups.discard)
        if self._hangups:
            await asyncio.gather(*list(self._hangups), return_exceptions=True)
        if self._uac is not None:
            await self._uac.close()
            self._uac = None

    # -- internals -----------------------------------------------------
    async def _hangup(self, leg: OutboundLeg) -> None:
        try:
            how = await leg.hangup()
            log.info("SIP call %s hung up (%s)", leg.call_id, how)
        except Exception:  # noqa: BLE001 - a hang-up must not raise into the dialer
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
    ) -> CallResult:
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
