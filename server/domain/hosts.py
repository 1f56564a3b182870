"""Which trunk and agent hosts a deployment may dial (docs/design.md §7).

A host on loopback, a private range or link-local (127/8, 10/8, 172.16/12,
192.168/16, 169.254/16, ::1, fc00::/7, fe80::/10; also 0.0.0.0/8, the
unspecified and IPv4-mapped forms of these) or the name "localhost" is
refused unless the deployment allows private hosts
(``BATCHCALLS_ALLOW_PRIVATE_HOSTS``). Names are not resolved: a DNS name
that resolves to a private address (DNS rebinding) is out of scope here;
checking the resolved address at dial time would be the next step.
"""

from __future__ import annotations

import ipaddress

__all__ = ["private_host_reason"]

_V4 = [ipaddress.ip_network(n) for n in ("0.0.0.0/8", "10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16",
                                         "172.16.0.0/12", "192.168.0.0/16")]
_V6 = [ipaddress.ip_network(n) for n in ("::/128", "::1/128", "fc00::/7", "fe80::/10")]


def private_host_reason(host: str) -> str | None:
    """Why ``host`` is loopback/private/link-local, or None when it is not."""
    h = (host or "").strip().strip("[]").rstrip(".").lower()
    if h == "localhost" or h.endswith(".localhost"):
        return "localhost"
    try:
        addr = ipaddress.ip_address(h.split("%", 1)[0])
    except ValueError:
        return None  # a DNS name: not resolved (docs/design.md §7)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    nets = _V4 if isinstance(addr, ipaddress.IPv4Address) else _V6
    if any(addr in n for n in nets):
        return f"{addr} is a loopback, private or link-local address"
    return None
