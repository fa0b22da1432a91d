"""The web server: `python -m webapp.serve [--host H] [--port P] [--processes N]`.

granian parses HTTP and keeps connections in Rust and calls the Flask app (`webapp.wsgi:app`)
on a pool of Python threads in each of N processes, respawning a process that fails.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys

from granian import Granian
from granian.constants import Interfaces
from granian.http import HTTP1Settings

from engine.settings import keep_files_private

# A webhook request mostly waits for its group of events to be committed (engine.intake):
# many threads per process let many requests share one commit.
THREADS = 32
# A client gets this long to send a request's headers before the connection is closed.
# granian has no such limit for the body: a body sent slowly holds one of the THREADS
# while the app reads it, so a server open to the Internet sits behind a proxy that times
# bodies out (nginx: client_body_timeout), as docs/decisions.md says.
HEADER_READ_TIMEOUT_MS = 10_000


class _IntendedThreads(logging.Filter):
    """Drops granian's warning that 32 threads are many for few cores: ours mostly wait."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Python threads" not in record.getMessage()


def _port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on host:port. granian's processes share the port (SO_REUSEPORT),
    which would let a second server start on it and take half the requests: this probe does
    not ask to share, so any listener makes its bind fail."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def http1_settings() -> HTTP1Settings:
    return HTTP1Settings(header_read_timeout=HEADER_READ_TIMEOUT_MS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m webapp.serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)
    keep_files_private()
    if not _port_is_free(args.host, args.port):
        sys.exit(
            f"throughline: {args.host}:{args.port} is in use; is another server running?"
        )
    server = Granian(
        "webapp.wsgi:app",
        address=args.host,
        port=args.port,
        interface=Interfaces.WSGI,
        workers=args.processes,
        blocking_threads=THREADS,
        websockets=False,
        http1_settings=http1_settings(),
        respawn_failed_workers=True,
        workers_kill_timeout=10,
    )
    logging.getLogger("_granian").addFilter(_IntendedThreads())
    server.serve()


if __name__ == "__main__":
    main()
