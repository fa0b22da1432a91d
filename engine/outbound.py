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

import functools
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

import httptools

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


# A worker calls the same few URLs many times a second; reading one is pure, so it is kept.
_read_url_kept = functools.lru_cache(maxsize=1024)(read_url)


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


@functools.lru_cache(maxsize=1024)  # pure, and asked on every call to a channel
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
    """Seconds a call may take to connect (TLS included), and then to be answered in full."""

    connect: float
    read: float


@dataclass(frozen=True)
class Answer:
    """What a call answered: its status, headers (names in lower case) and the start of
    its body."""

    status: int
    headers: dict[str, str]
    body: bytes


class BrokenAnswer(Exception):
    """An answer that is not HTTP/1.1, or that stopped before its end."""


class IncompleteAnswer(BrokenAnswer):
    """The channel closed the connection before its answer was complete."""


# Of an answer's body only this much is read; a connection whose answer was longer is closed.
ANSWER_BYTES = 64 * 1024
RECEIVE_BYTES = 64 * 1024  # asked of the socket at a time
# Of an answer, bytes that are not its body (status lines, headers, interim answers, chunk
# sizes) past which it is broken: a channel cannot keep a call reading headers.
FRAMING_BYTES = 64 * 1024
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
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # a header name (RFC 9110)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # not in a header value (tab is)

# scheme, checked address, port, and the name TLS verifies
_Key = tuple[str, str, int, str]


def request_bytes(target: Target, body: bytes, headers: Mapping[str, str]) -> bytes:
    """A POST of `body` to `target` with `headers` (but those in CLIENT_HEADERS), as sent.

    Raises ValueError for a header name that is not a token, or a value with a line break,
    another control character, or a character beyond Latin-1.
    """
    lines = [f"POST {target.path} HTTP/1.1", f"Host: {target.host_header}"]
    for name, value in headers.items():
        if name.lower() in CLIENT_HEADERS:
            continue
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid header name")
        if _CONTROL.search(value):
            raise ValueError(
                f"the header {name} holds a line break or control character"
            )
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    try:
        head = "\r\n".join(lines).encode("latin-1")
    except UnicodeEncodeError:
        name = next(n for n, v in headers.items() if not _latin1(v))
        raise ValueError(
            f"the header {name} holds a character beyond Latin-1"
        ) from None
    return head + b"\r\n\r\n" + body


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


class _Reading:
    """What the parser has read of an answer so far (httptools' callbacks).

    Interim answers (1xx) are passed over; once the final answer is complete, anything more
    the channel sent is only noted: the connection is then not used again. Trailers after
    a chunked body are not headers and are left out.
    """

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status: int | None = None  # the final answer's, once it is complete
        self.keep = False
        self.after = False  # bytes came after the final answer
        self._begin()

    def _begin(self) -> None:
        self.fields: dict[str, list[str]] = {}
        self.body: list[bytes] = []
        self.size = 0
        # A length or chunks; else the body ends when the channel closes.
        self.framed = False
        self.code = 0  # the status, once the head is read

    def on_message_begin(self) -> None:
        if self.status is not None:
            self.after = True
        else:
            self._begin()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.status is not None or self.code:  # after the answer, or a trailer
            return
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        self.fields.setdefault(key, []).append(text)
        if key == "content-length" or (
            key == "transfer-encoding"
            and text.rpartition(",")[2].strip().lower() == "chunked"
        ):
            self.framed = True

    def on_headers_complete(self) -> None:
        if self.status is None:
            self.code = self.parser.get_status_code()

    def on_body(self, data: bytes) -> None:
        if self.status is None:
            room = ANSWER_BYTES - self.size
            if room > 0:
                self.body.append(data[:room])
            self.size += len(data)

    def on_message_complete(self) -> None:
        code = self.parser.get_status_code()
        if self.status is None and code >= 200:
            self.status, self.keep = code, self.parser.should_keep_alive()

    def closed(self) -> None:
        """The channel closed the connection: the end of an answer without a length."""
        if self.status is None:
            if self.framed or self.code < 200:
                raise IncompleteAnswer("the channel closed the connection mid-answer")
            self.status = self.code
        self.keep = False

    def answer(self) -> Answer:
        """The final answer, or the start of one too long to read to its end."""
        headers = {key: ", ".join(values) for key, values in self.fields.items()}
        return Answer(self.status or self.code, headers, b"".join(self.body))


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("no full answer in time")
    return left


def _send(sock: socket.socket, data: bytes, deadline: float) -> None:
    """All of `data` by `deadline` (a TLS socket's sendall waits anew for each part)."""
    view = memoryview(data)
    while view:
        sock.settimeout(_left(deadline))
        view = view[sock.send(view) :]


class _Connection:
    """A connection to a checked address, by TLS when `context` is given, for `name`."""

    def __init__(
        self,
        key: _Key,
        timeout: Timeout,
        context: ssl.SSLContext | None,
    ) -> None:
        self.key, self.timeout, self.context = key, timeout, context
        self.sock: socket.socket | None = None
        self.kept = False

    def open(self) -> socket.socket:
        _scheme, address, port, name = self.key
        sock = socket.create_connection((address, port), self.timeout.connect)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.context is not None:
                # SNI and the certificate's check name the URL's host, never the address.
                sock = self.context.wrap_socket(sock, server_hostname=name)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        return sock

    def exchange(self, request: bytes) -> Answer:
        """Send `request` and read its answer, both within the read timeout; afterwards
        `kept` says whether the connection may carry another call. Raises OSError or
        BrokenAnswer."""
        self.kept = False
        sock = self.sock or self.open()
        deadline = time.monotonic() + self.timeout.read
        _send(sock, request, deadline)
        reading, fed = _Reading(), 0
        while reading.status is None and reading.size <= ANSWER_BYTES:
            sock.settimeout(_left(deadline))
            data = sock.recv(RECEIVE_BYTES)
            if not data:
                reading.closed()
                break
            fed += len(data)
            try:
                reading.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                if reading.status is None:
                    raise BrokenAnswer("the channel switched protocols") from None
                reading.after = True
            except httptools.HttpParserError as error:
                if reading.status is None:
                    raise BrokenAnswer(f"a broken answer: {error}") from None
                reading.after = True
            if reading.status is None and fed - reading.size > FRAMING_BYTES:
                raise BrokenAnswer("the answer's head is too long")
        self.kept = reading.status is not None and reading.keep and not reading.after
        return reading.answer()

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

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class Client:
    """HTTP calls that go only to checked addresses, over pooled keep-alive connections.

    No retries or redirects of its own: a redirect would take a call past the checks.
    Connections are kept idle per checked address, port, scheme and TLS name and shared by
    the worker's delivery threads (one call at a time each); answers are read by httptools
    (llhttp), the request is written here.
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
        target = _read_url_kept(url)
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
        """POST `body` to `address`, as a request for `target`'s host. Raises ValueError (a
        header that cannot be sent), OSError (refused, reset, timed out, TLS) or BrokenAnswer.
        """
        request = request_bytes(target, body, headers)
        key = (target.scheme, str(address), target.port, target.host)
        connection = self._take(key)
        try:
            answer = connection.exchange(request)
        except BaseException:
            connection.close()
            raise
        if connection.kept:
            self._keep(key, connection)
        else:  # the other side closes it, or the rest of a long answer is unread
            connection.close()
        return answer
