"""Environment variables -> one typed Settings object, read by web, worker and scheduler."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet

from engine.partitions import PERIODS, SHORTEST_KEEP, Retention


def shipped_folder(package: Path, name: str) -> Path:
    """The folder `name` that the wheel ships inside `package` (the package's directory), or
    in a source checkout the one at the top of the repository."""
    inside = package / name
    return inside if inside.is_dir() else package.parent / name


class SettingsError(ValueError):
    """A variable of the environment has a value Throughline cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything a Throughline process needs to know about its environment."""

    home: Path
    database_url: str
    redis_url: str
    embedded_redis: bool
    secret_key: str
    encryption_key: str
    admin_email: str
    trust_proxy: bool
    login_attempts_per_account: int
    login_attempts_per_address: int
    login_window_seconds: int
    webhook_allowed_hosts: frozenset[str] = frozenset()
    # Private networks that channels and webhook nodes may call (public ones always may).
    outbound_allowed_networks: tuple[
        ipaddress.IPv4Network | ipaddress.IPv6Network, ...
    ] = ()
    partitions: int = 4
    backlog_limit: int = 100_000
    delivery_timeout: float = 10.0
    delivery_max_attempts: int = 8
    breaker_fail_max: int = 5
    breaker_reset_seconds: int = 30
    # An event drain batch that asks for at most this many deliveries sends them itself once
    # it commits, instead of leaving them to a delivery drain (0: never).
    drain_sends_up_to: int = 200
    # How long such a drain waits for those channels before it goes on (seconds).
    drain_sends_wait: float = 2.0
    # Events said to have occurred before this are refused (see engine.intake.contract).
    earliest_occurred_at: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    # /metrics answers without an API token (for a scraper on a private network).
    metrics_public: bool = False
    # How long the leading scheduler's lease lasts unrenewed: another scheduler takes over
    # within this many seconds of the leader dying (engine.leadership).
    scheduler_lease_seconds: int = 9
    # How events, steps and deliveries are partitioned on PostgreSQL, and how long each is
    # kept (engine.partitions).
    retention: Retention = field(default_factory=Retention)

    @property
    def redis_socket(self) -> Path:
        """Where the embedded redis-server listens (used only when REDIS_URL is unset)."""
        return self.home / "redis" / "redis.sock"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _read_or_create(path: Path, make: str) -> str:
    """Return the first line of `path`, writing `make` to it (mode 0600) when it is absent."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(make + "\n")
    return make


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in {"1", "true", "yes"}


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, not {value}")
    return value


def _moment(env: Mapping[str, str], name: str, default: datetime) -> datetime:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise SettingsError(
            f"{name} must be an ISO 8601 date such as 2000-01-01, not {raw!r}"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _networks(
    env: Mapping[str, str], name: str
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for item in env.get(name, "").split(","):
        if item.strip():
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise SettingsError(
                    f"{name} is a comma-separated list of networks such as "
                    f"10.0.0.0/8,192.168.1.20/32, and {item.strip()!r} is not one"
                ) from None
    return tuple(networks)


def partition_period(env: Mapping[str, str] | None = None) -> str:
    """THROUGHLINE_PARTITION_PERIOD: what one partition holds on PostgreSQL."""
    env = os.environ if env is None else env
    raw = (env.get("THROUGHLINE_PARTITION_PERIOD") or "month").strip().lower()
    if raw not in PERIODS:
        raise SettingsError(
            f"THROUGHLINE_PARTITION_PERIOD must be one of {', '.join(PERIODS)},"
            f" not {raw!r}"
        )
    return raw


def _retention(env: Mapping[str, str]) -> Retention:
    keep: dict[str, timedelta | None] = {}
    for table, shortest in SHORTEST_KEEP.items():
        name = f"THROUGHLINE_KEEP_{table.upper()}_DAYS"
        days = _int(env, name, 0, minimum=0)
        if 0 < days < shortest:
            raise SettingsError(
                f"{name} must be 0 (keep for ever) or at least {shortest} days, not {days}"
                + (
                    ": frequency caps count the deliveries of up to 90 days back"
                    if table == "deliveries"
                    else ""
                )
            )
        keep[table] = timedelta(days=days) if days else None
    period = partition_period(env)
    if period != "month" and None in keep.values():
        raise SettingsError(
            f"THROUGHLINE_PARTITION_PERIOD={period} makes a partition per {period}, without"
            " end unless each table has a retention: set THROUGHLINE_KEEP_EVENTS_DAYS,"
            " THROUGHLINE_KEEP_STEPS_DAYS and THROUGHLINE_KEEP_DELIVERIES_DAYS too"
        )
    return Retention(period, keep)


def behind_pgbouncer(env: Mapping[str, str] | None = None) -> bool:
    """THROUGHLINE_PGBOUNCER: PostgreSQL is reached through PgBouncer in transaction mode."""
    return _flag(os.environ if env is None else env, "THROUGHLINE_PGBOUNCER")


PRIVATE_UMASK = 0o077


def keep_files_private() -> None:
    """Files and folders this process (and its children) creates are its user's alone: the
    database, the Redis files and the logs hold personal data and secrets."""
    os.umask(PRIVATE_UMASK)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the environment; create the home folder and its generated keys when missing."""
    env = os.environ if env is None else env
    home = Path(env.get("THROUGHLINE_HOME") or "instance").resolve()
    home.mkdir(parents=True, exist_ok=True)

    database_url = env.get("DATABASE_URL") or f"sqlite:///{home / 'throughline.db'}"
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgres://") :]
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]

    redis_url = env.get("REDIS_URL") or ""
    embedded = not redis_url
    if embedded:
        redis_url = f"unix://{home / 'redis' / 'redis.sock'}?db=0"

    secret_key = env.get("SECRET_KEY") or _read_or_create(
        home / "secret_key", secrets.token_urlsafe(48)
    )
    encryption_key = env.get("THROUGHLINE_ENCRYPTION_KEY") or _read_or_create(
        home / "encryption_key", Fernet.generate_key().decode()
    )
    try:
        Fernet(encryption_key.split(",")[0].encode())
    except ValueError:
        raise SettingsError(
            "THROUGHLINE_ENCRYPTION_KEY must be a Fernet key (32 url-safe base64 bytes); "
            "generate one with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`"
        ) from None

    return Settings(
        home=home,
        database_url=database_url,
        redis_url=redis_url,
        embedded_redis=embedded,
        secret_key=secret_key,
        encryption_key=encryption_key,
        admin_email=env.get("THROUGHLINE_ADMIN_EMAIL") or "admin@example.com",
        trust_proxy=_flag(env, "THROUGHLINE_TRUST_PROXY"),
        metrics_public=_flag(env, "THROUGHLINE_METRICS_PUBLIC"),
        login_attempts_per_account=_int(
            env, "THROUGHLINE_LOGIN_ATTEMPTS_PER_ACCOUNT", 5
        ),
        login_attempts_per_address=_int(
            env, "THROUGHLINE_LOGIN_ATTEMPTS_PER_ADDRESS", 20
        ),
        login_window_seconds=_int(env, "THROUGHLINE_LOGIN_WINDOW_SECONDS", 900),
        partitions=_int(env, "THROUGHLINE_PARTITIONS", 4),
        backlog_limit=_int(env, "THROUGHLINE_BACKLOG_LIMIT", 100_000),
        delivery_timeout=float(_int(env, "THROUGHLINE_DELIVERY_TIMEOUT_SECONDS", 10)),
        delivery_max_attempts=_int(env, "THROUGHLINE_DELIVERY_MAX_ATTEMPTS", 8),
        breaker_fail_max=_int(env, "THROUGHLINE_BREAKER_FAIL_MAX", 5),
        breaker_reset_seconds=_int(env, "THROUGHLINE_BREAKER_RESET_SECONDS", 30),
        drain_sends_up_to=_int(env, "THROUGHLINE_DRAIN_SENDS_UP_TO", 200, minimum=0),
        scheduler_lease_seconds=_int(env, "THROUGHLINE_SCHEDULER_LEASE_SECONDS", 9),
        drain_sends_wait=_int(env, "THROUGHLINE_DRAIN_SENDS_WAIT_MS", 2000) / 1000,
        webhook_allowed_hosts=frozenset(
            host.strip().lower()
            for host in env.get("THROUGHLINE_WEBHOOK_ALLOWED_HOSTS", "").split(",")
            if host.strip()
        ),
        earliest_occurred_at=_moment(
            env, "THROUGHLINE_EARLIEST_OCCURRED_AT", datetime(2000, 1, 1, tzinfo=UTC)
        ),
        outbound_allowed_networks=_networks(
            env, "THROUGHLINE_OUTBOUND_ALLOWED_NETWORKS"
        ),
        retention=_retention(env),
    )
