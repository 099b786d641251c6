"""URL normalisation and the SSRF guard: every hostile URL is refused with a reason, without a packet sent.

check_url never connects; names are resolved by a stand-in resolver, so no DNS server is asked
about anything, even if the guard were broken.
"""

from __future__ import annotations

import pytest

from index.ingestion.urls import UrlRefused, check_url, normalize_url, same_page

FAKE_DNS = {
    "news.example": ["93.184.216.34"],
    "internal.example": ["10.1.2.3"],
    "metadata.example": ["169.254.169.254"],
    "mixed.example": ["93.184.216.34", "127.0.0.1"],
    "rebind.example": ["::ffff:192.168.0.1"],
    "v6.example": ["2606:4700::6810:84e5"],
    "carrier.example": ["100.64.12.1"],
}


def fake_resolver(host: str, port: int) -> list[str]:
    """Answers from FAKE_DNS; an unknown name is 'not found', as DNS would say."""
    if host not in FAKE_DNS:
        raise UrlRefused(f"the host {host!r} cannot be found (stand-in resolver)")
    return FAKE_DNS[host]


HOSTILE = [
    # loopback, in every spelling browsers and curl accept
    ("http://127.0.0.1/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://2130706433/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://0x7f.0.0.1/", "loopback"),
    ("http://127.0.0.1.:8080/admin", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[::ffff:7f00:1]/", "loopback"),
    ("http://localhost/", "loopback"),
    ("http://LOCALHOST:8000/", "loopback"),
    ("http://api.localhost/", "loopback"),
    ("http://[2002:7f00:1::]/", "loopback"),
    # unspecified, private, link-local, multicast, reserved, shared
    ("http://0.0.0.0/", "unspecified"),
    ("http://0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://3232235777/", "private"),
    ("http://[fc00::1]/", "private"),
    ("http://[::ffff:10.0.0.1]/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://100.64.0.1/", "not a public"),
    # names whose addresses are not public
    ("http://internal.example/", "private"),
    ("https://metadata.example/latest", "link-local"),
    ("http://mixed.example/", "loopback"),
    ("http://rebind.example/", "private"),
    ("http://carrier.example/", "not a public"),
    ("http://unknown.example/", "cannot be found"),
    # not web pages, or not URLs at all
    ("file:///etc/passwd", "only http and https"),
    ("ftp://example.org/file", "only http and https"),
    ("gopher://127.0.0.1:25/", "only http and https"),
    ("javascript:alert(1)", "only http and https"),
    ("data:text/html,<script>alert(1)</script>", "only http and https"),
    ("//news.example/article", "only http and https"),
    ("http://user:secret@news.example/", "user name or password"),
    ("http:///no-host", "no host name"),
    ("", "empty"),
    ("http://news.example/a b", "spaces or control characters"),
    ("http://news.example:99999/", "cannot be read"),
    ("http://" + "a" * 3000 + ".example/", "characters long"),
    ("http://1.2.3.4.5/", "not a valid address"),
    ("http://example.0x10/", "not a valid address"),
]


@pytest.mark.parametrize("url, reason", HOSTILE)
def test_hostile_urls_are_refused_with_a_reason(url, reason):
    with pytest.raises(UrlRefused, match=reason):
        check_url(url, fake_resolver)


def test_there_are_at_least_25_hostile_urls():
    assert len(HOSTILE) >= 25


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/page", "http://localhost/", "http://[::1]:9000/", "http://2130706433/"])
def test_loopback_is_refused_by_default_and_allowed_only_on_purpose(url):
    with pytest.raises(UrlRefused, match="loopback"):
        check_url(url, fake_resolver)
    target = check_url(url, fake_resolver, allow_loopback=True)
    assert target.address in ("127.0.0.1", "::1")


def test_allowing_loopback_still_refuses_private_and_metadata_addresses():
    for url in ("http://10.0.0.1/", "http://169.254.169.254/", "http://internal.example/"):
        with pytest.raises(UrlRefused):
            check_url(url, fake_resolver, allow_loopback=True)


def test_public_hosts_are_cleared_with_the_address_to_connect_to():
    target = check_url("https://News.Example/world/article?id=5&utm_source=x#comments", fake_resolver)
    assert (target.scheme, target.host, target.port, target.address) == ("https", "news.example", 443, "93.184.216.34")
    assert target.path == "/world/article?id=5"
    assert check_url("http://v6.example:8080/", fake_resolver).address == "2606:4700::6810:84e5"
    assert check_url("http://93.184.216.34/", fake_resolver).address == "93.184.216.34"


@pytest.mark.parametrize(
    "url, expected",
    [
        ("HTTPS://Example.ORG/Path?b=2&a=1#frag", "https://example.org/Path?a=1&b=2"),
        ("https://example.org:443/x", "https://example.org/x"),
        ("http://example.org:80", "http://example.org/"),
        ("https://example.org/x?utm_source=tw&utm_medium=social&fbclid=abc&id=7", "https://example.org/x?id=7"),
        ("https://example.org/x?gclid=1&mc_cid=2&ref=home", "https://example.org/x"),
        ("https://bücher.example/seite", "https://xn--bcher-kva.example/seite"),
        ("https://example.org.:8443/x", "https://example.org:8443/x"),
    ],
)
def test_urls_are_normalised(url, expected):
    assert normalize_url(url) == expected


def test_same_page_ignores_scheme_www_slash_and_tracking():
    assert same_page("http://www.example.org/a/?utm_source=x", "https://example.org/a")
    assert not same_page("https://example.org/a", "https://example.org/b")
    assert not same_page("", "")
