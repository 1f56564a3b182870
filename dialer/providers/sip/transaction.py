"""SIP client transactions (RFC 3261 §17.1) and their timers.

- INVITE (§17.1.1): Timer A retransmits over UDP from T1, doubling without
  a cap; Timer B (64*T1) ends a transaction that heard nothing at all; a
  non-2xx final response is ACKed inside the transaction (again for each
  retransmission of it) and Timer D keeps the transaction that long to
  absorb them. A 2xx ends the transaction: its ACK belongs to the dialog
  (§13.2.2.4, see ``call.py``).
- non-INVITE (§17.1.2, CANCEL and BYE here): Timer E retransmits from T1,
  doubling up to T2 (T2 at once after a provisional); Timer F (64*T1);
  Timer K (T4) absorbs retransmitted finals.

Over a reliable transport (TCP) nothing is retransmitted and nothing
lingers. Responses and failures reach the transaction user through the
transaction's ``events`` queue, in order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

from .message import SipRequest, SipResponse
from .transport import Flow, FlowKey, SipTransportError


@dataclass(frozen=True)
class SipTimers:
    """RFC 3261 §17 timers. Tests scale them down with ``scaled``."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    connect_timeout: float = 5.0

    @property
    def timer_b(self) -> float:
        return 64 * self.t1

    @property
    def timer_f(self) -> float:
        return 64 * self.t1

    @property
    def timer_d(self) -> float:
        # RFC 3261 asks for at least 32 s over UDP; 64*T1 is that by default.
        return 64 * self.t1

    def scaled(self, factor: float) -> SipTimers:
        return SipTimers(
            t1=self.t1 * factor,
            t2=self.t2 * factor,
            t4=self.t4 * factor,
            connect_timeout=self.connect_timeout,
        )


class TransactionTimeout(Exception):
    """Timer B / Timer F: no final response."""


class TransactionState(StrEnum):
    """RFC 3261 §17.1 states (INVITE starts in CALLING, non-INVITE in TRYING)."""

    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    TERMINATED = "terminated"


#: States in which no final response has come yet.
_PENDING = (TransactionState.CALLING, TransactionState.TRYING, TransactionState.PROCEEDING)

TransactionEvent = SipResponse | BaseException


class ClientTransaction:
    """One client transaction; responses and failures arrive on ``events``."""

    def __init__(self, table: TransactionTable, flow: Flow, request: SipRequest) -> None:
        self.table = table
        self.timers = table.timers
        self.flow = flow
        self.request = request
        self.method = request.method
        self.branch = request.branch
        self.invite = request.method == "INVITE"
        self.state = TransactionState.CALLING if self.invite else TransactionState.TRYING
        self.events: asyncio.Queue[TransactionEvent] = asyncio.Queue()
        self.final: SipResponse | None = None
        self._data = request.to_bytes()
        self._ack: bytes | None = None
        self._interval = self.timers.t1
        self._retrans_at = 0.0
        self._h_retrans: asyncio.TimerHandle | None = None
        self._h_timeout: asyncio.TimerHandle | None = None
        self._h_linger: asyncio.TimerHandle | None = None

    @property
    def key(self) -> tuple[str, str]:
        """How responses find it (RFC 3261 §17.1.3): top Via branch and CSeq method."""
        return (self.branch, self.method)

    @property
    def heard_nothing(self) -> bool:
        """No response at all yet: an ICMP error may well be about this request."""
        return self.state in (TransactionState.CALLING, TransactionState.TRYING)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.table.add(self)
        self._h_timeout = loop.call_later(self.timers.timer_b, self._on_timeout)
        try:
            self.flow.send(self._data)
        except SipTransportError as exc:
            self._fail(exc)
            return
        if not self.flow.reliable:
            # Retransmissions are planned on the loop clock from the first send,
            # not from when the previous one actually ran: a loop stalled for a
            # moment delays one retransmission but does not push every later one
            # (and the doubling schedule) towards Timer B.
            self._retrans_at = loop.time() + self._interval
            self._h_retrans = loop.call_at(self._retrans_at, self._retransmit)

    def _retransmit(self) -> None:
        self._h_retrans = None
        if self.state not in _PENDING:
            return
        if self.invite and self.state != TransactionState.CALLING:
            return
        try:
            self.flow.send(self._data)
        except SipTransportError as exc:
            self._fail(exc)
            return
        if self.invite:
            self._interval *= 2  # Timer A doubles without a cap
        elif self.state == TransactionState.PROCEEDING:
            self._interval = self.timers.t2
        else:
            self._interval = min(self._interval * 2, self.timers.t2)  # Timer E
        self._retrans_at += self._interval
        self._h_retrans = asyncio.get_running_loop().call_at(self._retrans_at, self._retransmit)

    def _on_timeout(self) -> None:
        self._h_timeout = None
        if self.state in _PENDING:
            self.events.put_nowait(TransactionTimeout(f"no final response to {self.method}"))
            self.terminate()

    def _fail(self, exc: BaseException) -> None:
        if self.state in (TransactionState.COMPLETED, TransactionState.TERMINATED):
            return
        self.events.put_nowait(exc)
        self.terminate()

    def on_transport_error(self, exc: BaseException) -> None:
        self._fail(exc)

    def on_response(self, resp: SipResponse) -> None:
        code = resp.status
        if self.state == TransactionState.TERMINATED:
            return
        if self.state == TransactionState.COMPLETED:
            if self.invite and code >= 300 and self._ack is not None:
                self._send_quiet(self._ack)  # the ACK was lost: send it again
            return
        if code < 200:
            if self.invite:
                self.state = TransactionState.PROCEEDING
                self._cancel_handles(retrans=True, timeout=True)  # Timer B only runs in Calling
            elif self.state == TransactionState.TRYING:
                self.state = TransactionState.PROCEEDING
            self.events.put_nowait(resp)
            return
        self.final = resp
        if self.invite and code < 300:
            self.events.put_nowait(resp)
            self.terminate()  # the ACK of a 2xx is the TU's (RFC 3261 §13.2.2.4)
            return
        if self.invite:
            self._ack = build_ack_for_non2xx(self.request, resp).to_bytes()
            self._send_quiet(self._ack)
        self.state = TransactionState.COMPLETED
        self._cancel_handles(retrans=True, timeout=True)
        self.events.put_nowait(resp)
        linger = 0.0
        if not self.flow.reliable:
            linger = self.timers.timer_d if self.invite else self.timers.t4
        self._h_linger = asyncio.get_running_loop().call_later(linger, self.terminate)

    def _send_quiet(self, data: bytes) -> None:
        try:
            self.flow.send(data)
        except SipTransportError:
            pass

    def _cancel_handles(self, *, retrans: bool = False, timeout: bool = False) -> None:
        if retrans and self._h_retrans is not None:
            self._h_retrans.cancel()
            self._h_retrans = None
        if timeout and self._h_timeout is not None:
            self._h_timeout.cancel()
            self._h_timeout = None

    def terminate(self) -> None:
        self.state = TransactionState.TERMINATED
        self._cancel_handles(retrans=True, timeout=True)
        if self._h_linger is not None:
            self._h_linger.cancel()
            self._h_linger = None
        self.table.discard(self)


def build_ack_for_non2xx(invite: SipRequest, resp: SipResponse) -> SipRequest:
    """RFC 3261 §17.1.1.3: same Request-URI, top Via, From, Call-ID, CSeq number; To of the response."""
    ack = SipRequest(method="ACK", uri=invite.uri)
    ack.add("Via", invite.get_all("Via")[0])
    ack.add("Max-Forwards", "70")
    ack.add("From", invite.get("From") or "")
    ack.add("To", resp.get("To") or invite.get("To") or "")
    ack.add("Call-ID", invite.call_id)
    ack.add("CSeq", f"{invite.cseq[0]} ACK")
    for r in invite.get_all("Route"):
        ack.add("Route", r)
    return ack


class TransactionTable:
    """The client transactions in flight of one UAC, and the timers they run on."""

    def __init__(self, timers: SipTimers) -> None:
        self.timers = timers
        self._by_key: dict[tuple[str, str], ClientTransaction] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def start(self, flow: Flow, request: SipRequest) -> ClientTransaction:
        """Sends ``request`` on ``flow`` in a new client transaction."""
        tx = ClientTransaction(self, flow, request)
        tx.start()
        return tx

    def add(self, tx: ClientTransaction) -> None:
        self._by_key[tx.key] = tx

    def discard(self, tx: ClientTransaction) -> None:
        if self._by_key.get(tx.key) is tx:
            del self._by_key[tx.key]

    def match(self, resp: SipResponse) -> ClientTransaction | None:
        """The transaction a response belongs to (RFC 3261 §17.1.3)."""
        return self._by_key.get((resp.branch, resp.cseq[1]))

    def fail_unanswered(self, key: FlowKey, exc: BaseException) -> None:
        """Fails the transactions sent to ``key`` that heard nothing yet.

        An ICMP error about an address that answers us is stale or about
        another message, so answered transactions are left alone.
        """
        for tx in list(self._by_key.values()):
            if tx.flow.key == key and tx.heard_nothing:
                tx.on_transport_error(exc)

    def fail_on(self, flow: Flow, exc: BaseException) -> None:
        """Fails every transaction sent on ``flow`` (its connection closed)."""
        for tx in list(self._by_key.values()):
            if tx.flow is flow:
                tx.on_transport_error(exc)

    def terminate_all(self) -> None:
        for tx in list(self._by_key.values()):
            tx.terminate()
