"""The SIP user agent core of the dialer process (RFC 3261 §8): the layers wired.

One ``SipUac`` per provider holds the three layers every call shares:

- transport (``transport.py``): the shared UDP sockets and TCP connections;
- transaction (``transaction.py``): the client transactions in flight;
- legs (``call.py``): the dialogs we initiated, by Call-ID.

It demultiplexes what arrives: a response goes to its transaction (Via
branch + CSeq method) or, with none, to the leg of its Call-ID (a 2xx
retransmission or a forked 2xx); a request goes to the leg of its Call-ID,
and what no leg takes is answered here (OPTIONS 200, a new INVITE 403,
anything else 481). Legs are registered one per Call-ID with nothing
assuming one leg per call, so a call may hold several (see ``call.py``).

Why the UAC is hand-written rather than a library: ``README.md``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Protocol

from .message import SipRequest, SipResponse, new_tag, response_for
from .transaction import SipTimers, TransactionTable
from .transport import Flow, FlowKey, SipTransportError, TcpFlow, Transports

log = logging.getLogger(__name__)

#: The methods this UA understands (Allow header of INVITE and of OPTIONS answers).
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"


class Leg(Protocol):
    """What the core needs of a registered leg (``call.OutboundLeg``)."""

    flow: Flow
    finished: bool

    @property
    def call_id(self) -> str: ...

    def on_request(self, req: SipRequest, flow: Flow) -> bool:
        """Handles a request of this leg; False if it is not the leg's to answer."""

    def on_stray_response(self, resp: SipResponse) -> None:
        """A response of this Call-ID that matches no transaction."""

    def on_flow_closed(self) -> None:
        """The leg's TCP connection closed."""


class SipUac:
    """Transports, transactions and legs of one dialer process (see the module docstring)."""

    def __init__(
        self,
        timers: SipTimers | None = None,
        *,
        bind_host: str = "",
        advertise_host: str | None = None,
        user_agent: str = "batchcalls",
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.timers = timers or SipTimers()
        self.user_agent = user_agent
        self.transports = Transports(
            self,
            bind_host=bind_host,
            advertise_host=advertise_host,
            connect_timeout=self.timers.connect_timeout,
            tls_context=tls_context,
        )
        self.transactions = TransactionTable(self.timers)
        self._legs: dict[str, Leg] = {}

    async def flow_for(self, host: str, port: int, transport: str) -> Flow:
        """The flow to a trunk or an agent: ``host:port`` over "udp", "tcp" or "tls"."""
        return await self.transports.flow_for(host, port, transport)

    # -- legs ----------------------------------------------------------
    def register(self, leg: Leg) -> None:
        old = self._legs.get(leg.call_id)
        if old is not None and not old.finished:
            raise ValueError("a call with this Call-ID is already in progress")
        self._legs[leg.call_id] = leg

    def unregister_later(self, leg: Leg) -> None:
        """Keeps the leg a while (Timer D over UDP) to answer retransmitted BYEs and 2xx."""

        def drop() -> None:
            if self._legs.get(leg.call_id) is leg:
                del self._legs[leg.call_id]

        delay = 0.0 if leg.flow.reliable else self.timers.timer_d
        asyncio.get_running_loop().call_later(delay, drop)

    # -- from the transport layer (``transport.TransportUser``) ----------
    def on_message(self, msg: SipRequest | SipResponse, flow: Flow) -> None:
        if isinstance(msg, SipResponse):
            tx = self.transactions.match(msg)
            if tx is not None:
                tx.on_response(msg)
                return
            leg = self._legs.get(msg.call_id)
            if leg is not None:
                leg.on_stray_response(msg)
            return
        self._on_request(msg, flow)

    def _on_request(self, req: SipRequest, flow: Flow) -> None:
        if req.method == "ACK":
            return
        leg = self._legs.get(req.call_id)
        if leg is not None and leg.on_request(req, flow):
            return
        if req.method == "OPTIONS":
            resp = response_for(req, 200, "OK", to_tag=new_tag())
            resp.add("Allow", ALLOW)
        elif req.method == "INVITE" and not req.to_tag:
            resp = response_for(req, 403, "Forbidden", to_tag=new_tag())  # no inbound calls here
        else:
            resp = response_for(req, 481, "Call/Transaction Does Not Exist", to_tag=new_tag())
        self.send_response(flow, resp)

    def on_unreachable(self, key: FlowKey, exc: Exception) -> None:
        why = exc.strerror if isinstance(exc, OSError) else exc
        err = SipTransportError(f"{key[1]}:{key[2]} unreachable ({why})")
        self.transactions.fail_unanswered(key, err)

    def on_flow_closed(self, flow: TcpFlow, exc: Exception | None) -> None:
        err = SipTransportError(f"{flow.transport} connection to {flow.host} closed{': ' + str(exc) if exc else ''}")
        self.transactions.fail_on(flow, err)
        for leg in list(self._legs.values()):
            if leg.flow is flow:
                leg.on_flow_closed()

    # -- sending -------------------------------------------------------
    def send_response(self, flow: Flow, resp: SipResponse) -> None:
        resp.add("Server", self.user_agent)
        try:
            flow.send(resp.to_bytes())
        except SipTransportError as exc:
            log.debug("could not send %s: %s", resp.status, exc)

    async def close(self) -> None:
        self.transactions.terminate_all()
        self.transports.close()
        await asyncio.sleep(0)
