"""The client's address, trusting ``X-Forwarded-For`` only from configured proxies.

Behind a reverse proxy every connection comes from the proxy, so its
``X-Forwarded-For`` says who the client is, but only a proxy we run may be
believed: anyone else can send that header. With ``GATEWAY_TRUSTED_PROXIES``
(networks) set, the address is the right-most ``X-Forwarded-For`` entry that is
not itself a trusted proxy; otherwise (the default) it is the connection's peer.
Used by ``/metrics`` (network allow-list) and by the failed-authentication
limit of ``/v1/``.
"""

from __future__ import annotations

import contextvars
import ipaddress
from collections.abc import Sequence

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The /v1/ request's client address, set by the base consumer for the steps below it.
client_address_var: contextvars.ContextVar[str] = contextvars.ContextVar("client_address", default="")


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip.version == net.version and ip in net for net in proxies)


def resolve_client_address(peer: str, forwarded_for: str | None, proxies: Sequence[Network] | None = None) -> str:
    """Who the client is: ``peer`` unless it is a trusted proxy that says otherwise."""
    proxies = settings.GATEWAY.get("TRUSTED_PROXIES", []) if proxies is None else proxies
    if not forwarded_for or not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return hop
    return hops[0] if hops else peer


def scope_client_address(scope: dict[str, object]) -> str:
    """The client address of an ASGI scope."""
    client = scope.get("client") or ("", 0)
    peer = str(client[0]) if isinstance(client, (list, tuple)) and client else ""
    headers = dict(scope.get("headers") or [])  # type: ignore[call-overload]
    forwarded = headers.get(b"x-forwarded-for")
    return resolve_client_address(peer, forwarded.decode("latin-1") if forwarded else None)
