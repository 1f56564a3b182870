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

Several servers (``BATCHCALLS_SERVER_ADDR``, ``BATCHCALLS_GRPC_ADDR``): the
address is one of

| form                                  | channel                                      |
|---------------------------------------|----------------------------------------------|
| ``host:port``                         | as given (one server; pick_first)            |
| ``10.0.0.1:50052,10.0.0.2:50052``     | ``ipv4:10.0.0.1:50052,10.0.0.2:50052`` (or   |
|                                       | ``ipv6:[…]:p,…``), round_robin               |
| ``dns:///name:port``                  | every address the name resolves to,          |
|                                       | round_robin, re-resolved (at most once a     |
|                                       | second) when a connection fails              |
| any other gRPC target (``ipv4:…``)    | as given, round_robin                        |

One channel either way: RPCs go to the servers that answer, a server that
dies is skipped at once (its in-flight RPCs fail UNAVAILABLE, the caller's
retry goes to another) and rejoins when it answers again. A list takes IP
literals only, all IPv4 or all IPv6: gRPC has no target for several host
names, and resolving them once here would pin addresses that change when a
container is recreated (and fail while it is down). For host names give one
DNS name that resolves to every server (a compose network alias shared by
the replicas, a headless Kubernetes service): ``dns:///name:port``.

With TLS, a list is checked against ``BATCHCALLS_TLS_SERVER_NAME`` when set,
else against its first address (the servers share a certificate).

Reconnect back-off is bounded (``RECONNECT_OPTIONS``): 100 ms first, 250 ms
at most (gRPC adds ±20 % jitter), and a connection attempt gives up after
1 s, so a channel is READY again within about 300 ms of a server answering
again, and calls resume well within a second (the server's first requests
included; bench/restart.py prints the gap; with a 500 ms cap it printed up
to 847 ms on a busy machine). A caller's options override these.
"""

from __future__ import annotations

import ipaddress
import json
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


#: Bounded reconnect back-off (milliseconds): calls resume within about a
#: second of a server answering again (tests/e2e/test_server_replicas.py). ``min_reconnect_backoff_ms`` is also
#: gRPC's connect timeout (default 20 s): a server host that vanished (no
#: RST) costs one second per try, not twenty.
RECONNECT_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 1000),
    ("grpc.max_reconnect_backoff_ms", 250),
    # dns:/// targets: re-resolve at most once a second (default 30 s).
    ("grpc.dns_min_time_between_resolutions_ms", 1000),
)

ROUND_ROBIN = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})


@dataclass(frozen=True)
class Target:
    """What :func:`resolve_target` made of an address setting."""

    #: The gRPC target string to open.
    target: str
    #: Several servers (a list, a DNS name, a scheme target): round_robin.
    balanced: bool
    #: The name to check in server certificates for a list (its first
    #: address's host) when BATCHCALLS_TLS_SERVER_NAME is unset; "" otherwise.
    tls_name: str = ""


def _split_host_port(addr: str, setting: str) -> tuple[str, str]:
    if addr.startswith("["):
        host, sep, port = addr[1:].partition("]:")
    else:
        host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ChannelConfigError(f"{setting}: {addr!r} is not host:port")
    return host, port


def resolve_target(address: str, setting: str = "server address") -> Target:
    """The gRPC target for an address setting (the module docstring's table).

    Raises ChannelConfigError for an empty entry, an entry that is not
    ``host:port``, a host name in a list, or a list mixing IPv4 and IPv6."""
    address = address.strip()
    if not address:
        raise ChannelConfigError(f"{setting} is empty")
    scheme = address.split(":", 1)[0]
    if "://" in address or scheme in ("dns", "ipv4", "ipv6", "unix", "unix-abstract", "vsock"):
        # A gRPC target as is: dns:///name:port resolves to every replica.
        return Target(address, balanced=not scheme.startswith("unix"))
    if "," not in address:
        return Target(address, balanced=False)
    entries = [a.strip() for a in address.split(",")]
    if any(not a for a in entries):
        raise ChannelConfigError(f"{setting}: empty entry in {address!r}")
    families = set()
    for entry in entries:
        host, _ = _split_host_port(entry, setting)
        try:
            families.add(ipaddress.ip_address(host).version)
        except ValueError:
            raise ChannelConfigError(
                f"{setting}: {host!r} in a list is not an IP address; a list takes IP addresses, "
                f"for host names give one DNS name that resolves to every server (dns:///name:port)"
            ) from None
    if len(families) > 1:
        raise ChannelConfigError(f"{setting}: a list is all IPv4 or all IPv6, not both: {address!r}")
    scheme = "ipv4" if families == {4} else "ipv6"
    first_host, _ = _split_host_port(entries[0], setting)
    return Target(f"{scheme}:{','.join(entries)}", balanced=True, tls_name=first_host)


def channel_args(address: str, options: Options = (), *, tls: ClientTLS | None = None,
                 setting: str = "server address") -> tuple[str, list[tuple[str, Any]]]:
    """(gRPC target, channel options) for ``address``: the reconnect bounds,
    round_robin for several servers, the TLS name; ``options`` override."""
    tls = ClientTLS.from_env() if tls is None else tls
    t = resolve_target(address, setting)
    merged: dict[str, Any] = dict(RECONNECT_OPTIONS)
    if t.balanced:
        merged["grpc.service_config"] = ROUND_ROBIN
    if tls.enabled and not tls.server_name and t.tls_name:
        merged["grpc.ssl_target_name_override"] = t.tls_name
    merged.update(dict(tls.options(options)))
    return t.target, list(merged.items())


def open_channel(target: str, options: Options = (), *, tls: ClientTLS | None = None) -> grpc.Channel:
    """A sync channel to ``target`` (an address setting: the module
    docstring's table): TLS when configured, else plaintext."""
    tls = ClientTLS.from_env() if tls is None else tls
    creds = tls.credentials()
    target, opts = channel_args(target, options, tls=tls)
    if creds is None:
        return grpc.insecure_channel(target, options=opts)
    return grpc.secure_channel(target, creds, options=opts)


def open_aio_channel(target: str, options: Options = (), *, tls: ClientTLS | None = None) -> grpc.aio.Channel:
    """The grpc.aio twin of :func:`open_channel` (same rule)."""
    tls = ClientTLS.from_env() if tls is None else tls
    creds = tls.credentials()
    target, opts = channel_args(target, options, tls=tls)
    if creds is None:
        return grpc.aio.insecure_channel(target, options=opts)
    return grpc.aio.secure_channel(target, creds, options=opts)
