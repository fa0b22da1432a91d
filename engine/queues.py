"""Redis connections and RQ queues, built in one place; jobs carry ids as JSON."""

from __future__ import annotations

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

QUEUE_NAMES = ("events", "deliveries", "default")
PREFIX = "throughline"  # of every Redis key the engine writes


def connect(url: str) -> Redis:
    """A Redis client for `url` (redis://, rediss:// or unix://) with short timeouts."""
    return Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
    )


def queue(name: str, connection: Redis) -> Queue:
    return Queue(name, connection=connection, serializer=JSONSerializer)


def all_queues(connection: Redis) -> list[Queue]:
    return [queue(name, connection) for name in QUEUE_NAMES]
