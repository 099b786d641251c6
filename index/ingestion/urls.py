"""URLs as the library compares them: one spelling per page, and a guard against fetching private addresses."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

# Query parameters that only say where a click came from; the same article without them.
TRACKING_PARAMETERS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "ref",
        "ref_src",
        "ref_url",
        "referrer",
        "cmpid",
        "s_cid",
        "ncid",
        "ocid",
        "smid",
        "spm",
        "share",
        "si",
        "at_medium",
        "at_campaign",
        "itm_source",
        "itm_medium",
        "itm_campaign",
        "guccounter",
        "cmp",
        "sr_share",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "oly_", "vero_", "__hs", "_hs")
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_CHARS = 2048
# As in browsers (WHATWG URL): a host whose last label is a number is an IPv4 address or invalid.
_NUMERIC_LAST_LABEL = re.compile(r"(?:^|\.)(?:0x[0-9a-f]*|[0-9]+)\.?$", re.I)
_LEGACY_IPV4 = re.compile(r"^(?:0x[0-9a-f]+|[0-9]+)(?:\.(?:0x[0-9a-f]+|[0-9]+)){0,3}$", re.I)

Resolver = Callable[[str, int], list[str]]


class UrlRefused(ValueError):
    """A URL the bot will not fetch; the message says why."""


@dataclass(frozen=True)
class CheckedTarget:
    """A URL cleared for fetching, with the address to connect to (the one that was checked)."""

    url: str
    scheme: str
    host: str
    port: int
    address: str
    path: str


def normalize_url(url: str) -> str:
    """One spelling per page: lower-case scheme and host, no default port, fragment or tracking parameters."""
    raw = url.strip()
    if not raw:
        raise UrlRefused("the URL is empty")
    if len(raw) > MAX_URL_CHARS:
        raise UrlRefused(f"the URL is {len(raw):,} characters long; the limit is {MAX_URL_CHARS:,}")
    if any(ord(ch) < 0x20 or ch in " \x7f" for ch in raw):
        raise UrlRefused("the URL contains spaces or control characters")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"the URL cannot be read ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        shown = scheme or "no scheme"
        raise UrlRefused(f"only http and https pages can be added, not {shown!r}")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("URLs with a user name or password are not fetched")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRefused("the URL has no host name")
    try:
        host = host.encode("idna").decode("ascii").lower() if not host.startswith("[") and ":" not in host else host.lower()
    except UnicodeError:
        raise UrlRefused(f"the host name {host!r} is not valid") from None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in TRACKING_PARAMETERS and not k.lower().startswith(TRACKING_PREFIXES)
    ]
    # Non-ASCII in the path (café, 政策) is percent-encoded: HTTP needs ASCII, and one spelling per page.
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=~")
    return urlunsplit((scheme, netloc, path, urlencode(sorted(query)), ""))


def same_page(first: str, second: str) -> bool:
    """True when two URLs name the same page (http and https, a trailing slash and `www.` aside)."""

    def key(url: str) -> str:
        try:
            normal = normalize_url(url)
        except UrlRefused:
            return url.strip()
        parts = urlsplit(normal)
        host = parts.netloc.removeprefix("www.")
        return urlunsplit(("https", host, parts.path.rstrip("/") or "/", parts.query, ""))

    return bool(first.strip()) and bool(second.strip()) and key(first) == key(second)


def literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host string denotes without DNS: IPv6, dotted IPv4, or decimal/octal/hex IPv4 forms."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if _LEGACY_IPV4.match(bare) or _NUMERIC_LAST_LABEL.search(bare):
        try:
            # inet_aton reads what browsers and curl read: 2130706433, 0x7f000001, 0177.0.0.1, 127.1.
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            raise UrlRefused(f"{host!r} is not a valid address") from None
    return None


def address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_loopback: bool = False) -> str | None:
    """Why the bot must not connect to this address, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            problem = address_problem(embedded, allow_loopback)
            return f"{problem} (inside the IPv6 address {address})" if problem else None
    if address.is_loopback:
        return None if allow_loopback else f"{address} is a loopback address (this machine)"
    if address.is_unspecified:
        return f"{address} is the unspecified address"
    if address.is_link_local:
        return f"{address} is a link-local address (such as a cloud metadata service)"
    if address.is_multicast:
        return f"{address} is a multicast address"
    if address.is_reserved:
        return f"{address} is a reserved address"
    if address.is_private:
        return f"{address} is a private network address"
    if not address.is_global:
        return f"{address} is not a public internet address"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UrlRefused(f"the host {host!r} cannot be found ({exc.strerror})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_loopback_name(host: str) -> bool:
    """`localhost` and names under it always mean this machine (RFC 6761), whatever DNS says."""
    return host == "localhost" or host.endswith(".localhost")


def check_url(url: str, resolver: Resolver = system_resolver, allow_loopback: bool = False) -> CheckedTarget:
    """Clear a URL for fetching: http(s) only, and every address of its host public (loopback only if allowed).

    The fetcher connects to the returned address, so DNS cannot answer differently between
    this check and the connection.
    """
    normal = normalize_url(url)
    parts = urlsplit(normal)
    host = parts.hostname or ""
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    literal = literal_address(host)
    if literal is not None:
        addresses = [literal]
    elif is_loopback_name(host):
        addresses = [ipaddress.ip_address("127.0.0.1")]
    else:
        if not re.fullmatch(r"[a-z0-9_.-]+", host) or len(host) > 253:
            raise UrlRefused(f"the host name {host!r} is not valid")
        addresses = []
        for found in resolver(host, port):
            try:
                addresses.append(ipaddress.ip_address(found.split("%")[0]))
            except ValueError:
                raise UrlRefused(f"the host {host!r} resolved to something that is not an address ({found!r})") from None
        if not addresses:
            raise UrlRefused(f"the host {host!r} has no address")
    for address in addresses:
        problem = address_problem(address, allow_loopback)
        if problem:
            raise UrlRefused(f"{host} is not fetched: {problem}")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return CheckedTarget(normal, parts.scheme, host, port, str(addresses[0]), path)
