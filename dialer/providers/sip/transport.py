"""SIP transport layer (RFC 3261 §18): the sockets every call shares.

- UDP: one socket per address family for the whole process. A dialer places
  hundreds of calls at once; one socket keeps file descriptors and kernel
  buffers bounded, and the layers above demultiplex (responses by Via
  branch, requests by Call-ID).
- TCP: one connection per trunk address, framed by Content-Length
  (RFC 3261 §18.3). TLS (RFC 3261 §26.2, RFC 5630) is the same over an
  ``ssl`` connection whose certificate is checked against the host name
  (a voice agent reached at a ``sips:`` URI or ``transport=tls``).
- ICMP errors on the UDP socket are read from the socket error queue (Linux
  ``IP_RECVERR``), so "port unreachable" fails the requests sent to that
  address at once instead of after Timer B.

The trunk is the outbound proxy: every request of a call, in-dialog ones
too, goes to the trunk's address, so a ``Flow`` (trunk address + transport)
is all a call needs to know about where its messages go.

This layer knows no transactions or dialogs: it parses what arrives and
hands it to its ``TransportUser`` (the UAC core in ``uac.py``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import sys
from typing import Protocol

from .message import (
    SipParseError,
    SipRequest,
    SipResponse,
    StreamFramer,
    host_for_uri,
    parse_message,
)

log = logging.getLogger(__name__)

IP_RECVERR = getattr(socket, "IP_RECVERR", 11 if sys.platform.startswith("linux") else None)
IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25 if sys.platform.startswith("linux") else None)
MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", None)

# Kernel buffer size asked for the shared UDP socket: many calls burst on it.
UDP_SOCKET_BUFFER_BYTES = 1 << 21

#: (transport, remote ip, remote port): what an ICMP error or a flow is about.
FlowKey = tuple[str, str, int]


class SipTransportError(Exception):
    """The request could not be delivered (DNS, refused, unreachable, closed)."""


class TransportUser(Protocol):
    """What the transport layer reports to the layer above it."""

    def on_message(self, msg: SipRequest | SipResponse, flow: Flow) -> None:
        """A parsed message arrived on ``flow`` (replies go back on it)."""

    def on_unreachable(self, key: FlowKey, exc: Exception) -> None:
        """An ICMP error says ``key``'s address does not take our datagrams."""

    def on_flow_closed(self, flow: TcpFlow, exc: Exception | None) -> None:
        """A TCP connection closed; requests pending on it will get no answer."""


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
    def key(self) -> FlowKey:
        return (self.transport, self.remote[0], self.remote[1])

    def via(self, branch: str) -> str:
        """The Via header of a request sent on this flow (RFC 3261 §18.1.1)."""
        return f"SIP/2.0/{self.transport} {host_for_uri(self.local_host)}:{self.local_port};branch={branch};rport"


class UdpFlow(Flow):
    """A trunk address reached through the shared UDP socket."""

    transport = "UDP"
    reliable = False

    def __init__(self, endpoint: UdpEndpoint, remote: tuple[str, int], local_host: str) -> None:
        self._endpoint = endpoint
        self.remote = remote
        self.local_host = local_host
        self.local_port = endpoint.local_port

    def send(self, data: bytes) -> None:
        self._endpoint.sendto(data, self.remote)


class UdpEndpoint(asyncio.DatagramProtocol):
    """The shared UDP socket of one address family."""

    def __init__(self, owner: Transports, sock: socket.socket) -> None:
        self._owner = owner
        self._sock = sock
        self.transport: asyncio.DatagramTransport | None = None
        self.local_port: int = sock.getsockname()[1]

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
        flow = UdpFlow(self, remote, self._owner.local_host_for(remote[0]))
        self._owner.user.on_message(msg, flow)

    def error_received(self, exc: Exception) -> None:
        # With IP_RECVERR the kernel queues ICMP errors with the original
        # destination; drain the queue and report each destination.
        if MSG_ERRQUEUE is None:
            log.debug("UDP socket error: %s", exc)
            return
        while True:
            try:
                _data, _anc, _flags, addr = self._sock.recvmsg(2048, 1024, MSG_ERRQUEUE)
            except OSError:  # BlockingIOError included: the queue is empty
                break
            if addr:
                self._owner.user.on_unreachable(("UDP", addr[0], addr[1]), exc)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class TcpFlow(Flow, asyncio.Protocol):
    """One TCP (or TLS) connection to a peer address, shared by every call to it."""

    transport = "TCP"
    reliable = True

    def __init__(self, owner: Transports, remote: tuple[str, int], transport: str = "TCP", host: str = "") -> None:
        self._owner = owner
        self.remote = remote
        self.transport = transport
        #: The host name it was opened for (TLS checks the certificate against it).
        self.host = host or remote[0]
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
            self._owner.user.on_message(msg, self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._owner.forget_tcp(self)
        self._owner.user.on_flow_closed(self, exc)

    def send(self, data: bytes) -> None:
        if self.closed or self._tr is None or self._tr.is_closing():
            raise SipTransportError(f"TCP connection to {self.remote[0]}:{self.remote[1]} closed")
        self._tr.write(data)

    def close(self) -> None:
        if self._tr is not None:
            self._tr.close()


class Transports:
    """Opens and shares the UDP sockets and TCP connections of one UAC."""

    def __init__(
        self,
        user: TransportUser,
        *,
        bind_host: str = "",
        advertise_host: str | None = None,
        connect_timeout: float = 5.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.user = user
        self._tls_context = tls_context
        self.bind_host = bind_host
        self.advertise_host = advertise_host
        self.connect_timeout = connect_timeout
        self._udp: dict[int, UdpEndpoint] = {}
        self._udp_creating: dict[int, asyncio.Future[UdpEndpoint]] = {}
        self._tcp: dict[tuple[str, tuple[str, int]], TcpFlow] = {}
        self._tcp_connecting: dict[tuple[str, tuple[str, int]], asyncio.Future[TcpFlow]] = {}
        self._local_host_cache: dict[str, str] = {}
        self._closed = False

    @property
    def open_count(self) -> int:
        """UDP sockets plus TCP connections open now."""
        return len(self._udp) + len(self._tcp)

    async def flow_for(self, host: str, port: int, transport: str) -> Flow:
        """The flow to ``host:port`` over ``transport`` ("udp", "tcp" or "tls")."""
        if self._closed:
            raise SipTransportError("SIP UAC closed")
        transport = (transport or "udp").upper()
        if transport not in ("UDP", "TCP", "TLS"):
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
        return await self._tcp_flow(remote, family, transport, host)

    async def _udp_endpoint(self, family: int) -> UdpEndpoint:
        ep = self._udp.get(family)
        if ep is not None:
            return ep
        pending = self._udp_creating.get(family)
        if pending is not None:
            return await asyncio.shield(pending)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[UdpEndpoint] = loop.create_future()
        self._udp_creating[family] = fut
        try:
            sock = _udp_socket(family)
            try:
                sock.bind((self.bind_host or ("0.0.0.0" if family == socket.AF_INET else "::"), 0))
                ep = UdpEndpoint(self, sock)
                await loop.create_datagram_endpoint(lambda: ep, sock=sock)
            except OSError as exc:
                sock.close()
                err = SipTransportError(f"cannot open the SIP UDP socket: {exc}")
                fut.set_exception(err)
                fut.exception()  # retrieved: waiters get it through shield
                raise err from exc
            self._udp[family] = ep
            fut.set_result(ep)
            return ep
        finally:
            self._udp_creating.pop(family, None)

    async def _tcp_flow(
        self, remote: tuple[str, int], family: int, transport: str = "TCP", host: str = ""
    ) -> TcpFlow:
        key = (transport, remote)
        flow = self._tcp.get(key)
        if flow is not None and not flow.closed:
            return flow
        pending = self._tcp_connecting.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[TcpFlow] = loop.create_future()
        self._tcp_connecting[key] = fut
        tls: dict[str, object] = {}
        if transport == "TLS":
            tls["ssl"] = self._tls_context or ssl.create_default_context()
            # The certificate must name the host (an IP literal: an IP SAN).
            tls["server_hostname"] = host.strip("[]") or remote[0]
        try:
            try:
                _, proto = await asyncio.wait_for(
                    loop.create_connection(
                        lambda: TcpFlow(self, remote, transport, host),
                        remote[0],
                        remote[1],
                        family=family,
                        **tls,  # type: ignore[arg-type]
                    ),
                    self.connect_timeout,
                )
            except (TimeoutError, OSError) as exc:
                err = SipTransportError(
                    f"{transport} connection to {host or remote[0]}:{remote[1]} failed: {exc or 'timeout'}"
                )
                fut.set_exception(err)
                fut.exception()  # retrieved: waiters get it through shield
                raise err from exc
            self._tcp[key] = proto
            fut.set_result(proto)
            return proto
        finally:
            self._tcp_connecting.pop(key, None)

    def forget_tcp(self, flow: TcpFlow) -> None:
        """Drops a closed connection so the next request opens a new one."""
        key = (flow.transport, flow.remote)
        if self._tcp.get(key) is flow:
            del self._tcp[key]

    def local_host_for(self, remote_ip: str) -> str:
        """Our address as ``remote_ip`` sees it: the advertised one, else the routing source."""
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

    def close(self) -> None:
        self._closed = True
        for ep in self._udp.values():
            ep.close()
        for flow in list(self._tcp.values()):
            flow.close()
        self._udp.clear()
        self._tcp.clear()


def _udp_socket(family: int) -> socket.socket:
    """A non-blocking UDP socket with ICMP error reporting and large buffers."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        if family == socket.AF_INET and IP_RECVERR is not None:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        elif family == socket.AF_INET6 and IPV6_RECVERR is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
    except OSError:
        pass
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, UDP_SOCKET_BUFFER_BYTES)
        except OSError:
            pass
    return sock
