"""The URLs of webhook nodes and channels, checked when saved: every spelling of an internal
address is refused like the address itself; private networks only when listed."""

import ipaddress

import pytest

from engine.channels import ChannelError, check_outbound_url
from engine.language.nodes.webhook import url_problem

pytestmark = pytest.mark.security

LOOPBACK_SPELLINGS = [
    "https://%31%32%37.0.0.1:8443/",  # percent-encoded digits
    "https://%6c%6f%63%61%6c%68%6f%73%74:8443/x",  # percent-encoded "localhost"
    "https://2130706433/",  # decimal
    "https://0x7f000001/",  # hex
    "https://0x7F.0x0.0x0.0x1/",  # hex per part
    "https://0177.0.0.1/",  # octal
    "https://127.1/",  # short
    "https://127.0.1/",
    "https://[::ffff:127.0.0.1]/",  # IPv4-mapped
    "https://[::ffff:7f00:1]/",
    "https://[::127.0.0.1]/",  # IPv4-compatible
    "https://127\u30020\u30020\u30021/",  # ideographic full stops
    "https://127\uff0e0\uff0e0\uff0e1/",  # fullwidth full stops
    "https://\uff11\uff12\uff17.0.0.1/",  # fullwidth digits
    "https://\u2460\u2461\u2466.0.0.1/",  # circled digits
    "https://127.0.0.1./",  # trailing dot
    "https://LOCALHOST./",
    "https://[::1]/",
    "https://[0:0:0:0:0:0:0:1]/",
]


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS)
def test_every_spelling_of_loopback_is_refused_when_a_webhook_is_saved(url):
    problem = url_problem(url, frozenset())
    assert problem is not None and "loopback" in problem


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("https://0/", "not an address a call can go to"),
        ("https://0.0.0.0/", "not an address a call can go to"),
        ("https://0x0a000001/", "a private address"),
        ("https://012.0.0.1/", "a private address"),
        ("https://[::ffff:10.0.0.1]/", "a private address"),
        ("https://%31%30.0.0.1/", "a private address"),
        ("https://2852039166/", "a cloud metadata address"),  # 169.254.169.254
        ("https://[::ffff:169.254.169.254]/", "a cloud metadata address"),
        ("https://[fd00:ec2::254]/", "a cloud metadata address"),
        ("https://metadata.google.internal/", "a cloud metadata address"),
        ("https://169.254.1.1/", "a link-local address"),
        ("https://[fe80::1]/", "a link-local address"),
        ("https://[64:ff9b::a9fe:a9fe]/", "a cloud metadata address"),  # NAT64
        ("https://vm/", "a local name"),
        ("https://printer.local/", "a local name"),
    ],
)
def test_every_spelling_of_an_internal_address_is_refused_when_saved(url, fragment):
    assert fragment in (url_problem(url, frozenset()) or "")
    with pytest.raises(ChannelError) as refused:
        check_outbound_url(url.replace("https:", "http:"))
    assert refused.value.field == "outbound_url" and fragment in str(refused.value)


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS)
def test_every_spelling_of_loopback_is_refused_as_a_channel_url(url):
    with pytest.raises(ChannelError, match="loopback"):
        check_outbound_url(url)


def test_public_hosts_pass_and_private_networks_only_when_listed():
    ten = (ipaddress.ip_network("10.0.0.0/8"),)
    assert check_outbound_url("https://crm.example.com/actions") is None
    assert check_outbound_url("http://8.8.8.8/x") is None
    assert check_outbound_url("http://[::ffff:8.8.8.8]/x") is None
    assert check_outbound_url("http://10.1.2.3/a", ten) is None
    assert check_outbound_url("http://crm.internal/a", ten) is None
    assert url_problem("https://0x0a010203/x", frozenset(), ten) is None
    with pytest.raises(ChannelError, match="private"):
        check_outbound_url("http://192.168.1.5/a", ten)


@pytest.mark.parametrize(
    "networks",
    ["0.0.0.0/0", "169.254.0.0/16", "127.0.0.0/8,169.254.169.254/32", "::/0"],
)
def test_link_local_and_metadata_are_refused_whatever_is_listed(networks):
    listed = tuple(ipaddress.ip_network(n) for n in networks.split(","))
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://metadata.google.internal/",
        "http://0.0.0.0/",
    ):
        with pytest.raises(ChannelError):
            check_outbound_url(url, listed)


def test_loopback_is_reached_only_through_a_listed_loopback_network():
    everything = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
    with pytest.raises(ChannelError, match="loopback"):
        check_outbound_url("http://127.0.0.1:8000/a", everything)
    loopback = (ipaddress.ip_network("127.0.0.1/32"),)
    assert check_outbound_url("http://127.0.0.1:8000/a", loopback) is None
    assert check_outbound_url("http://2130706433:8000/a", loopback) is None
    with pytest.raises(ChannelError, match="loopback"):
        check_outbound_url("http://127.0.0.2:8000/a", loopback)
