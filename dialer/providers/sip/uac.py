"""A transaction-level SIP UAC on asyncio: INVITE/ACK/CANCEL/BYE (RFC 3261).

What is here, and only this:

- transports: one UDP socket per address family shared by every call of the
  process (demultiplexed by Via branch for responses and by Call-ID for
  requests), and one TCP connection per trunk address (Content-Length
  framing, RFC 3261 §18.3). The trunk is used as outbound proxy: every
  request of a call, in-dialog ones too, goes to the trunk's address.
- client transactions (RFC 3261 §17.1): INVITE with Timer A (retransmit
  over UDP from T1, doubling), Timer B (64*T1, no response at all), ACK of
  non-2xx finals in the transaction, Timer D; non-INVITE (CANCEL, BYE) with
  Timer E (T1 doubling, capped at T2) and Timer F (64*T1).
- an outbound call (``OutboundCall``): INVITE with an SDP offer, digest
  authentication on 401/407 (re-INVITE with CSeq+1 and the same Call-ID),
  CANCEL on ring timeout (only after a provisional response, RFC 3261 §9.1),
  ACK of 2xx (again for each 2xx retransmission), BYE, and answering the
  remote BYE.
- ICMP errors on the shared UDP socket are read from the socket error queue
  (Linux IP_RECVERR), so "port unreachable" fails the INVITEs that got no
  answer from that address at once instead of waiting for Timer B.

No media, no registration, no re-INVITE of our own, no forking beyond
hanging up extra 2xx dialogs, no redirects (3xx is a final failure).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from . import digest
from .message import (
    SipParseError,
    SipRequest,
    SipResponse,
    StreamFramer,
    host_for_uri,
    name_addr_uri,
    new_branch,
    new_tag,
    parse_message,
    response_for,
)

log = logging.getLogger(__name__)

IP_RECVERR = getattr(socket, "IP_RECVERR", 11 if sys.platform.startswith("linux") else None)
IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25 if sys.platform.startswith("linux") else None)
MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", None)

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"


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


class SipTransportError(Exception):
    """The request could not be delivered (DNS, refused, unreachable, closed)."""


class TransactionTimeout(Exception):
    """Timer B / Timer F: no final response."""


# ---------------------------------------------------------------------------
# Transports
# ---------------------------------------------------------------------------


class Flow:
    """Where a call's messages go: a trunk address over one transport."""

    transport: str = "UDP"
    reliable: bool = False
    remote: tuple[str, int] = ("", 0)
    local_host: str = ""
    local_port: int = 0

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.transport, self.remote[0], self.remote[1])


class UdpFlow(Flow):
    transport = "UDP"
    reliable = False

    def __init__(self, endpoint: _UdpEndpoint, remote: tuple[str, int], local_host: str) -> None:
        self._endpoint = endpoint
        self.remote = remote
        self.local_host = local_host
        self.local_port = endpoint.local_port

    def send(self, data: bytes) -> None:
        self._endpoint.sendto(data, self.remote)


class _UdpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, uac: SipUac, sock: socket.socket) -> None:
        self._uac = uac
        self._sock = sock
        self.transport: asyncio.DatagramTransport | None = None
        self.local_port = sock.getsockname()[1]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.transport is None or self.transport.is_closing():
            raise SipTransportError("UDP socket closed")
        self.transport.sendto(data, addr)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.strip(b"\r\n\x00") == b"":
            return  # keep-alive
        try:
            msg = parse_message(data)
        except SipParseError as exc:
            log.debug("dropped unparsable UDP datagram from %s: %s", addr[0], exc)
            return
        remote = (addr[0], addr[1])
        flow = UdpFlow(self, remote, self._uac.local_host_for(remote[0]))
        self._uac._on_message(msg, flow)

    def error_received(self, exc: Exception) -> None:
        # With IP_RECVERR the kernel queues ICMP errors with the original
        # destination; drain the queue and fail the transactions sent there.
        if MSG_ERRQUEUE is None:
            log.debug("UDP socket error: %s", exc)
            return
        while True:
            try:
                _data, _anc, _flags, addr = self._sock.recvmsg(2048, 1024, MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            if addr:
                self._uac._on_unreachable(("UDP", addr[0], addr[1]), exc)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class TcpFlow(Flow, asyncio.Protocol):
    transport = "TCP"
    reliable = True

    def __init__(self, uac: SipUac, remote: tuple[str, int]) -> None:
        self._uac = uac
        self.remote = remote
        self._framer = StreamFramer()
        self._tr: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._tr = transport  # type: ignore[assignment]
        sockname = transport.get_extra_info("sockname")
        self.local_host = sockname[0]
        self.local_port = sockname[1]

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._framer.feed(data)
        except SipParseError as exc:
            log.warning("closing TCP connection to %s: %s", self.remote[0], exc)
            if self._tr is not None:
                self._tr.close()
            return
        for raw in frames:
            try:
                msg = parse_message(raw)
            except SipParseError as exc:
                log.debug("dropped unparsable TCP message: %s", exc)
                continue
            self._uac._on_message(msg, self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._uac._on_flow_closed(self, exc)

    def send(self, data: bytes) -> None:
        if self.closed or self._tr is None or self._tr.is_closing():
            raise SipTransportError(f"TCP connection to {self.remote[0]}:{self.remote[1]} closed")
        self._tr.write(data)

    def close(self) -> None:
        if self._tr is not None:
            self._tr.close()


# ---------------------------------------------------------------------------
# Client transactions
# ---------------------------------------------------------------------------


class ClientTransaction:
    """One client transaction; responses and failures arrive on ``events``."""

    def __init__(self, uac: SipUac, flow: Flow, request: SipRequest) -> None:
        self.uac = uac
        self.flow = flow
        self.request = request
        self.method = request.method
        self.branch = request.branch
        self.invite = request.method == "INVITE"
        self.state = "calling" if self.invite else "trying"
        self.events: asyncio.Queue[SipResponse | BaseException] = asyncio.Queue()
        self.final: SipResponse | None = None
        self._data = request.to_bytes()
        self._ack: bytes | None = None
        self._interval = uac.timers.t1
        self._h_retrans: asyncio.TimerHandle | None = None
        self._h_timeout: asyncio.TimerHandle | None = None
        self._h_linger: asyncio.TimerHandle | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.branch, self.method)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.uac._transactions[self.key] = self
        self._h_timeout = loop.call_later(self.uac.timers.timer_b, self._on_timeout)
        try:
            self.flow.send(self._data)
        except SipTransportError as exc:
            self._fail(exc)
            return
        if not self.flow.reliable:
            self._h_retrans = loop.call_later(self._interval, self._retransmit)

    def _retransmit(self) -> None:
        self._h_retrans = None
        if self.state not in ("calling", "trying", "proceeding"):
            return
        if self.invite and self.state != "calling":
            return
        try:
            self.flow.send(self._data)
        except SipTransportError as exc:
            self._fail(exc)
            return
        if self.invite:
            self._interval *= 2  # Timer A doubles without a cap
        elif self.state == "proceeding":
            self._interval = self.uac.timers.t2
        else:
            self._interval = min(self._interval * 2, self.uac.timers.t2)  # Timer E
        self._h_retrans = asyncio.get_running_loop().call_later(self._interval, self._retransmit)

    def _on_timeout(self) -> None:
        self._h_timeout = None
        if self.state in ("calling", "trying", "proceeding"):
            self.events.put_nowait(TransactionTimeout(f"no final response to {self.method}"))
            self.terminate()

    def _fail(self, exc: BaseException) -> None:
        if self.state in ("completed", "terminated"):
            return
        self.events.put_nowait(exc)
        self.terminate()

    def on_transport_error(self, exc: BaseException) -> None:
        self._fail(exc)

    def on_response(self, resp: SipResponse) -> None:
        code = resp.status
        if self.state == "terminated":
            return
        if self.state == "completed":
            if self.invite and code >= 300 and self._ack is not None:
                self._send_quiet(self._ack)  # the ACK was lost: send it again
            return
        if code < 200:
            if self.invite:
                self.state = "proceeding"
                self._cancel_handles(retrans=True, timeout=True)  # Timer B only runs in Calling
            else:
                if self.state == "trying":
                    self.state = "proceeding"
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
        self.state = "completed"
        self._cancel_handles(retrans=True, timeout=True)
        self.events.put_nowait(resp)
        linger = 0.0
        if not self.flow.reliable:
            linger = self.uac.timers.timer_d if self.invite else self.uac.timers.t4
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
        self.state = "terminated"
        self._cancel_handles(retrans=True, timeout=True)
        if self._h_linger is not None:
            self._h_linger.cancel()
            self._h_linger = None
        if self.uac._transactions.get(self.key) is self:
            del self.uac._transactions[self.key]


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


# ---------------------------------------------------------------------------
# The UAC: transports, demultiplexing
# ---------------------------------------------------------------------------


class SipUac:
    def __init__(
        self,
        timers: SipTimers | None = None,
        *,
        bind_host: str = "",
        advertise_host: str | None = None,
        user_agent: str = "batchcalls",
    ) -> None:
        self.timers = timers or SipTimers()
        self.bind_host = bind_host
        self.advertise_host = advertise_host
        self.user_agent = user_agent
        self._udp: dict[int, _UdpEndpoint] = {}
        self._udp_creating: dict[int, asyncio.Future[_UdpEndpoint]] = {}
        self._tcp: dict[tuple[str, int], TcpFlow] = {}
        self._tcp_connecting: dict[tuple[str, int], asyncio.Future[TcpFlow]] = {}
        self._transactions: dict[tuple[str, str], ClientTransaction] = {}
        self._calls: dict[str, OutboundCall] = {}
        self._local_host_cache: dict[str, str] = {}
        self._closed = False

    # -- flows ---------------------------------------------------------
    async def flow_for(self, host: str, port: int, transport: str) -> Flow:
        if self._closed:
            raise SipTransportError("SIP UAC closed")
        transport = (transport or "udp").upper()
        if transport not in ("UDP", "TCP"):
            raise SipTransportError(f"unsupported SIP transport {transport}")
        loop = asyncio.get_running_loop()
        sock_type = socket.SOCK_DGRAM if transport == "UDP" else socket.SOCK_STREAM
        try:
            infos = await loop.getaddrinfo(host, port, type=sock_type)
        except (socket.gaierror, UnicodeError) as exc:
            raise SipTransportError(f"DNS lookup of the trunk host failed: {exc}") from exc
        if not infos:
            raise SipTransportError("DNS lookup of the trunk host returned nothing")
        family, _, _, _, sockaddr = infos[0]
        remote = (sockaddr[0], sockaddr[1])
        if transport == "UDP":
            ep = await self._udp_endpoint(family)
            return UdpFlow(ep, remote, self.local_host_for(remote[0]))
        return await self._tcp_flow(remote, family)

    async def _udp_endpoint(self, family: int) -> _UdpEndpoint:
        ep = self._udp.get(family)
        if ep is not None:
            return ep
        pending = self._udp_creating.get(family)
        if pending is not None:
            return await asyncio.shield(pending)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[_UdpEndpoint] = loop.create_future()
        self._udp_creating[family] = fut
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            try:
                if family == socket.AF_INET and IP_RECVERR is not None:
                    sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
                elif family == socket.AF_INET6 and IPV6_RECVERR is not None:
                    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
            except OSError:
                pass
            # Many calls share this socket: give it room for bursts.
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, opt, 1 << 21)
                except OSError:
                    pass
            try:
                sock.bind((self.bind_host or ("0.0.0.0" if family == socket.AF_INET else "::"), 0))
                ep = _UdpEndpoint(self, sock)
                await loop.create_datagram_endpoint(lambda: ep, sock=sock)
            except OSError as exc:
                sock.close()
                err = SipTransportError(f"cannot open the SIP UDP socket: {exc}")
                fut.set_exception(err)
                fut.exception()
                raise err from exc
            self._udp[family] = ep
            fut.set_result(ep)
            return ep
        finally:
            self._udp_creating.pop(family, None)

    async def _tcp_flow(self, remote: tuple[str, int], family: int) -> TcpFlow:
        flow = self._tcp.get(remote)
        if flow is not None and not flow.closed:
            return flow
        pending = self._tcp_connecting.get(remote)
        if pending is not None:
            return await asyncio.shield(pending)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[TcpFlow] = loop.create_future()
        self._tcp_connecting[remote] = fut
        try:
            try:
                _, proto = await asyncio.wait_for(
                    loop.create_connection(lambda: TcpFlow(self, remote), remote[0], remote[1], family=family),
                    self.timers.connect_timeout,
                )
            except (OSError, asyncio.TimeoutError) as exc:
                err = SipTransportError(f"TCP connection to the trunk failed: {exc or 'timeout'}")
                fut.set_exception(err)
                fut.exception()  # retrieved: waiters get it through shield
                raise err from exc
            self._tcp[remote] = proto
            fut.set_result(proto)
            return proto
        finally:
            self._tcp_connecting.pop(remote, None)

    def local_host_for(self, remote_ip: str) -> str:
        if self.advertise_host:
            return self.advertise_host
        cached = self._local_host_cache.get(remote_ip)
        if cached:
            return cached
        family = socket.AF_INET6 if ":" in remote_ip else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((remote_ip, 9))  # no packet is sent: a route lookup
                local = probe.getsockname()[0]
        except OSError:
            local = "127.0.0.1" if family == socket.AF_INET else "::1"
        self._local_host_cache[remote_ip] = local
        return local

    # -- demultiplexing ------------------------------------------------
    def _on_message(self, msg: SipRequest | SipResponse, flow: Flow) -> None:
        if isinstance(msg, SipResponse):
            tx = self._transactions.get((msg.branch, msg.cseq[1]))
            if tx is not None:
                tx.on_response(msg)
                return
            call = self._calls.get(msg.call_id)
            if call is not None:
                call.on_stray_response(msg)
            return
        self._on_request(msg, flow)

    def _on_request(self, req: SipRequest, flow: Flow) -> None:
        if req.method == "ACK":
            return
        call = self._calls.get(req.call_id)
        if call is not None and call.on_request(req, flow):
            return
        if req.method == "OPTIONS":
            resp = response_for(req, 200, "OK", to_tag=new_tag())
            resp.add("Allow", ALLOW)
        elif req.method == "INVITE" and not req.to_tag:
            resp = response_for(req, 403, "Forbidden", to_tag=new_tag())  # no inbound calls here
        else:
            resp = response_for(req, 481, "Call/Transaction Does Not Exist", to_tag=new_tag())
        self.send_response(flow, resp)

    def send_response(self, flow: Flow, resp: SipResponse) -> None:
        resp.add("Server", self.user_agent)
        try:
            flow.send(resp.to_bytes())
        except SipTransportError as exc:
            log.debug("could not send %s: %s", resp.status, exc)

    def _on_unreachable(self, key: tuple[str, str, int], exc: Exception) -> None:
        err = SipTransportError(f"trunk unreachable ({exc.strerror if isinstance(exc, OSError) else exc})")
        for tx in list(self._transactions.values()):
            # Only transactions that heard nothing yet: an ICMP error about an
            # address that answers us is stale or about another message.
            if tx.flow.key == key and tx.state in ("calling", "trying"):
                tx.on_transport_error(err)

    def _on_flow_closed(self, flow: TcpFlow, exc: Exception | None) -> None:
        if self._tcp.get(flow.remote) is flow:
            del self._tcp[flow.remote]
        err = SipTransportError(f"TCP connection to the trunk closed{': ' + str(exc) if exc else ''}")
        for tx in list(self._transactions.values()):
            if tx.flow is flow:
                tx.on_transport_error(err)
        for call in list(self._calls.values()):
            if call.flow is flow:
                call.on_flow_closed()

    def register(self, call: OutboundCall) -> None:
        old = self._calls.get(call.call_id)
        if old is not None and not old.finished:
            raise ValueError("a call with this Call-ID is already in progress")
        self._calls[call.call_id] = call

    def unregister_later(self, call: OutboundCall) -> None:
        """Keeps the call a while to answer retransmitted BYEs and 2xx."""

        def drop() -> None:
            if self._calls.get(call.call_id) is call:
                del self._calls[call.call_id]

        delay = 0.0 if call.flow.reliable else self.timers.timer_d
        asyncio.get_running_loop().call_later(delay, drop)

    def start_transaction(self, flow: Flow, request: SipRequest) -> ClientTransaction:
        tx = ClientTransaction(self, flow, request)
        tx.start()
        return tx

    def send_stateless(self, flow: Flow, request: SipRequest) -> None:
        try:
            flow.send(request.to_bytes())
        except SipTransportError as exc:
            log.debug("could not send %s: %s", request.method, exc)

    @property
    def active_calls(self) -> list[OutboundCall]:
        return [c for c in self._calls.values() if not c.finished]

    async def close(self) -> None:
        self._closed = True
        for tx in list(self._transactions.values()):
            tx.terminate()
        for ep in self._udp.values():
            ep.close()
        for flow in list(self._tcp.values()):
            flow.close()
        self._udp.clear()
        self._tcp.clear()
        await asyncio.sleep(0)


# ---------------------------------------------------------------------------
# One outbound call
# ---------------------------------------------------------------------------


@dataclass
class InviteResult:
    """How the INVITE ended.

    kind: answered | rejected | cancelled (our CANCEL got its 487) |
    timeout (Timer B) | cancel_timeout (no final response after our CANCEL) |
    transport_error.
    """

    kind: str
    status: int = 0
    reason: str = ""
    detail: str = ""
    invites_sent: int = 0
    provisional: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


class OutboundCall:
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
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.uac = uac
        self.flow = flow
        self.call_id = call_id
        self.request_uri = request_uri
        local = host_for_uri(flow.local_host)
        self.local_tag = new_tag()
        self.from_value = f"<sip:{from_user}@{local}>;tag={self.local_tag}"
        self.to_value = f"<sip:{to_user}@{host_for_uri(to_host)}>"
        tp = flow.transport.lower()
        self.contact = f"<sip:{from_user}@{local}:{flow.local_port};transport={tp}>"
        self.extra_headers = list(extra_headers or [])
        self.sdp = sdp
        self.credentials = credentials
        self.cseq = random.randint(1, 10_000)
        self.invite_tx: ClientTransaction | None = None
        self.invite_request: SipRequest | None = None
        self.got_provisional = False
        self.cancel_sent = False
        self.state = "init"  # init | calling | confirmed | terminated
        self.remote_tag = ""
        self.remote_target = ""
        self.route_set: list[str] = []
        self._ack_2xx: bytes | None = None
        self._auth_header: tuple[str, str] | None = None
        self._nc: dict[str, int] = {}
        self.remote_bye = asyncio.Event()
        self.invites_sent = 0
        self.provisional: list[int] = []
        self.finished = False
        self.hangup_reason = ""

    # -- building requests ---------------------------------------------
    def _via(self, branch: str) -> str:
        return f"SIP/2.0/{self.flow.transport} {host_for_uri(self.flow.local_host)}:{self.flow.local_port};branch={branch};rport"

    def _base(self, method: str, uri: str, cseq: int, branch: str, to: str) -> SipRequest:
        req = SipRequest(method=method, uri=uri)
        req.add("Via", self._via(branch))
        req.add("Max-Forwards", "70")
        req.add("From", self.from_value)
        req.add("To", to)
        req.add("Call-ID", self.call_id)
        req.add("CSeq", f"{cseq} {method}")
        return req

    def _authorize(self, req: SipRequest, challenge_header: str, challenge: digest.Challenge) -> None:
        assert self.credentials is not None
        n = self._nc.get(challenge.nonce, 0) + 1
        self._nc[challenge.nonce] = n
        value = digest.authorization(
            challenge,
            username=self.credentials.username,
            password=self.credentials.password,
            method=req.method,
            uri=req.uri,
            nc=n,
        )
        name = "Proxy-Authorization" if challenge_header == "Proxy-Authenticate" else "Authorization"
        req.set(name, value)
        self._auth_header = (challenge_header, value)

    def _new_invite(self, challenge: tuple[str, digest.Challenge] | None = None) -> SipRequest:
        self.cseq += 1
        req = self._base("INVITE", self.request_uri, self.cseq, new_branch(), self.to_value)
        req.add("Contact", self.contact)
        req.add("Allow", ALLOW)
        req.add("User-Agent", self.uac.user_agent)
        for name, value in self.extra_headers:
            req.add(name, value)
        if challenge is not None:
            self._authorize(req, challenge[0], challenge[1])
        if self.sdp:
            req.add("Content-Type", "application/sdp")
        req.body = self.sdp
        return req

    def _send_invite(self, challenge: tuple[str, digest.Challenge] | None = None) -> None:
        req = self._new_invite(challenge)
        self.invite_request = req
        self.got_provisional = False
        self.invites_sent += 1
        self.invite_tx = self.uac.start_transaction(self.flow, req)

    def _send_cancel(self) -> None:
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
        self.uac.start_transaction(self.flow, cancel)

    def _in_dialog(self, method: str) -> SipRequest:
        self.cseq += 1
        to = f"{self.to_value};tag={self.remote_tag}" if self.remote_tag else self.to_value
        req = self._base(method, self.remote_target or self.request_uri, self.cseq, new_branch(), to)
        for r in self.route_set:
            req.add("Route", r)
        return req

    # -- the INVITE ----------------------------------------------------
    async def invite(self, ring_timeout: float) -> InviteResult:
        """Sends the INVITE and follows it to its end (answer, failure, our CANCEL)."""
        self.uac.register(self)
        self.state = "calling"
        loop = asyncio.get_running_loop()
        self._send_invite()
        return await self._drive(loop.time() + ring_timeout)

    async def _drive(self, ring_deadline: float) -> InviteResult:
        loop = asyncio.get_running_loop()
        auth_tries = 0
        cancel_deadline: float | None = None
        while True:
            tx = self.invite_tx
            assert tx is not None
            timeout: float | None
            if not self.cancel_sent:
                timeout = ring_deadline - loop.time()
                if timeout <= 0:
                    if self.got_provisional:
                        self._send_cancel()
                        cancel_deadline = loop.time() + self.uac.timers.timer_b
                        continue
                    timeout = None  # RFC 3261 §9.1: no CANCEL before a provisional
            else:
                if cancel_deadline is None:
                    cancel_deadline = loop.time() + self.uac.timers.timer_b
                timeout = cancel_deadline - loop.time()
                if timeout <= 0:
                    tx.terminate()
                    return self._result("cancel_timeout", detail="no final response after CANCEL")
            try:
                if timeout is None:
                    ev = await tx.events.get()
                else:
                    async with asyncio.timeout(timeout):
                        ev = await tx.events.get()
            except TimeoutError:
                continue
            if isinstance(ev, TransactionTimeout):
                return self._result("timeout", detail="no response to INVITE (Timer B)")
            if isinstance(ev, SipTransportError):
                return self._result("transport_error", detail=str(ev))
            if isinstance(ev, BaseException):
                return self._result("transport_error", detail=repr(ev))
            resp = ev
            if resp.status < 200:
                self.got_provisional = True
                self.provisional.append(resp.status)
                continue
            if resp.status < 300:
                self._confirm(resp)
                return self._result("answered", resp)
            if (
                resp.status in (401, 407)
                and self.credentials is not None
                and not self.cancel_sent
                and auth_tries < 2
            ):
                header = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
                challenge = self._pick_challenge(resp, header)
                if challenge is not None and (auth_tries == 0 or challenge.stale):
                    auth_tries += 1
                    self._send_invite((header, challenge))
                    continue
            kind = "cancelled" if (self.cancel_sent and resp.status == 487) else "rejected"
            self.state = "terminated"
            return self._result(kind, resp)

    @staticmethod
    def _pick_challenge(resp: SipResponse, header: str) -> digest.Challenge | None:
        for value in resp.get_all(header):
            try:
                ch = digest.parse_challenge(value)
                digest._hash_fn(ch.algorithm)
                if ch.qop_options and "auth" not in ch.qop_options:
                    continue
                return ch
            except digest.DigestError:
                continue
        return None

    def _result(self, kind: str, resp: SipResponse | None = None, detail: str = "") -> InviteResult:
        if kind != "answered":
            self.state = "terminated"
        return InviteResult(
            kind=kind,
            status=resp.status if resp is not None else 0,
            reason=resp.reason if resp is not None else "",
            detail=detail,
            invites_sent=self.invites_sent,
            provisional=list(self.provisional),
        )

    def _confirm(self, resp: SipResponse) -> None:
        self.remote_tag = resp.to_tag
        contact = resp.get("Contact")
        self.remote_target = name_addr_uri(contact) if contact else self.request_uri
        self.route_set = list(reversed(resp.get_all("Record-Route")))
        self.state = "confirmed"
        self._ack_2xx = self._build_ack_2xx(resp).to_bytes()
        self._send_raw(self._ack_2xx)

    def _build_ack_2xx(self, resp: SipResponse) -> SipRequest:
        assert self.invite_request is not None
        cseq = self.invite_request.cseq[0]
        ack = self._base("ACK", self.remote_target, cseq, new_branch(), resp.get("To") or "")
        for r in self.route_set:
            ack.add("Route", r)
        if self._auth_header is not None:
            name = "Proxy-Authorization" if self._auth_header[0] == "Proxy-Authenticate" else "Authorization"
            ack.add(name, self._auth_header[1])
        return ack

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
        if self.state != "confirmed":
            return 0
        self.state = "terminated"
        if isinstance(self.flow, TcpFlow) and self.flow.closed:
            try:
                self.flow = await self.uac.flow_for(self.flow.remote[0], self.flow.remote[1], "tcp")
            except SipTransportError:
                return 0
        challenge: tuple[str, digest.Challenge] | None = None
        for _ in range(2):
            req = self._in_dialog("BYE")
            req.add("User-Agent", self.uac.user_agent)
            if challenge is not None:
                self._authorize(req, challenge[0], challenge[1])
            tx = self.uac.start_transaction(self.flow, req)
            while True:
                ev = await tx.events.get()
                if isinstance(ev, SipResponse) and ev.status < 200:
                    continue
                break
            if not isinstance(ev, SipResponse):
                return 0
            if ev.status in (401, 407) and self.credentials is not None and challenge is None:
                header = "WWW-Authenticate" if ev.status == 401 else "Proxy-Authenticate"
                ch = self._pick_challenge(ev, header)
                if ch is not None:
                    challenge = (header, ch)
                    continue
            return ev.status
        return 0

    async def hangup(self) -> str:
        """Ends the call whatever its state: CANCEL before the answer, BYE after.

        Returns what happened: "bye", "cancelled", "answered_then_bye",
        "ended" (it had ended already), "no_final" (nothing after CANCEL).
        """
        if self.state == "confirmed":
            await self.bye()
            return "bye"
        if self.state == "calling":
            loop = asyncio.get_running_loop()
            res = await self._drive(loop.time())
            if res.kind == "answered":
                await self.bye()
                return "answered_then_bye"
            return "cancelled" if res.kind == "cancelled" else res.kind
        return "ended"

    # -- incoming ------------------------------------------------------
    def on_request(self, req: SipRequest, flow: Flow) -> bool:
        """Handles a request of this call; False if it is not ours to answer."""
        if req.to_tag and req.to_tag != self.local_tag:
            return False
        if req.method == "BYE":
            resp = response_for(req, 200, "OK")
            self.uac.send_response(flow, resp)
            if self.state == "confirmed":
                self.state = "terminated"
                self.hangup_reason = "remote BYE"
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
        if resp.to_tag == self.remote_tag and self._ack_2xx is not None:
            self._send_raw(self._ack_2xx)  # our ACK was lost
            return
        # A 2xx from another fork: acknowledge it and hang it up at once.
        if self.invite_request is None:
            return
        contact = resp.get("Contact")
        target = name_addr_uri(contact) if contact else self.request_uri
        ack = self._base("ACK", target, self.invite_request.cseq[0], new_branch(), resp.get("To") or "")
        self._send_raw(ack.to_bytes())
        self.cseq += 1
        bye = self._base("BYE", target, self.cseq, new_branch(), resp.get("To") or "")
        self.uac.start_transaction(self.flow, bye)

    def on_flow_closed(self) -> None:
        pass  # the dialog outlives the connection; a BYE opens a new one if needed

    def finish(self) -> None:
        self.finished = True
        self.state = "terminated"
        self.uac.unregister_later(self)


def is_valid_call_id(call_id: str) -> bool:
    """RFC 3261 callid = word ["@" word]; word chars are alphanum and -.!%*_+`'~()<>:\\"/[]?{}"""
    if not call_id or len(call_id) > 256:
        return False
    allowed = set("-.!%*_+`'~()<>:\\\"/[]?{}")
    parts = call_id.split("@")
    if len(parts) > 2:
        return False
    return all(p and all(ch.isascii() and (ch.isalnum() or ch in allowed) for ch in p) for p in parts)
