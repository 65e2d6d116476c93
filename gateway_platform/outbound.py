"""Outbound URL policy: where the gateway may connect to on a tenant's or an admin's say-so.

A URL someone can set (an alert webhook, a provider base URL set through the
API) must not turn the gateway into a proxy onto its own network: the host is
resolved and every address it resolves to must be public. Loopback, private,
link-local (which holds the cloud metadata service, 169.254.169.254),
shared, multicast, reserved and unspecified addresses are refused unless they
fall inside ``GATEWAY_OUTBOUND_ALLOWED_NETWORKS`` (for on-premises targets).

The check runs when the URL is saved and again when it is used, and the
request then connects to the address that was checked (``post``): a DNS answer
that changes between check and use (rebinding) cannot redirect the
connection. Redirects are never followed.

Provider base URLs (``check_provider_url``) follow the same rule with one more
allow-list, ``GATEWAY_PROVIDER_ALLOWED_NETWORKS`` (loopback by default only in
local mode and ``DEBUG``: the bundled mock upstream and a local Ollama), checked
when the URL is saved (admin, API, config import) and, for a tenant's own
provider, again at every connection (``providers.http``). A host that does not
resolve yet is accepted at save: the connection-time check still applies.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundURLRefused(ValueError):
    """The URL points somewhere the gateway must not connect to (the message says why)."""


class Unresolvable(OutboundURLRefused):
    """The URL's host does not resolve (now)."""


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def provider_networks() -> list[Network]:
    """Non-public networks a provider base URL may name: the provider allow-list plus the outbound one."""
    gateway = settings.GATEWAY
    return [*gateway.get("PROVIDER_ALLOWED_NETWORKS", []), *gateway.get("OUTBOUND_ALLOWED_NETWORKS", [])]


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL and the address to connect to."""

    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line
    address: str


def refusal_reason(address: IPAddress, allowed: list[Network] | None = None) -> str | None:
    """Why the gateway must not connect to ``address`` (None: it may); ``allowed``: the allow-list to use."""
    if allowed is None:
        allowed = settings.GATEWAY.get("OUTBOUND_ALLOWED_NETWORKS", [])
    if any(address.version == net.version and address in net for net in allowed):
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refusal_reason(address.ipv4_mapped, allowed)
    for attribute, reason in (
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address (cloud metadata lives there)"),
        ("is_multicast", "a multicast address"),
        ("is_unspecified", "an unspecified address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(address, attribute):
            return reason
    if not address.is_global:
        return "not a public address"
    return None


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolvable(f"the host {host!r} does not resolve ({exc})") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def _split(url: str) -> tuple[SplitResult, int]:
    """``url``'s parts and port (the scheme's default when it names none)."""
    try:
        parts = urlsplit(url)
        return parts, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise OutboundURLRefused(f"not a valid URL: {exc}") from None


def _refuse_addresses(host: str, addresses: list[IPAddress], allowed: list[Network], hint: str) -> None:
    """Refuse when any address ``host`` resolved to is not allowed; ``hint`` names the setting to change."""
    for address in addresses:
        reason = refusal_reason(address, allowed)
        if reason is not None:
            raise OutboundURLRefused(f"{host} resolves to {address}, {reason}; {hint}")


def check_url(url: str, *, schemes: tuple[str, ...] = ("https", "http")) -> Target:
    """Resolve ``url`` and refuse it unless every address it names is allowed (see the module docstring)."""
    parts, port = _split(url)
    if parts.scheme not in schemes:
        raise OutboundURLRefused(f"the URL must start with {' or '.join(s + '://' for s in schemes)}")
    if not parts.hostname:
        raise OutboundURLRefused("the URL has no host")
    if parts.username or parts.password:
        raise OutboundURLRefused("credentials in the URL are not allowed")
    addresses = _resolve(parts.hostname, port)
    allowed = settings.GATEWAY.get("OUTBOUND_ALLOWED_NETWORKS", [])
    hint = "set GATEWAY_OUTBOUND_ALLOWED_NETWORKS to allow an on-premises target"
    _refuse_addresses(parts.hostname, addresses, allowed, hint)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, parts.hostname, port, path, str(addresses[0]))


def check_provider_url(url: str) -> None:
    """Refuse a provider base URL naming an address outside the public internet and the provider allow-list.

    A host that does not resolve now passes (air-gapped installs, DNS set up later): a tenant's own
    provider is checked again at every connection, a platform provider is the platform admins' choice.
    """
    parts, port = _split(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise OutboundURLRefused("the URL must be http:// or https:// with a host")
    try:
        addresses = _resolve(parts.hostname, port)
    except Unresolvable:
        return
    hint = "set GATEWAY_PROVIDER_ALLOWED_NETWORKS to allow a provider on that network"
    _refuse_addresses(parts.hostname, addresses, provider_networks(), hint)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is verified for the host name, while the socket goes to the checked address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> int:
    """POST ``body`` to ``url`` after checking it now; the status (3xx are returned, never followed).

    Raises ``OutboundURLRefused`` for a refused URL and ``OSError`` when the target is unreachable.
    """
    target = check_url(url)
    cls = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = cls(target, timeout)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(65536)
        return int(response.status)
    except http.client.HTTPException as exc:
        raise OSError(f"bad HTTP answer: {exc}") from exc
    finally:
        connection.close()
