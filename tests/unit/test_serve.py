"""The web server refuses a port another server listens on, even one that shares its port."""

from __future__ import annotations

import socket

import pytest

from webapp import serve


def _listening(reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.parametrize("reuse_port", [False, True])
def test_a_port_with_a_listener_is_not_free(reuse_port: bool) -> None:
    sock = _listening(reuse_port)
    port = sock.getsockname()[1]
    try:
        assert not serve._port_is_free("127.0.0.1", port)
    finally:
        sock.close()
    assert serve._port_is_free("127.0.0.1", port)


def test_the_server_stops_with_a_message_when_its_port_is_taken() -> None:
    sock = _listening(True)
    try:
        with pytest.raises(SystemExit, match="is in use"):
            serve.main(["--port", str(sock.getsockname()[1])])
    finally:
        sock.close()
