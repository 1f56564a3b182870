"""The one rule for opening a gRPC channel to the batchcalls server.

Every client of ours (the dialers to the internal listener, the admin UI and
`batchcalls` commands to the public one) builds its channel here, so TLS is
configured the same way everywhere:

| variable                          | meaning                                          |
|-----------------------------------|--------------------------------------------------|
| BATCHCALLS_TLS_CA_FILE            | PEM bundle to trust; set = connect with TLS      |
| BATCHCALLS_TLS=1                  | TLS with the system's trusted roots (no CA file) |
| BATCHCALLS_TLS_CLIENT_CERT_FILE   | client certificate (mutual TLS), with the key    |
| BATCHCALLS_TLS_CLIENT_KEY_FILE    | its private key                                  |
| BATCHCALLS_TLS_SERVER_NAME        | name to check in the server certificate when it  |
|                                   | differs from the address's host (optional)       |

Nothing set: plaintext (the embedded `batchcalls up` stack on loopback).
A client certificate alone also turns TLS on (with the system roots). A
certificate without its key (or the reverse) is a configuration error, not
a silent plaintext fallback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

Options = Sequence[tuple[str, Any]]


class ChannelConfigError(ValueError):
    """The TLS variables do not make a usable configuration."""


def _read(path: str, name: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ChannelConfigError(f"{name}: cannot read {path!r} ({exc.strerror or exc})") from None


@dataclass(frozen=True)
class ClientTLS:
    """How a client reaches the server: ``enabled`` False = plaintext."""

    enabled: bool = False
    ca_file: str = ""
    client_cert_file: str = ""
    client_key_file: str = ""
    server_name: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ClientTLS":
        e = os.environ if env is None else env
        ca = e.get("BATCHCALLS_TLS_CA_FILE", "").strip()
        cert = e.get("BATCHCALLS_TLS_CLIENT_CERT_FILE", "").strip()
        key = e.get("BATCHCALLS_TLS_CLIENT_KEY_FILE", "").strip()
        if bool(cert) != bool(key):
            raise ChannelConfigError(
                "BATCHCALLS_TLS_CLIENT_CERT_FILE and BATCHCALLS_TLS_CLIENT_KEY_FILE go together: set both or neither"
            )
        on = bool(ca or cert) or e.get("BATCHCALLS_TLS", "").strip().lower() in ("1", "true", "yes", "on")
        return cls(on, ca, cert, key, e.get("BATCHCALLS_TLS_SERVER_NAME", "").strip())

    def credentials(self) -> grpc.ChannelCredentials | None:
        """``grpc.ssl_channel_credentials`` for TLS; None for plaintext."""
        if not self.enabled:
            return None
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca_file, "BATCHCALLS_TLS_CA_FILE") if self.ca_file else None,
            private_key=_read(self.client_key_file, "BATCHCALLS_TLS_CLIENT_KEY_FILE") if self.client_key_file else None,
            certificate_chain=_read(self.client_cert_file, "BATCHCALLS_TLS_CLIENT_CERT_FILE")
            if self.client_cert_file else None,
        )

    def options(self, options: Options = ()) -> list[tuple[str, Any]]:
        out = list(options)
        if self.enabled and self.server_name:
            out.append(("grpc.ssl_target_name_override", self.server_name))
        return out


def open_channel(target: str, options: Options = (), *, tls: ClientTLS | None = None) -> grpc.Channel:
    """A sync channel to ``target``: TLS when configured, else plaintext."""
    tls = ClientTLS.from_env() if tls is None else tls
    creds = tls.credentials()
    if creds is None:
        return grpc.insecure_channel(target, options=tls.options(options))
    return grpc.secure_channel(target, creds, options=tls.options(options))


def open_aio_channel(target: str, options: Options = (), *, tls: ClientTLS | None = None) -> grpc.aio.Channel:
    """The grpc.aio twin of :func:`open_channel` (same rule)."""
    tls = ClientTLS.from_env() if tls is None else tls
    creds = tls.credentials()
    if creds is None:
        return grpc.aio.insecure_channel(target, options=tls.options(options))
    return grpc.aio.secure_channel(target, creds, options=tls.options(options))
