"""The one guarded way out for every URL a user can set (the Netflix partner endpoint; alert webhooks next).

A URL typed into a form is an instruction to make this server send requests somewhere. Left alone,
that is a server-side request forgery: ``https://169.254.169.254/latest`` reads the cloud's metadata
service, ``https://10.0.0.5:6379`` talks to an internal Redis, a redirect from a public host reaches
both, and a daily revalidation keeps doing it. So every such URL goes through this module, twice:

* ``check_url(url)`` when a form is saved: https only, no user:password, no metadata or local names,
  and the host name resolved NOW, every address it resolves to public (see ``refusal_for``).
* ``session()`` for every request: a ``requests.Session`` whose transport resolves the host again,
  refuses the same addresses, and connects to the very address it checked (so a DNS answer that
  changes between the check and the connect — "DNS rebinding" — cannot swap a public address for a
  private one). TLS is still verified against the host NAME, and the name is sent as SNI. Redirects
  are never followed: a 3xx is a failed request and its body is not read. Environment proxies are
  ignored (a proxy would resolve the name itself, after our check).

Refused addresses: loopback, private (RFC 1918), shared (100.64/10), link-local (169.254/16, where
metadata services live; fe80::/10), multicast, unspecified, reserved, unique-local (fc00::/7),
site-local, IPv4-mapped / -compatible / 6to4 / Teredo / NAT64 forms (they embed an IPv4 address), and
anything else Python does not call globally routable. Numeric host spellings (``2130706433``,
``0x7f.1``, ``127.1``, ``017700000001``) are caught because the check is on what the name RESOLVES
to, not on how it is written.

Operators can open two doors, both in settings:

* ``EGRESS_ALLOWED_HOSTS``: host names or networks (``partner.corp``, ``10.20.0.0/16``) that may
  resolve to private or shared addresses (a partner reached over a private link). Loopback,
  link-local, metadata names and the other classes stay refused even then.
* ``EGRESS_ALLOW_SANDBOX`` (on in demo mode and tests, never in production): the bundled sandbox's
  own address, ``FAKE_PLATFORMS_URL``'s scheme, host and port, exactly — plain http and loopback, but
  no other loopback port.

Why not a library: Saleor's ``requests-hardened`` (maintained; it does pin the checked IP, with the
same pool-key technique used here — the pool's host is the IP, ``server_hostname`` /
``assert_hostname`` keep SNI and certificate checks on the name) has no per-host allowlist, allows
either every loopback port or none (our sandbox needs exactly one), checks only the first DNS answer
and lets IPv4-compatible / Teredo addresses through. ``advocate`` is marked unmaintained and needs
urllib3 < 2. The transport below is that technique in ~40 lines, with our rules.

Error texts are deliberately coarse: "not a public address" covers "does not resolve" as well as
"resolves to a private network" (no oracle for which internal names exist), and every failure to
connect — closed port, unreachable host, TLS failure, connect timeout — reads the same (no port
scanner). Addresses and internal names are never put into a message or a log line.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from http import HTTPStatus
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.util.connection import allowed_gai_family

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NOT_PUBLIC = (
    "This address cannot be used: it must be a public internet address, and this one does not resolve or "
    "points to a private, local or reserved network. Use the partner's public HTTPS endpoint."
)
HTTPS_ONLY = "The address must start with https:// (identifiers are sent to it)."
INVALID = "This is not a valid https:// address."
NO_USERINFO = "The address must not contain a user name or password."

# Names of cloud metadata services (and the like) that are refused however they resolve, and whatever
# EGRESS_ALLOWED_HOSTS says.
METADATA_NAMES = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog", "metadata.azure.internal",
    "instance-data", "instance-data.ec2.internal", "metadata.tencentyun.com", "metadata.platformequinix.com",
    "kubernetes.default", "kubernetes.default.svc",
})
# Name suffixes that only mean something inside a network (refused unless allowlisted).
LOCAL_SUFFIXES = (".internal", ".local", ".localhost", ".localdomain", ".home.arpa", ".lan", ".intranet",
                  ".corp", ".svc", ".cluster.local")
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "broadcasthost"})

# Ranges beyond Python's own flags (and a few of them repeated for older CPython patch releases).
_BLOCKED_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8",  # "this network"
    "100.64.0.0/10",  # shared address space (carrier-grade NAT): can reach internal workloads
    "192.0.0.0/24",  # IETF protocol assignments
    "192.88.99.0/24",  # 6to4 relay anycast
    "198.18.0.0/15",  # benchmarking
    "::/96",  # IPv4-compatible IPv6 (deprecated; embeds an IPv4 address)
    "64:ff9b::/96", "64:ff9b:1::/48",  # NAT64: embeds an IPv4 address
    "2002::/16",  # 6to4: embeds an IPv4 address
    "2001::/32",  # Teredo: embeds an IPv4 address
    "2001:db8::/32",  # documentation
    "2001:20::/28",  # ORCHIDv2
    "3fff::/20",  # documentation
    "5f00::/16",  # segment routing
    "100::/64",  # discard-only
    "fec0::/10",  # site-local (deprecated)
))
_SHARED = ipaddress.ip_network("100.64.0.0/10")


class EgressRefused(requests.RequestException):
    """The URL, or an address its host resolves to, may not be contacted. ``message`` is safe to show."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class RedirectRefused(EgressRefused):
    """The endpoint answered with a redirect, which is never followed."""

    def __init__(self, status: int):
        self.status = status
        super().__init__(f"The endpoint answered with a redirect (HTTP {status}), which is never followed: "
                         "check the endpoint address.")


class ConnectFailed(EgressRefused):
    """The host name did not resolve at request time (the one network failure this module raises itself)."""

    def __init__(self):
        super().__init__("Could not connect to the endpoint.")


def address_class(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be contacted ("loopback", "private", ...), or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return "ipv4-mapped"
        if ip.sixtofour is not None or ip.teredo is not None:
            return "ipv4-embedding"
        if ip.scope_id:
            return "scoped"
        if ip.is_site_local:
            return "site-local"
    for reason in ("loopback", "unspecified", "link_local", "multicast", "reserved"):
        if getattr(ip, f"is_{reason}"):
            return reason.replace("_", "-")
    if ip.version == 4 and ip in _SHARED:
        return "shared"
    if ip.is_private:  # RFC 1918, unique-local fc00::/7, and the other special-purpose ranges
        return "private"
    if any(ip.version == net.version and ip in net for net in _BLOCKED_NETWORKS):
        return "special-purpose"
    if not ip.is_global:
        return "not-global"
    return None


# What an allowlisted host may resolve to; everything else stays refused even for it.
ALLOWLISTABLE = frozenset({"private", "shared"})


def _allowlisted(host: str, ip: IPAddress | None = None) -> bool:
    for entry in getattr(settings, "EGRESS_ALLOWED_HOSTS", ()) or ():
        entry = str(entry).strip().lower().rstrip(".")
        if not entry:
            continue
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            if entry == host:
                return True
            continue
        if ip is not None and ip.version == network.version and ip in network:
            return True
    return False


def _sandbox() -> tuple[str, str, int] | None:
    """(scheme, host, port) of the bundled sandbox when it may be contacted (demo mode and tests only)."""
    if not getattr(settings, "EGRESS_ALLOW_SANDBOX", False):
        return None
    parts = urlsplit(str(getattr(settings, "FAKE_PLATFORMS_URL", "") or ""))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return parts.scheme, parts.hostname.lower().rstrip("."), port


def _split(url: str) -> tuple[str, str, int]:
    """Scheme, normalised host name and port of ``url``; EgressRefused for anything malformed or not https."""
    try:
        parts = urlsplit(str(url or "").strip())
        port = parts.port
    except ValueError:
        raise EgressRefused(INVALID) from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in ("https", "http") or not host:
        raise EgressRefused(HTTPS_ONLY if scheme and scheme != "https" else INVALID)
    if parts.username is not None or parts.password is not None:
        raise EgressRefused(NO_USERINFO)
    try:
        host = host.encode("idna").decode("ascii").lower() if not _is_ip_literal(host) else host.lower()
    except UnicodeError:
        raise EgressRefused(INVALID) from None
    port = port or (443 if scheme == "https" else 80)
    sandbox = _sandbox()
    if scheme != "https" and (scheme, host, port) != sandbox:
        raise EgressRefused(HTTPS_ONLY)
    return scheme, host, port


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _refuse_name(host: str) -> None:
    if host in METADATA_NAMES:
        raise EgressRefused(NOT_PUBLIC)
    if _is_ip_literal(host) or _allowlisted(host):
        return
    if host in LOCAL_NAMES or host.endswith(LOCAL_SUFFIXES) or "." not in host:
        raise EgressRefused(NOT_PUBLIC)


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, family=allowed_gai_family(), type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):  # socket.gaierror is an OSError
        raise ConnectFailed() from None
    addresses: list[IPAddress] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(sockaddr[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise ConnectFailed()
    return addresses


def checked_address(scheme: str, host: str, port: int) -> IPAddress:
    """Resolve ``host`` and return the address to connect to, if EVERY address it resolves to is allowed.

    EgressRefused (NOT_PUBLIC) otherwise; ConnectFailed when the name does not resolve.
    """
    if (scheme, host, port) == _sandbox():
        addresses = _resolve(host, port)
        if all(ip.is_loopback for ip in addresses):
            return addresses[0]
        raise EgressRefused(NOT_PUBLIC)
    _refuse_name(host)
    addresses = _resolve(host, port)
    for ip in addresses:
        reason = address_class(ip)
        if reason is None:
            continue
        if reason in ALLOWLISTABLE and _allowlisted(host, ip):
            continue
        raise EgressRefused(NOT_PUBLIC)
    return addresses[0]


def check_url(url: str) -> str:
    """Validate a user-supplied endpoint URL now (forms call this on save); return it stripped.

    Raises EgressRefused with a message safe to show in the form. A name that does not resolve gets the
    same message as one that resolves to a private network.
    """
    url = str(url or "").strip()
    scheme, host, port = _split(url)
    try:
        checked_address(scheme, host, port)
    except ConnectFailed:
        raise EgressRefused(NOT_PUBLIC) from None
    return url


def status_line(status: int) -> str:
    """``HTTP 502 Bad Gateway`` from the status code alone (the server's own reason phrase is not shown)."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP {status} {phrase}".strip()


class GuardedAdapter(HTTPAdapter):
    """Resolves and checks the host for every connection, then connects to the checked address."""

    def __init__(self):
        super().__init__(max_retries=0)  # one attempt: the sync engine owns retries

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        scheme, host, port = _split(request.url)
        ip = checked_address(scheme, host, port)
        # The Host header names the host, not the address (copy: the headers object may be shared).
        headers = CaseInsensitiveDict(request.headers or {})
        named = f"[{host}]" if ":" in host else host
        headers["Host"] = named if urlsplit(request.url).port is None else f"{named}:{port}"
        request.headers = headers
        if scheme == "https":
            # Certificate checked against the name, and the name sent as SNI, while connecting to the IP.
            pool_kwargs["assert_hostname"] = host
            pool_kwargs["server_hostname"] = host
        host_params["host"] = str(ip)
        host_params["port"] = port
        return host_params, pool_kwargs

    def get_connection(self, url, proxies=None):  # the pre-2.32 path would skip the check
        raise NotImplementedError("GuardedAdapter needs requests >= 2.32 (get_connection_with_tls_context).")


class GuardedSession(requests.Session):
    """A ``requests.Session`` that only reaches allowed addresses and never follows a redirect."""

    def __init__(self):
        super().__init__()
        self.trust_env = False  # no proxies or .netrc from the environment
        self.max_redirects = 0
        adapter = GuardedAdapter()
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def send(self, request, **kwargs):
        _split(request.url)  # scheme and name rules before anything else (also under a mocked transport)
        kwargs["allow_redirects"] = False
        kwargs["proxies"] = {}
        stream = kwargs.pop("stream", False)
        response = super().send(request, stream=True, **kwargs)
        if 300 <= response.status_code < 400:
            status = response.status_code
            response.close()  # the body is never read
            raise RedirectRefused(status)
        if not stream:
            response.content  # noqa: B018 — load the body, as requests does when not streaming
        return response

    def get_redirect_target(self, resp):
        # None: requests then neither follows nor prepares the next hop (which would read the body).
        return None

    def rebuild_proxies(self, prepared_request, proxies):
        return {}


def session(headers: Mapping[str, str] | None = None) -> requests.Session:
    """A guarded session (see the module docstring) with our User-Agent and the given default headers."""
    from platforms.adapters.http import USER_AGENT

    guarded = GuardedSession()
    guarded.headers["User-Agent"] = USER_AGENT
    guarded.headers.update(dict(headers or {}))
    return guarded
