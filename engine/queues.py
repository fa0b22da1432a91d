"""Redis connections and RQ queues, built in one place; jobs carry ids as JSON."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from redis import Redis
from redis.sentinel import Sentinel
from rq import Queue
from rq.serializers import JSONSerializer

QUEUE_NAMES = ("events", "deliveries", "default")
PREFIX = "throughline"  # of every Redis key the engine writes


SENTINEL_SCHEMES = ("redis+sentinel://", "rediss+sentinel://")
TIMEOUTS = {"socket_connect_timeout": 2, "socket_timeout": 5}


class RedisUrlError(ValueError):
    """REDIS_URL cannot be understood."""


def connect(url: str) -> Redis:
    """A Redis client for `url` (redis://, rediss://, unix://, redis+sentinel:// or, over
    TLS, rediss+sentinel://) with short timeouts."""
    if url.startswith(SENTINEL_SCHEMES):
        return _through_sentinels(url)
    return Redis.from_url(url, health_check_interval=30, **TIMEOUTS)


def _through_sentinels(url: str) -> Redis:
    """`redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]`
    (`?sentinel_password=` when the sentinels ask for one; `rediss+sentinel://` speaks TLS
    to sentinels and master): a client of the service's current master, found again
    through the sentinels after a failover."""
    form = (
        "REDIS_URL with sentinels reads "
        "redis+sentinel://[:password@]host:26379[,host:26379...]/service[/db]"
    )
    parts = urlsplit(url)
    tls = {"ssl": True} if parts.scheme == "rediss+sentinel" else {}
    credentials, _, hosts = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    sentinels = []
    for item in hosts.split(","):
        if not item.strip():
            raise RedisUrlError(f"{form}: a sentinel's host is missing")
        host, colon, port = item.rpartition(":")
        if not colon or "]" in port:  # no port given (or a bare IPv6 address)
            host, port = item, "26379"
        try:
            sentinels.append((host.strip("[]"), int(port)))
        except ValueError:
            raise RedisUrlError(
                f"REDIS_URL names a sentinel {item!r} without a valid port"
            ) from None
    path = [segment for segment in parts.path.split("/") if segment]
    if not path or len(path) > 2 or not all(host for host, _ in sentinels):
        raise RedisUrlError(form)
    if len(path) == 2 and not path[1].isdigit():
        raise RedisUrlError(f"{form}: the database is a number, not {path[1]!r}")
    query = parse_qs(parts.query)
    sentinel_password = query.get("sentinel_password", [None])[0]
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        sentinels,
        sentinel_kwargs={"password": sentinel_password, **TIMEOUTS, **tls},
        **TIMEOUTS,
        **tls,
    )
    master: Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        path[0],
        redis_class=Redis,
        db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
        health_check_interval=30,
        **TIMEOUTS,
        **tls,
    )
    return master


def queue(name: str, connection: Redis) -> Queue:
    return Queue(name, connection=connection, serializer=JSONSerializer)


def all_queues(connection: Redis) -> list[Queue]:
    return [queue(name, connection) for name in QUEUE_NAMES]
