"""A channel for benchmarks: a small asyncio HTTP server that answers 200 at once and notes,
for every delivery, its `webhook-id`, the posting time carried in its message and when it
arrived. Run in a process of its own; on SIGTERM it writes what it saw as JSON lines."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


class Channel(asyncio.Protocol):
    def __init__(self, seen: list[tuple[str, float, float]]) -> None:
        self.seen = seen
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").lower()
            length = 0
            webhook_id = ""
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name == "content-length":
                    length = int(value)
                elif name == "webhook-id":
                    webhook_id = value.strip()
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            arrived = time.time()
            try:
                sent = float(json.loads(body)["message"]["sent_at"])
            except (ValueError, KeyError, TypeError):
                sent = float("nan")
            self.seen.append((webhook_id, sent, arrived))
            self.transport.write(OK)  # type: ignore[attr-defined]


async def serve(port: int, out: str) -> None:
    seen: list[tuple[str, float, float]] = []
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    server = await loop.create_server(lambda: Channel(seen), "127.0.0.1", port)
    await stop
    server.close()
    with open(out, "w") as handle:
        for webhook_id, sent, arrived in seen:
            handle.write(json.dumps([webhook_id, sent, arrived]) + "\n")


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2]))
