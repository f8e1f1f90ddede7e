"""What a webhook may reach, how it is signed, and how its URL is shown in logs.

- Address filter (SSRF): the callback's host is resolved and EVERY address must be public; loopback,
  private, link-local, shared (CGNAT), reserved, multicast and cloud metadata addresses are refused
  unless inside WEBHOOK_ALLOWED_NETWORKS. The request then goes to the address that was checked
  (pinned), so a second DNS answer cannot redirect it; redirects are never followed.
- Signature: `X-Cofi-Signature: v1=<hex HMAC-SHA256(WEBHOOK_SECRET, "<timestamp>.<body>")>` with
  `X-Cofi-Timestamp` (unix seconds) and `X-Cofi-Delivery` (the same id on every retry of a
  notification, for the receiver to drop duplicates). `verify` is what a receiver runs.
- Logs and stored errors show `redact(url)`: no credentials, no query (tokens live there).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[IpAddress]]

#: metadata services of cloud providers (most are link-local anyway; named so the reason says so)
METADATA = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192"))
SIGNATURE_HEADER, TIMESTAMP_HEADER, DELIVERY_HEADER = "X-Cofi-Signature", "X-Cofi-Timestamp", "X-Cofi-Delivery"


class WebhookRefused(Exception):
    """A callback cofi will not call (scheme, address); permanent: the notification is marked failed."""


def redact(url: str) -> str:
    """`https://hooks.example.com/path` for `https://user:token@hooks.example.com/path?key=secret#x`."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "<unparsable URL>"
    return urlunsplit((parts.scheme, netloc, parts.path, "…" if parts.query else "", ""))


def reason_refused(ip: IpAddress, allowed: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str | None:
    """Why `ip` may not be called (None: it may)."""
    if ip.version == 6:  # ::ffff:10.0.0.1, 6to4 and Teredo carry an IPv4 address: judge that one
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            ip = embedded
    if any(ip in net for net in allowed):
        return None
    for label, hit in (("a cloud metadata address", ip in METADATA), ("loopback", ip.is_loopback),
                       ("unspecified", ip.is_unspecified), ("link-local", ip.is_link_local),
                       ("multicast", ip.is_multicast), ("reserved", ip.is_reserved), ("private", ip.is_private)):
        if hit:
            return label
    return None if ip.is_global else "not a public address"


def system_resolver(host: str, port: int) -> list[IpAddress]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))


@dataclass(frozen=True)
class Target:
    """Where one delivery goes: the checked address and what the request must say to the real host."""

    url: str  # the same URL with the checked address as host
    host_header: str
    sni_hostname: str | None  # https: the certificate must name the original host


class AddressPolicy:
    def __init__(self, allowed_networks: Iterable[str] = (), resolver: Resolver = system_resolver) -> None:
        self.allowed = [ipaddress.ip_network(n, strict=False) for n in allowed_networks]
        self.resolver = resolver

    def check_addresses(self, host: str, addresses: list[IpAddress]) -> IpAddress:
        """The address to call; WebhookRefused when any address of the host is refused (all must pass:
        a name with one public and one private address is how rebinding attacks start)."""
        if not addresses:
            raise WebhookRefused(f"{host} resolves to no address")
        for ip in addresses:
            why = reason_refused(ip, self.allowed)
            if why:
                raise WebhookRefused(f"{host} resolves to {ip}, {why}; allow it with WEBHOOK_ALLOWED_NETWORKS "
                                     "if it is meant to be called")
        return addresses[0]

    def target(self, url: str) -> Target:
        """Resolve and check `url`; the pinned request target. WebhookRefused with the reason."""
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise WebhookRefused(f"unparsable URL: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise WebhookRefused(f"{redact(url)} is not an http(s) URL")
        host = parts.hostname
        try:
            literal = ipaddress.ip_address(host)
            addresses = [literal]
        except ValueError:
            try:
                addresses = self.resolver(host, port)
            except (OSError, UnicodeError) as exc:
                raise ResolveFailed(f"cannot resolve {host}: {exc}") from None
        ip = self.check_addresses(host, addresses)
        shown = f"[{ip}]" if ip.version == 6 else str(ip)
        pinned = urlunsplit((parts.scheme, f"{shown}:{port}", parts.path or "/", parts.query, ""))
        default = (parts.scheme, port) in (("http", 80), ("https", 443))
        host_header = (f"[{host}]" if ":" in host else host) + ("" if default else f":{port}")
        return Target(pinned, host_header, host if parts.scheme == "https" and host != str(ip) else None)


class ResolveFailed(OSError):
    """DNS did not answer: transient, the delivery is retried."""


def delivery_id(batch_id: int, kind: str) -> str:
    """The same id for every attempt of one notification (receivers drop duplicates by it)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"cofi-webhook:{batch_id}:{kind}"))


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


def signed_headers(body: bytes, delivery: str, timestamp: int, secret: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", DELIVERY_HEADER: delivery, TIMESTAMP_HEADER: str(timestamp)}
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, timestamp, body)
    return headers


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: int, tolerance_s: int = 300) -> bool:
    """A receiver's check: the signature matches and the timestamp is recent (replays are refused)."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        ts = int(lower[TIMESTAMP_HEADER.lower()])
        given = lower[SIGNATURE_HEADER.lower()]
    except (KeyError, ValueError):
        return False
    return abs(now - ts) <= tolerance_s and hmac.compare_digest(given, signature(secret, ts, body))
