"""The outbound HTTP client: it connects to the address it checked, and TLS still names
and verifies the URL's host."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from engine import outbound

pytestmark = pytest.mark.security


def _certificate(tmp_path, name: str) -> tuple[str, ssl.SSLContext]:
    """A CA file, and a server context with a certificate for `name` signed by it."""
    now = datetime.now(UTC)

    def build(subject, issuer, key, signer, ca: bool, san=None):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
        )
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(san)]), False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = build(ca_name, ca_name, ca_key, ca_key, True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    leaf = build(leaf_name, ca_name, key, ca_key, False, san=name)
    ca_file, cert_file, key_file = (
        tmp_path / "ca.pem",
        tmp_path / "cert.pem",
        tmp_path / "key.pem",
    )
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return str(ca_file), context


def test_tls_names_and_verifies_the_host_while_connecting_to_the_pinned_address(
    tmp_path,
):
    ca_file, context = _certificate(tmp_path, "hooks.example")
    seen: dict[str, Any] = {}

    def note_sni(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        seen["sni"] = name

    context.sni_callback = note_sni

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length", 0)))
            seen["host"] = self.headers["host"]
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    port = server.server_port

    def resolver(host, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    policy = outbound.Policy((ipaddress.ip_network("127.0.0.1/32"),))
    client = outbound.Client(outbound.Timeout(2.0, 2.0), resolver, ca_certs=ca_file)
    try:
        target, address = client.check(f"https://hooks.example:{port}/in", policy)
        assert str(address) == "127.0.0.1"
        response = client.post(target, address, b"{}", {"host": "evil.example"})
        assert response.status == 204
        assert seen == {"sni": "hooks.example", "host": f"hooks.example:{port}"}
        # Another name at the same address gets the same certificate, which is not its own.
        other, address = client.check(f"https://other.example:{port}/in", policy)
        with pytest.raises(ssl.SSLCertVerificationError):
            client.post(other, address, b"{}", {})
    finally:
        client.close()
        server.shutdown()
        server.server_close()


class _Server:
    """An HTTP/1.1 server on loopback answering each POST with `body` (and `close` asks
    it to close the connection after answering); it counts the connections it accepted."""

    def __init__(
        self,
        body: bytes = b"",
        close: bool = False,
        idle: float | None = None,
        length: int | None = None,
    ) -> None:
        self.connections = 0
        self.requests: list[str] = []
        self.headers: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                outer.connections += 1

            def do_POST(self) -> None:  # noqa: N802
                outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.requests.append(self.headers["webhook-id"])
                self.send_response(200)
                self.send_header(
                    "content-length", str(len(body) if length is None else length)
                )
                if close:
                    self.send_header("connection", "close")
                self.end_headers()
                self.wfile.write(body)
                if close or length is not None:
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        Handler.timeout = idle  # how long a kept connection may stay idle
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, args=(0.05,), daemon=True
        ).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/in"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _calls(
    server: _Server,
    count: int,
    client: outbound.Client,
    headers: dict[str, str] | None = None,
) -> list[bytes]:
    policy = outbound.Policy((ipaddress.ip_network("127.0.0.1/32"),))
    target, address = client.check(server.url, policy)
    bodies = []
    for n in range(count):
        answer = client.post(
            target, address, b"{}", {**(headers or {}), "webhook-id": f"msg_{n}"}
        )
        assert answer.status == 200
        bodies.append(answer.body)
    return bodies


@pytest.fixture
def caller() -> Iterator[outbound.Client]:
    """An outbound client, closed after the test."""
    made = outbound.Client(outbound.Timeout(2.0, 2.0))
    yield made
    made.close()


def _servers(kind: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """Start servers of `kind` (its arguments), stopped after the test."""
    started: list[Any] = []

    def start(*args: Any, **kwargs: Any) -> Any:
        started.append(kind(*args, **kwargs))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def serve() -> Iterator[Callable[..., _Server]]:
    yield from _servers(_Server)


def test_calls_to_one_address_share_a_kept_connection(caller, serve):
    server = serve(b"ok")
    assert _calls(server, 5, caller) == [b"ok"] * 5
    assert server.requests == [f"msg_{n}" for n in range(5)]
    assert server.connections == 1


def test_a_connection_the_channel_closes_is_not_kept(caller, serve):
    server = serve(close=True)
    _calls(server, 3, caller)
    assert server.connections == 3


def test_a_long_answer_is_read_in_part_and_its_connection_closed(caller, serve):
    long = b"x" * (4 * outbound.ANSWER_BYTES)
    server = serve(long)
    bodies = _calls(server, 2, caller)
    assert bodies == [long[: outbound.ANSWER_BYTES]] * 2
    assert server.connections == 2  # the rest of the first answer was never read


def test_a_kept_connection_the_channel_closed_while_idle_is_not_used_again(
    caller, serve
):
    server = serve(b"ok", idle=0.1)
    _calls(server, 1, caller)
    time.sleep(0.5)  # the channel closes the idle connection
    assert _calls(server, 1, caller) == [b"ok"]
    assert server.connections == 2
    assert server.requests == ["msg_0", "msg_0"]


def test_headers_that_frame_the_request_are_the_client_s_own(caller, serve):
    server = serve(b"ok")
    step_headers = {
        "Transfer-Encoding": "chunked",
        "Content-Length": "999",
        "Connection": "close",
        "X-Shop": "north",
    }
    assert _calls(server, 2, caller, step_headers) == [b"ok", b"ok"]
    seen = server.headers[0]
    assert seen["content-length"] == "2"
    assert "transfer-encoding" not in seen and "connection" not in seen
    assert seen["x-shop"] == "north"
    assert server.connections == 1  # still kept: no step closed it


def test_an_answer_shorter_than_its_length_is_an_error(caller, serve):
    server = serve(b"ok", length=10)
    with pytest.raises(outbound.IncompleteAnswer):
        _calls(server, 1, caller)


def test_the_connections_of_the_address_kept_longest_ago_go_first(
    caller, serve, monkeypatch
):
    monkeypatch.setattr(outbound, "ADDRESSES_KEPT", 2)
    first, second, third = serve(b"ok"), serve(b"ok"), serve(b"ok")
    _calls(first, 1, caller)
    _calls(second, 1, caller)
    _calls(first, 1, caller)  # the first is now the one kept last
    _calls(third, 1, caller)  # so the second's connection goes
    _calls(first, 1, caller)
    _calls(second, 1, caller)
    assert [s.connections for s in (first, second, third)] == [1, 2, 1]


class _Scripted:
    """A server on loopback that answers each request it reads with the next of `answers`,
    written as given: each answer a list of pieces, `pause` seconds apart. With `close`, it
    closes the connection after each answer. It counts the connections it accepted."""

    def __init__(
        self, answers: list[list[bytes]], close: bool = False, pause: float = 0.0
    ) -> None:
        self.answers, self.close, self.pause = list(answers), close, pause
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/in"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        with sock, contextlib.suppress(OSError):  # the client may close first
            buffer = b""
            while self.answers:
                while b"\r\n\r\n" not in buffer:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r")[0])
                while len(buffer) < length:
                    buffer += sock.recv(65536)
                buffer = buffer[length:]
                for piece in self.answers.pop(0):
                    sock.sendall(piece)
                    time.sleep(self.pause)
                if self.close:
                    return

    def stop(self) -> None:
        self.listener.close()


@pytest.fixture
def script() -> Iterator[Callable[..., _Scripted]]:
    yield from _servers(_Scripted)


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _post(client: outbound.Client, server: Any, headers: Any = None) -> outbound.Answer:
    policy = outbound.Policy((ipaddress.ip_network("127.0.0.1/32"),))
    target, address = client.check(server.url, policy)
    return client.post(target, address, b"{}", headers or {})


def test_an_interim_answer_is_passed_over_for_the_final_one(caller, script):
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
    server = script([[early, OK], [OK]])
    answer = _post(caller, server)
    assert (answer.status, answer.body) == (200, b"ok")
    assert "link" not in answer.headers
    assert _post(caller, server).status == 200
    assert server.connections == 1


def test_a_chunked_answer_is_read_whole_and_its_connection_kept(caller, script):
    chunked = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
    server = script([[chunked, b"2\r\nok\r\n", b"3\r\n!!!\r\n0\r\n\r\n"], [OK]])
    answer = _post(caller, server)
    assert (answer.status, answer.body) == (201, b"ok!!!")
    assert answer.headers["transfer-encoding"] == "chunked"
    _post(caller, server)
    assert server.connections == 1


def test_an_answer_that_ends_when_the_channel_closes(caller, script):
    server = script([[b"HTTP/1.1 200 OK\r\n\r\n", b"hello"], [OK]], close=True)
    answer = _post(caller, server)
    assert (answer.status, answer.body) == (200, b"hello")
    _post(caller, server)
    assert server.connections == 2


def test_an_answer_that_is_not_http_is_a_broken_answer(caller, script):
    server = script([[b"SSH-2.0-OpenSSH_9.2\r\n\r\n"]])
    with pytest.raises(outbound.BrokenAnswer):
        _post(caller, server)


def test_a_connection_with_bytes_after_its_answer_is_not_used_again(caller, script):
    server = script([[OK + b"HTTP/1.1 200 OK\r\n"], [OK]])
    assert _post(caller, server).body == b"ok"
    assert _post(caller, server).body == b"ok"
    assert server.connections == 2


def test_the_whole_answer_comes_within_the_read_timeout(script):
    pieces = [bytes([byte]) for byte in OK]  # each piece well within the timeout alone
    server = script([pieces], pause=0.1)
    client = outbound.Client(outbound.Timeout(1.0, 0.5))
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            _post(client, server)
    finally:
        client.close()
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("X-Shop", "north\r\nX-Admin: yes", "line break or control character"),
        ("X-Shop", "north\nX-Admin: yes", "line break or control character"),
        ("X-Shop", "nul\x00", "line break or control character"),
        ("X Shop", "north", "not a valid header name"),
        ("X-Shop:", "north", "not a valid header name"),
        ("X-Name", "小明", "X-Name holds a character beyond Latin-1"),
    ],
)
def test_a_header_that_cannot_be_sent_is_refused_before_connecting(
    caller, script, name, value, why
):
    server = script([[OK]])
    with pytest.raises(ValueError, match=why):
        _post(caller, server, {name: value})
    assert server.connections == 0


def test_latin_1_and_tabs_in_a_header_are_sent_as_they_are(caller, serve):
    server = serve(b"ok")
    assert _post(caller, server, {"X-Name": "Zoë\tB", "webhook-id": "m"}).body == b"ok"
    assert server.headers[0]["x-name"] == "Zoë\tB"


def test_an_answer_whose_head_never_ends_is_broken_at_once(caller, script):
    head = b"HTTP/1.1 200 OK\r\n" + b"X: aaaaaaaaaa\r\n" * 20_000
    server = script([[head]])
    started = time.monotonic()
    with pytest.raises(outbound.BrokenAnswer, match="head is too long"):
        _post(caller, server)
    assert time.monotonic() - started < 1.0


def test_an_answer_with_another_coding_ends_when_the_channel_closes(caller, script):
    gzip = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"
    server = script([[gzip, b"zipped"]], close=True)
    answer = _post(caller, server)
    assert (answer.status, answer.body) == (200, b"zipped")


def test_trailers_are_not_taken_for_headers(caller, script):
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Shop: a\r\n\r\n"
    server = script([[chunked, b"2\r\nok\r\n0\r\nX-Shop: b\r\nX-Late: 1\r\n\r\n"]])
    answer = _post(caller, server)
    assert answer.body == b"ok"
    assert answer.headers["x-shop"] == "a" and "x-late" not in answer.headers
