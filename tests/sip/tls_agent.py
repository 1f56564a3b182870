"""A minimal voice agent UAS over TLS, for the agent leg's sips:/TLS path.

sipp 3.6.1 as packaged here has no TLS, so this small asyncio server plays
the agent on a TLS socket with a throw-away self-signed certificate for
127.0.0.1: it answers an INVITE with 100 and a 200 OK whose SDP names
``rtp_port`` (a receiver the test owns), takes the ACK, answers a BYE with
200, and records every request it received (method, Request-URI, headers,
body) so the test can check what went over the wire.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dialer.providers.sip.message import (
    SipRequest,
    StreamFramer,
    parse_message,
    response_for,
)


def make_certificate(directory: Path, ip: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate naming ``ip`` (IP SAN); returns (cert, key) PEM paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "batchcalls test agent")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "agent.crt", directory / "agent.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass
class TlsAgent:
    cert: Path
    key: Path
    rtp_port: int
    host: str = "127.0.0.1"
    port: int = 0
    received: list[SipRequest] = field(default_factory=list)
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=ctx)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def methods(self) -> list[str]:
        return [r.method for r in self.received]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = StreamFramer()
        try:
            while data := await reader.read(65536):
                for raw in framer.feed(data):
                    msg = parse_message(raw)
                    if isinstance(msg, SipRequest):
                        self.received.append(msg)
                        for out in self._answer(msg):
                            writer.write(out)
                        await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    def _answer(self, req: SipRequest) -> list[bytes]:
        if req.method == "INVITE":
            trying = response_for(req, 100, "Trying")
            ok = response_for(req, 200, "OK", to_tag="tlsagent1")
            ok.add("Contact", f"<sips:agent@{self.host}:{self.port}>")
            ok.add("Content-Type", "application/sdp")
            ok.body = (
                "v=0\r\no=agent 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                f"m=audio {self.rtp_port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
            ).encode()
            return [trying.to_bytes(), ok.to_bytes()]
        if req.method == "BYE":
            return [response_for(req, 200, "OK").to_bytes()]
        return []
