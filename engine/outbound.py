"""Outbound addresses: one reading of a URL's host, shared by the checks made when a URL is
saved and when it is called, and an HTTP client that connects to the very address it checked.

A host is read the way the socket layer would read it: percent-decoded, IDNA-mapped (so
fullwidth dots and digits become ASCII), lower case, without its trailing dot, and every
IPv4 spelling (127.1, 2130706433, 0x7f000001, 0177.0.0.1, 0) turned into the address it
means. The client resolves a name once, checks every address it got, and connects to the
first; the Host header, TLS SNI and certificate check keep the name, so a second DNS answer
(rebinding) can never change where a call goes.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import select
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_to_bytes, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

COULD_NOT_CONNECT = "could not connect"
ANSWER_SECONDS = (
    30.0  # how long a worker keeps a DNS answer (checked again on every call)
)
DEFAULT_PORTS = {"http": 80, "https": 443}
# Names that only ever mean this machine.
LOOPBACK_NAMES = frozenset(
    {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
)
# Names that only resolve inside a private network (a name without a dot is one too).
LOCAL_SUFFIXES = (".local", ".internal", ".localdomain", ".home.arpa", ".lan")
# Cloud metadata services: a call there hands out the machine's credentials.
METADATA_NAMES = frozenset(
    {"metadata", "metadata.google.internal", "instance-data", "metadata.azure.internal"}
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wire server
        "192.0.0.192",  # Oracle Cloud, classic
    )
)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # connecting to 0.x reaches this host
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_DECIMAL, _OCTAL, _HEX = (
    re.compile(p) for p in (r"[0-9]+", r"0[0-7]*", r"0x[0-9a-f]*")
)
# What may stay as it is in a request target; anything else is percent-encoded.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


class AddressError(ValueError):
    """A URL whose host cannot be read, or may not be called; the message says why."""


class Unresolvable(AddressError):
    """A host name that DNS gives no address for: refused, the call is not made."""


@dataclass(frozen=True)
class Policy:
    """Which addresses that are not public a call may still reach.

    `networks` (THROUGHLINE_OUTBOUND_ALLOWED_NETWORKS) opens private ranges, and loopback
    only through an entry inside 127.0.0.0/8 or ::1; `hosts` (webhook nodes'
    THROUGHLINE_WEBHOOK_ALLOWED_HOSTS, for development) opens any private or loopback
    address of those names. Link-local and metadata addresses are never reachable.
    """

    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Target:
    """A URL read once: what is resolved, what is connected to and what is sent."""

    scheme: str
    host: str  # ASCII, lower case, no trailing dot; an IP address in its usual spelling
    port: int
    path: str  # the request target: path and query
    address: IPAddress | None  # when the host is an IP address
    userinfo: bool

    @property
    def host_header(self) -> str:
        host = (
            f"[{self.host}]"
            if isinstance(self.address, ipaddress.IPv6Address)
            else self.host
        )
        return (
            host
            if self.port == DEFAULT_PORTS.get(self.scheme)
            else f"{host}:{self.port}"
        )


def read_url(url: str) -> Target:
    """Read `url` as the HTTP client will call it; AddressError when it has no usable host."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        raise AddressError(
            "that is not a full URL such as https://example.com/hook"
        ) from None
    scheme = parts.scheme.lower()
    hostport = parts.netloc.rpartition("@")[2]
    if hostport.startswith("["):
        raw_host, _, rest = hostport[1:].partition("]")
        address: IPAddress | None = _ipv6(raw_host)
        host = str(address)
        if rest and not rest.startswith(":"):
            raise AddressError(f"“{parts.netloc}” is not a host and port")
        raw_port = rest[1:]
    else:
        raw_host, _, raw_port = hostport.partition(":")
        if not raw_host:
            raise AddressError(
                "that is not a full URL such as https://example.com/hook"
            )
        host = normalise_host(raw_host)
        address = ipv4_of(host)
        host = str(address) if address is not None else host
    if raw_port:
        if (
            not raw_port.isascii()
            or not raw_port.isdigit()
            or not 0 < int(raw_port) < 65536
        ):
            raise AddressError(f"“{raw_port}” is not a port number")
        port = int(raw_port)
    else:
        port = DEFAULT_PORTS.get(scheme, 0)
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_QUERY_SAFE)
    return Target(scheme, host, port, path, address, "@" in parts.netloc)


def normalise_host(raw: str) -> str:
    """A host as DNS and the socket layer see it; AddressError when it is not a valid one."""
    try:
        text = unquote_to_bytes(raw).decode("utf-8")
        ascii_host = text.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise AddressError(f"“{raw}” is not a valid host name") from None
    if ascii_host.endswith("."):  # "localhost." is localhost
        ascii_host = ascii_host[:-1]
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise AddressError(f"“{raw}” is not a valid host name")
    return ascii_host


def _ends_in_number(label: str) -> bool:
    return bool(_DECIMAL.fullmatch(label) or _HEX.fullmatch(label))


def ipv4_of(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a normalised host spells in any form inet_aton reads, or None.

    A host whose last label is a number is an address or nothing (as in the URL standard):
    "127.1", "2130706433", "0x7f.1" and "0177.0.0.1" are all 127.0.0.1.
    """
    labels = host.split(".")
    if not _ends_in_number(labels[-1]):
        return None
    if len(labels) > 4:
        raise AddressError(f"“{host}” is not an IP address")
    numbers = [_ipv4_number(label, host) for label in labels]
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise AddressError(f"“{host}” is not an IP address")
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _ipv4_number(label: str, host: str) -> int:
    if _HEX.fullmatch(label):
        return int(label[2:] or "0", 16)
    if label.startswith("0") and len(label) > 1:  # octal, as inet_aton reads it
        if _OCTAL.fullmatch(label):
            return int(label, 8)
    elif _DECIMAL.fullmatch(label):
        return int(label)
    raise AddressError(f"“{host}” is not an IP address")


def _ipv6(text: str) -> ipaddress.IPv6Address:
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise AddressError(f"[{text}] is not an IPv6 address") from None
    if address.scope_id:
        raise AddressError(f"[{text}] names a network interface; give a plain address")
    return address


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    value = int(address)
    if value >> 32 == 0 and value > 1:  # ::a.b.c.d, the old IPv4-compatible form
        return ipaddress.IPv4Address(value)
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return address.teredo[1] if address.teredo is not None else None


def address_problem(address: IPAddress, policy: Policy, host: str = "") -> str | None:
    """Why a call may not go to `address` (reached through `host`), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None and (problem := address_problem(inner, policy, host)):
            return problem
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_loopback:
        if host in policy.hosts or any(
            address in n and any(_inside(n, loop) for loop in _LOOPBACK)
            for n in policy.networks
        ):
            return None
        return "a loopback address"
    if (
        address.is_unspecified
        or address.is_multicast
        or (
            isinstance(address, ipaddress.IPv4Address)
            and (address in _THIS_NETWORK or address.is_reserved)
        )
    ):
        return "not an address a call can go to"
    if (
        isinstance(address, ipaddress.IPv6Address)
        and embedded_ipv4(address) is not None
    ):
        return None  # the IPv4 address it carries was checked above
    if address.is_global or host in policy.hosts:
        return None
    if any(address in network for network in policy.networks):
        return None
    return "a private address"


def _inside(network: Network, outer: Network) -> bool:
    return network.version == outer.version and network.subnet_of(outer)  # type: ignore[arg-type]


def host_problem(target: Target, policy: Policy) -> str | None:
    """Why `target`'s host may not be called, judged without DNS (when a URL is saved)."""
    host = target.host
    if target.address is not None:
        problem = address_problem(target.address, policy, host)
        return f"{host} is {problem}" if problem else None
    if host in METADATA_NAMES:
        return f"{host} is a cloud metadata address"
    if host in policy.hosts:
        return None
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        problem = address_problem(ipaddress.IPv4Address("127.0.0.1"), policy, host)
        return f"{host} is {problem}" if problem else None
    if ("." not in host or host.endswith(LOCAL_SUFFIXES)) and not policy.networks:
        return f"{host} is a local name"
    return None


def resolve(
    target: Target, policy: Policy, resolver: Resolver | None = None
) -> IPAddress:
    """The address to connect to: checked, as every other address the host resolves to.

    Raises Unresolvable when DNS has no answer, AddressError when an address is refused.
    """
    problem = host_problem(target, policy)
    if problem:
        raise AddressError(problem)
    if target.address is not None:
        return target.address
    try:
        infos = (resolver or socket.getaddrinfo)(
            target.host, target.port, type=socket.SOCK_STREAM
        )
        addresses = list(dict.fromkeys(ipaddress.ip_address(i[4][0]) for i in infos))
    except (OSError, UnicodeError, ValueError) as error:
        raise Unresolvable(f"no address for {target.host}: {error}") from None
    if not addresses:
        raise Unresolvable(f"no address for {target.host}")
    for address in addresses:
        # One refused answer refuses them all: the client could have picked it.
        if problem := address_problem(address, policy, target.host):
            raise AddressError(f"{target.host} resolves to {address}, {problem}")
    return addresses[0]


@dataclass(frozen=True)
class Timeout:
    """Seconds a call may take to connect (TLS included), and to wait for each read."""

    connect: float
    read: float


@dataclass(frozen=True)
class Answer:
    """What a call answered: its status, headers and the start of its body."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes


# Of an answer's body only this much is read; a connection whose answer was longer is closed.
ANSWER_BYTES = 64 * 1024
# Connections kept idle per address, and addresses kept (past that, all are closed).
IDLE_PER_ADDRESS = 32
ADDRESSES_KEPT = 100

# Headers that frame the request or steer the connection: the client writes them itself (a
# step's own would break a kept connection, or the request).
CLIENT_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "expect",
    }
)

# scheme, checked address, port, and the name TLS verifies
_Key = tuple[str, str, int, str]


class _Connection(http.client.HTTPConnection):
    """A connection to a checked address, by TLS when `context` is given, for `name`."""

    def __init__(
        self,
        key: _Key,
        timeout: Timeout,
        context: ssl.SSLContext | None,
    ) -> None:
        _scheme, address, port, self.name = key
        super().__init__(address, port, timeout=timeout.connect)
        self.context, self.read_timeout = context, timeout.read

    def connect(self) -> None:
        super().connect()  # TCP within the connect timeout, no delay on small writes
        if self.context is not None:
            # SNI and the certificate's check name the URL's host, never the address.
            self.sock = self.context.wrap_socket(self.sock, server_hostname=self.name)
        self.sock.settimeout(self.read_timeout)

    def dropped(self) -> bool:
        """Whether an idle connection was closed by the other side (or has stray data)."""
        sock = self.sock
        if sock is None:
            return True
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        poll = select.poll()
        poll.register(sock, select.POLLIN)
        return bool(poll.poll(0))


class Client:
    """HTTP calls that go only to checked addresses, over pooled keep-alive connections.

    No retries or redirects of its own: a redirect would take a call past the checks. The
    connections are the standard library's, kept idle per checked address, port, scheme and
    TLS name and shared by the worker's delivery threads (one call at a time each).
    """

    def __init__(
        self,
        timeout: Timeout,
        resolver: Resolver | None = None,
        ca_certs: str | None = None,
    ) -> None:
        self.resolver, self.timeout = resolver, timeout
        self._answers: dict[tuple[str, int], tuple[float, list[tuple[Any, ...]]]] = {}
        self._lock = threading.Lock()
        # Least recently kept first: the oldest address's connections go when one is new.
        self._idle: OrderedDict[_Key, list[_Connection]] = OrderedDict()
        self._tls = ssl.create_default_context(cafile=ca_certs)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, OrderedDict()
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def check(self, url: str, policy: Policy) -> tuple[Target, IPAddress]:
        """Read and resolve `url` once; raise AddressError (or Unresolvable) when refused."""
        target = read_url(url)
        if target.scheme not in DEFAULT_PORTS:
            raise AddressError(f"“{target.scheme}” is not http or https")
        if target.userinfo:
            raise AddressError("credentials belong in headers, not in the URL")
        return target, resolve(target, policy, self._lookup)

    def _lookup(self, host: str, port: int, **options: Any) -> list[tuple[Any, ...]]:
        """The resolver's answer, kept a little: a worker calls the same few hosts many
        times a second. What is kept is only ever connected to after being checked."""
        now = time.monotonic()
        with self._lock:
            kept = self._answers.get((host, port))
        if kept is not None and kept[0] > now:
            return kept[1]
        found = list((self.resolver or socket.getaddrinfo)(host, port, **options))
        if found:
            with self._lock:
                if len(self._answers) >= 1000:
                    self._answers.clear()
                self._answers[(host, port)] = (now + ANSWER_SECONDS, found)
        return found

    def _take(self, key: _Key) -> _Connection:
        """An idle connection to `key` still open, or a new one (not yet connected)."""
        while True:
            with self._lock:
                idle = self._idle.get(key)
                connection = idle.pop() if idle else None
                if idle is not None and not idle:
                    del self._idle[key]
            if connection is None:
                tls = self._tls if key[0] == "https" else None
                return _Connection(key, self.timeout, tls)
            if not connection.dropped():
                return connection
            connection.close()

    def _keep(self, key: _Key, connection: _Connection) -> None:
        dropped: list[_Connection] = []
        with self._lock:
            idle = self._idle.get(key)
            if idle is None:
                if len(self._idle) >= ADDRESSES_KEPT:
                    dropped = self._idle.popitem(last=False)[1]
                idle = self._idle[key] = []
            else:
                self._idle.move_to_end(key)
            if len(idle) < IDLE_PER_ADDRESS:
                idle.append(connection)
            else:
                dropped.append(connection)
        for other in dropped:
            other.close()

    def post(
        self,
        target: Target,
        address: IPAddress,
        body: bytes,
        headers: Mapping[str, str],
    ) -> Answer:
        """POST `body` to `address`, as a request for `target`'s host. Raises OSError
        (refused, reset, timed out, TLS) or http.client.HTTPException (a broken answer)."""
        key = (target.scheme, str(address), target.port, target.host)
        sent = {k: v for k, v in headers.items() if k.lower() not in CLIENT_HEADERS}
        sent["Host"] = target.host_header
        connection = self._take(key)
        try:
            connection.request("POST", target.path, body, sent)
            try:
                response = connection.getresponse()
                expected = response.length
                data = response.read(ANSWER_BYTES)
            except ValueError as error:  # a chunk size that is no number, say
                raise http.client.HTTPException(f"a broken answer: {error}") from None
        except BaseException:
            connection.close()
            raise
        if expected is not None and len(data) < min(expected, ANSWER_BYTES):
            connection.close()
            raise http.client.IncompleteRead(data, expected - len(data))
        if response.isclosed() and not response.will_close and response.status >= 200:
            self._keep(key, connection)
        else:  # the other side closes it, or the rest of a long answer is unread
            connection.close()
        return Answer(response.status, response.headers, data)
