"""One outbound leg of a call: the INVITE's life and the dialog it creates.

``OutboundLeg`` sends the INVITE (with an SDP offer), answers a 401/407 once
(twice if the nonce is stale) with CSeq+1 and the same Call-ID, CANCELs on
ring timeout (only after a provisional response, RFC 3261 §9.1), ACKs the
2xx (again for each retransmission of it), sends BYE, and answers the far
end's BYE. A 2xx from another fork is ACKed and hung up at once.

A leg is one dialog with one far end, registered with the ``SipUac`` under
its own Call-ID; nothing here assumes it is the only leg of a call. With a
voice agent the provider's call is two legs under third-party call control
(RFC 3725 Flow I, see README.md): the callee's INVITE has no SDP and its
2xx ACK is deferred (``defer_ack``) until the agent's answer can go in it
(``send_ack``); the agent's leg gives up at its deadline even without a
provisional response (``give_up_unprovisioned``), and ``stop_ringing``
ends its INVITE early from another task.

Not here: media, re-INVITEs of our own (a far-end re-INVITE gets 488),
redirects (3xx is a final failure).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from enum import StrEnum

from .auth import Authenticator, Credentials, PendingChallenge
from .dialog import Dialog
from .message import (
    SipRequest,
    SipResponse,
    host_for_uri,
    is_sdp,
    name_addr_uri,
    new_branch,
    new_tag,
    response_for,
    sdp_inactive_answer,
)
from .transaction import ClientTransaction, TransactionTimeout
from .transport import Flow, SipTransportError, TcpFlow
from .uac import ALLOW, SipUac

log = logging.getLogger(__name__)

# RFC 3261 §8.1.1.5 lets the first CSeq be any number below 2**31.
_FIRST_CSEQ_MAX = 10_000
# Answers to challenges on one INVITE: the first, and one more if the nonce was stale.
_MAX_INVITE_AUTH_TRIES = 2


class InviteEnd(StrEnum):
    """How an INVITE ended."""

    ANSWERED = "answered"
    REJECTED = "rejected"
    #: Our CANCEL got its 487.
    CANCELLED = "cancelled"
    #: Timer B: no response at all.
    TIMEOUT = "timeout"
    #: No final response within 64*T1 after our CANCEL.
    CANCEL_TIMEOUT = "cancel_timeout"
    TRANSPORT_ERROR = "transport_error"
    #: Ring deadline passed with no provisional response and the leg may
    #: not wait for Timer B (``give_up_unprovisioned``): abandoned locally.
    ABANDONED = "abandoned"


#: Put on an INVITE transaction's event queue to wake ``_drive`` (``stop_ringing``).
_WAKE = object()


@dataclass
class InviteResult:
    """How the INVITE ended, with its final status if one came."""

    #: An ``InviteEnd`` value.
    kind: str
    status: int = 0
    reason: str = ""
    detail: str = ""
    invites_sent: int = 0
    provisional: list[int] = field(default_factory=list)
    #: Body of the 2xx (its SDP) when answered.
    body: bytes = b""
    #: Retry-After of the final response, if any (carrier push-back).
    retry_after: str | None = None


class LegState(StrEnum):
    INIT = "init"
    CALLING = "calling"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class OutboundLeg:
    """One INVITE we send and the dialog it creates (see the module docstring)."""

    def __init__(
        self,
        uac: SipUac,
        flow: Flow,
        *,
        call_id: str,
        request_uri: str,
        from_user: str,
        to_user: str,
        to_host: str,
        extra_headers: list[tuple[str, str]] | None = None,
        sdp: bytes = b"",
        credentials: Credentials | None = None,
        from_uri: str | None = None,
        to_uri: str | None = None,
        defer_ack: bool = False,
        give_up_unprovisioned: bool = False,
    ) -> None:
        self.uac = uac
        self.flow = flow
        local = host_for_uri(flow.local_host)
        self.dialog = Dialog(
            call_id=call_id,
            local_tag=new_tag(),
            local_uri=from_uri or f"<sip:{from_user}@{local}>",
            remote_uri=to_uri or f"<sip:{to_user}@{host_for_uri(to_host)}>",
            request_uri=request_uri,
            local_cseq=random.randint(1, _FIRST_CSEQ_MAX),
        )
        if request_uri.lower().startswith("sips:"):
            # RFC 5630 §3.1.3: a sips request has a sips Contact (TLS implied).
            self.contact = f"<sips:{from_user}@{local}:{flow.local_port}>"
        else:
            self.contact = f"<sip:{from_user}@{local}:{flow.local_port};transport={flow.transport.lower()}>"
        self.extra_headers = list(extra_headers or [])
        self.sdp = sdp
        self.auth = Authenticator(credentials)
        self.state = LegState.INIT
        self.invite_tx: ClientTransaction | None = None
        self.invite_request: SipRequest | None = None
        self.got_provisional = False
        self.cancel_sent = False
        self.invites_sent = 0
        self.provisional: list[int] = []
        self.remote_bye = asyncio.Event()
        self.finished = False
        self._ack_2xx: bytes | None = None
        #: ``defer_ack``: the 2xx is ACKed by ``send_ack``, with the answer to its offer.
        self.defer_ack = defer_ack
        self.give_up_unprovisioned = give_up_unprovisioned
        #: The 2xx whose ACK is deferred, until ``send_ack``.
        self._unacked_2xx: SipResponse | None = None
        #: ``stop_ringing`` was called: the ring deadline is now.
        self._hurry = False

    @property
    def call_id(self) -> str:
        return self.dialog.call_id

    # -- the INVITE ----------------------------------------------------
    async def invite(self, ring_timeout: float) -> InviteResult:
        """Sends the INVITE and follows it to its end (answer, failure, our CANCEL)."""
        self.uac.register(self)
        self.state = LegState.CALLING
        loop = asyncio.get_running_loop()
        self._send_invite()
        return await self._drive(loop.time() + ring_timeout)

    def _send_invite(self, challenge: PendingChallenge | None = None) -> None:
        req = self.dialog.initial_invite(self.flow.via(new_branch()))
        req.add("Contact", self.contact)
        req.add("Allow", ALLOW)
        req.add("User-Agent", self.uac.user_agent)
        for name, value in self.extra_headers:
            req.add(name, value)
        if challenge is not None:
            self.auth.authorize(req, challenge)
        if self.sdp:
            req.add("Content-Type", "application/sdp")
        req.body = self.sdp
        self.invite_request = req
        self.got_provisional = False
        self.invites_sent += 1
        self.invite_tx = self.uac.transactions.start(self.flow, req)

    def _send_cancel(self) -> None:
        """CANCEL of the pending INVITE (RFC 3261 §9.1): its Via, From, To, Call-ID and CSeq number."""
        inv = self.invite_request
        assert inv is not None
        cancel = SipRequest(method="CANCEL", uri=inv.uri)
        cancel.add("Via", inv.get_all("Via")[0])
        cancel.add("Max-Forwards", "70")
        cancel.add("From", inv.get("From") or "")
        cancel.add("To", inv.get("To") or "")
        cancel.add("Call-ID", self.call_id)
        cancel.add("CSeq", f"{inv.cseq[0]} CANCEL")
        for r in inv.get_all("Route"):
            cancel.add("Route", r)
        cancel.add("User-Agent", self.uac.user_agent)
        self.cancel_sent = True
        self.uac.transactions.start(self.flow, cancel)

    async def _drive(self, ring_deadline: float) -> InviteResult:
        """Reads the INVITE transaction's events until the INVITE has ended.

        Past ``ring_deadline`` it CANCELs (once a provisional came) and
        then waits up to Timer B for the final response.
        """
        loop = asyncio.get_running_loop()
        auth_tries = 0
        cancel_deadline: float | None = None
        while True:
            tx = self.invite_tx
            assert tx is not None
            timeout: float | None
            if not self.cancel_sent:
                timeout = (loop.time() if self._hurry else ring_deadline) - loop.time()
                if timeout <= 0:
                    if self.got_provisional:
                        self._send_cancel()
                        cancel_deadline = loop.time() + self.uac.timers.timer_b
                        continue
                    if self.give_up_unprovisioned:
                        # Nothing heard: a CANCEL is not allowed (RFC 3261
                        # §9.1) and Timer B is too long to wait. Stop
                        # retransmitting; a late 2xx is ACKed and hung up
                        # as a stray (``on_stray_response``).
                        tx.terminate()
                        return self._result(InviteEnd.ABANDONED, detail="no response before the deadline")
                    timeout = None  # RFC 3261 §9.1: no CANCEL before a provisional
            else:
                if cancel_deadline is None:
                    cancel_deadline = loop.time() + self.uac.timers.timer_b
                timeout = cancel_deadline - loop.time()
                if timeout <= 0:
                    tx.terminate()
                    return self._result(InviteEnd.CANCEL_TIMEOUT, detail="no final response after CANCEL")
            try:
                if timeout is None:
                    ev = await tx.events.get()
                else:
                    async with asyncio.timeout(timeout):
                        ev = await tx.events.get()
            except TimeoutError:
                continue
            if ev is _WAKE:
                continue
            if isinstance(ev, TransactionTimeout):
                return self._result(InviteEnd.TIMEOUT, detail="no response to INVITE (Timer B)")
            if isinstance(ev, SipTransportError):
                return self._result(InviteEnd.TRANSPORT_ERROR, detail=str(ev))
            if isinstance(ev, BaseException):
                return self._result(InviteEnd.TRANSPORT_ERROR, detail=repr(ev))
            resp = ev
            if resp.status < 200:
                self.got_provisional = True
                self.provisional.append(resp.status)
                continue
            if resp.status < 300:
                self._confirm(resp)
                result = self._result(InviteEnd.ANSWERED, resp)
                result.body = resp.body
                return result
            if not self.cancel_sent and auth_tries < _MAX_INVITE_AUTH_TRIES:
                challenge = self.auth.challenge_in(resp)
                if challenge is not None and (auth_tries == 0 or challenge.stale):
                    auth_tries += 1
                    self._send_invite(challenge)
                    continue
            end = InviteEnd.CANCELLED if (self.cancel_sent and resp.status == 487) else InviteEnd.REJECTED
            return self._result(end, resp)

    def _result(self, end: InviteEnd, resp: SipResponse | None = None, detail: str = "") -> InviteResult:
        if end != InviteEnd.ANSWERED:
            self.state = LegState.TERMINATED
        return InviteResult(
            kind=end,
            status=resp.status if resp is not None else 0,
            reason=resp.reason if resp is not None else "",
            detail=detail,
            invites_sent=self.invites_sent,
            provisional=list(self.provisional),
            retry_after=resp.get("Retry-After") if resp is not None else None,
        )

    def _confirm(self, resp: SipResponse) -> None:
        """The 2xx: the dialog is confirmed; ACK it (RFC 3261 §13.2.2.4) unless deferred."""
        assert self.invite_request is not None
        self.dialog.confirm(resp)
        self.state = LegState.CONFIRMED
        if self.defer_ack:
            self._unacked_2xx = resp
            return
        self._ack(resp, b"")

    def _ack(self, resp: SipResponse, body: bytes) -> None:
        assert self.invite_request is not None
        ack = self.dialog.ack_for_2xx(self.invite_request, resp, self.flow.via(new_branch()))
        if self.auth.last_answer is not None:
            ack.add(*self.auth.last_answer)
        if body:
            ack.add("Content-Type", "application/sdp")
            ack.body = body
        self._ack_2xx = ack.to_bytes()
        self._send_raw(self._ack_2xx)

    @property
    def ack_pending(self) -> bool:
        """A 2xx came and its ACK waits for ``send_ack`` (``defer_ack``)."""
        return self._unacked_2xx is not None

    def send_ack(self, body: bytes) -> None:
        """ACKs the deferred 2xx with ``body`` (the SDP answer to its offer); resent on retransmissions."""
        resp = self._unacked_2xx
        if resp is None:
            return
        self._unacked_2xx = None
        self._ack(resp, body)

    def ack_rejecting(self) -> None:
        """ACKs a deferred 2xx with an answer that sets up no media (inactive; before a BYE)."""
        resp = self._unacked_2xx
        if resp is not None:
            offer = resp.body if is_sdp(resp) else b""
            self.send_ack(sdp_inactive_answer(offer, address=self.flow.local_host) if offer else b"")

    def stop_ringing(self) -> None:
        """Makes the INVITE being driven end now: CANCEL (or give up); no effect once answered."""
        self._hurry = True
        if self.state == LegState.CALLING and self.invite_tx is not None:
            self.invite_tx.events.put_nowait(_WAKE)  # type: ignore[arg-type]

    def _send_raw(self, data: bytes) -> None:
        try:
            self.flow.send(data)
        except SipTransportError as exc:
            log.debug("send failed on call: %s", exc)

    # -- after the answer ----------------------------------------------
    async def wait_remote_bye(self, timeout: float) -> bool:
        """True when the far end hung up within ``timeout`` seconds."""
        if self.remote_bye.is_set():
            return True
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await self.remote_bye.wait()
            return True
        except TimeoutError:
            return False

    async def bye(self) -> int:
        """Sends BYE (answering one digest challenge); returns the final status, 0 on timeout."""
        if self.state != LegState.CONFIRMED:
            return 0
        self.state = LegState.TERMINATED
        if isinstance(self.flow, TcpFlow) and self.flow.closed:
            try:
                self.flow = await self.uac.flow_for(self.flow.host, self.flow.remote[1], self.flow.transport)
            except SipTransportError:
                return 0
        self.ack_rejecting()  # a deferred ACK goes first (RFC 3261 §15: BYE after the ACK)
        challenge: PendingChallenge | None = None
        for _ in range(2):
            req = self.dialog.in_dialog("BYE", self.flow.via(new_branch()))
            req.add("User-Agent", self.uac.user_agent)
            if challenge is not None:
                self.auth.authorize(req, challenge)
            final = await _final_response(self.uac.transactions.start(self.flow, req))
            if final is None:
                return 0
            if challenge is None:
                challenge = self.auth.challenge_in(final)
                if challenge is not None:
                    continue
            return final.status
        return 0

    async def hangup(self) -> str:
        """Ends the leg whatever its state: CANCEL before the answer, BYE after.

        Returns what happened: "bye", "cancelled", "answered_then_bye",
        "ended" (it had ended already), or else how the INVITE ended (an
        ``InviteEnd`` value such as "cancel_timeout": nothing after CANCEL).
        """
        if self.state == LegState.CONFIRMED:
            await self.bye()
            return "bye"
        if self.state == LegState.CALLING:
            loop = asyncio.get_running_loop()
            res = await self._drive(loop.time())
            if res.kind == InviteEnd.ANSWERED:
                await self.bye()
                return "answered_then_bye"
            return "cancelled" if res.kind == InviteEnd.CANCELLED else str(res.kind)
        return "ended"

    # -- from the UAC core (``uac.Leg``) ---------------------------------
    def on_request(self, req: SipRequest, flow: Flow) -> bool:
        """Handles a request of this leg; False if it is not ours to answer."""
        if not self.dialog.owns(req):
            return False
        if req.method == "BYE":
            self.uac.send_response(flow, response_for(req, 200, "OK"))
            self.ack_rejecting()  # stop the 2xx retransmissions of a deferred ACK
            if self.state == LegState.CONFIRMED:
                self.state = LegState.TERMINATED
            self.remote_bye.set()
            return True
        if req.method == "INVITE" and req.to_tag:
            # Re-INVITE (session refresh, hold): we do not renegotiate media.
            self.uac.send_response(flow, response_for(req, 488, "Not Acceptable Here"))
            return True
        if req.method in ("INFO", "NOTIFY"):
            self.uac.send_response(flow, response_for(req, 200, "OK"))
            return True
        return False

    def on_stray_response(self, resp: SipResponse) -> None:
        """A response with no transaction: a 2xx retransmission or a forked 2xx."""
        if resp.cseq[1] != "INVITE" or not (200 <= resp.status < 300):
            return
        if resp.to_tag == self.dialog.remote_tag and self._ack_2xx is not None:
            self._send_raw(self._ack_2xx)  # our ACK was lost
            return
        if resp.to_tag == self.dialog.remote_tag and self._unacked_2xx is not None:
            return  # a retransmission of the 2xx whose ACK is deferred: it comes with the answer
        # A 2xx from another fork: acknowledge it and hang it up at once.
        if self.invite_request is None:
            return
        contact = resp.get("Contact")
        target = name_addr_uri(contact) if contact else self.dialog.request_uri
        to = resp.get("To") or ""
        ack = self.dialog.request(
            "ACK", uri=target, cseq=self.invite_request.cseq[0], to=to, via=self.flow.via(new_branch())
        )
        self._send_raw(ack.to_bytes())
        bye = self.dialog.request(
            "BYE", uri=target, cseq=self.dialog.next_cseq(), to=to, via=self.flow.via(new_branch())
        )
        self.uac.transactions.start(self.flow, bye)

    def on_flow_closed(self) -> None:
        pass  # the dialog outlives the connection; a BYE opens a new one if needed

    def finish(self) -> None:
        """The provider is done with the leg; the UAC keeps it a while for retransmissions."""
        self.finished = True
        self.state = LegState.TERMINATED
        self.uac.unregister_later(self)


async def _final_response(tx: ClientTransaction) -> SipResponse | None:
    """The final response of a non-INVITE transaction; None on timeout or transport error."""
    while True:
        ev = await tx.events.get()
        if isinstance(ev, SipResponse) and ev.status < 200:
            continue
        return ev if isinstance(ev, SipResponse) else None
