"""Outbound addresses: every spelling of a host read as the socket layer reads it, and
DNS answers checked before a call."""

import ipaddress
import socket

import pytest

from engine import outbound

pytestmark = pytest.mark.security


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://%31%32%37.0.0.1:8443/", "127.0.0.1"),
        ("https://%6c%6f%63%61%6c%68%6f%73%74/", "localhost"),
        ("https://2130706433/", "127.0.0.1"),
        ("https://0x7f000001/", "127.0.0.1"),
        ("https://0177.0.0.1/", "127.0.0.1"),
        ("https://0x7f.1/", "127.0.0.1"),
        ("https://127.1/", "127.0.0.1"),
        ("https://10.1/", "10.0.0.1"),
        ("https://0/", "0.0.0.0"),
        ("https://0x/", "0.0.0.0"),
        ("https://167772161/", "10.0.0.1"),
        ("https://127\u30020\u30020\u30021/", "127.0.0.1"),
        ("https://\u2460\u2461\u2466.0.0.1/", "127.0.0.1"),
        ("https://Hooks.Example.COM./x", "hooks.example.com"),
        ("https://b\u00fccher.example/", "xn--bcher-kva.example"),
        ("https://[::ffff:127.0.0.1]/", "::ffff:7f00:1"),
    ],
)
def test_a_host_is_read_as_the_address_it_spells(url, host):
    assert outbound.read_url(url).host == host


@pytest.mark.parametrize(
    "url",
    [
        "https://1.2.3.4.5/",  # ends in a number: an address or nothing
        "https://foo.123/",
        "https://08.0.0.1/",  # 8 is no octal digit
        "https://256.256.256.256/",
        "https://127.0.0.0x100/",
        "https://4294967296/",
        "https://evil.example%40127.0.0.1/",  # an "@" hidden in the host
        "https://exa%00mple.com/",
        "https://a..b/",
        "https://[fe80::1%25eth0]/",  # a zone names an interface
        "https://[::1/",
        "https://example.com:99999/",
        "not a url",
    ],
)
def test_a_host_that_is_no_host_is_refused(url):
    with pytest.raises(outbound.AddressError):
        outbound.read_url(url)


def _resolver(*answers):
    def resolve(host, port, *args, **kwargs):
        found = answers[0] if len(answers) == 1 else answers[resolve.calls]
        resolve.calls += 1
        if isinstance(found, Exception):
            raise found
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in found]

    resolve.calls = 0
    return resolve


def test_an_unresolvable_host_is_refused_never_allowed():
    target = outbound.read_url("https://nowhere.example/x")
    for failure in (
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        [],
    ):
        with pytest.raises(outbound.Unresolvable):
            outbound.resolve(target, outbound.Policy(), _resolver(failure))


def test_one_internal_answer_among_public_ones_refuses_the_host():
    target = outbound.read_url("https://hooks.example.com/x")
    resolver = _resolver(["93.184.215.14", "10.1.2.3"])
    with pytest.raises(outbound.AddressError, match="10.1.2.3"):
        outbound.resolve(target, outbound.Policy(), resolver)
    assert outbound.resolve(
        target, outbound.Policy(), _resolver(["93.184.215.14"])
    ) == ipaddress.ip_address("93.184.215.14")


def test_a_kept_dns_answer_is_checked_again_on_every_call():
    resolver = _resolver(["10.1.2.3"])
    client = outbound.Client(outbound.Timeout(1.0, 1.0), resolver)
    listed = outbound.Policy((ipaddress.ip_network("10.0.0.0/8"),))
    try:
        _, address = client.check("https://crm.example/a", listed)
        assert str(address) == "10.1.2.3"
        with pytest.raises(outbound.AddressError, match="private"):
            client.check("https://crm.example/b", outbound.Policy())
    finally:
        client.close()
    assert resolver.calls == 1
