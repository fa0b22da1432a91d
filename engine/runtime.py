"""The services of one worker or scheduler process: its database and its Redis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis import Redis

from engine.crypto import SecretBox
from engine.db import Database
from engine.queues import connect
from engine.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    database: Database
    redis: Redis
    box: SecretBox
    sender: Any = None  # engine.delivery.sender.Sender, made on first use by a worker

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        return cls(
            settings=settings,
            database=Database(settings.database_url),
            redis=connect(settings.redis_url),
            box=SecretBox(settings.encryption_key),
        )

    def close(self) -> None:
        if self.sender is not None:
            self.sender.close()
        self.database.dispose()
        self.redis.close()


_current: Runtime | None = None


def install(runtime: Runtime) -> None:
    """Make `runtime` the one jobs of this process use."""
    global _current
    _current = runtime


def current() -> Runtime:
    if _current is None:
        raise RuntimeError(
            "no runtime installed; start the process through engine.worker"
        )
    return _current
