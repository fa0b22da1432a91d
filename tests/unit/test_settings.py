import stat
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet

from engine.partitions import Retention
from engine.settings import SettingsError, load_settings


def test_defaults_live_under_the_home_folder(tmp_path):
    settings = load_settings({"THROUGHLINE_HOME": str(tmp_path / "home")})
    home = tmp_path / "home"
    assert settings.home == home
    assert settings.database_url == f"sqlite:///{home / 'throughline.db'}"
    assert settings.embedded_redis
    assert settings.redis_url == f"unix://{home / 'redis' / 'redis.sock'}?db=0"
    assert settings.is_sqlite


def test_generated_keys_are_private_and_kept_across_starts(tmp_path):
    env = {"THROUGHLINE_HOME": str(tmp_path)}
    first, second = load_settings(env), load_settings(env)
    assert first.secret_key == second.secret_key
    assert first.encryption_key == second.encryption_key
    Fernet(first.encryption_key.encode())  # a usable key
    for name in ("secret_key", "encryption_key"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, f"{name} is readable by others ({oct(mode)})"


def test_environment_overrides_defaults(tmp_path):
    key = Fernet.generate_key().decode()
    settings = load_settings(
        {
            "THROUGHLINE_HOME": str(tmp_path),
            "DATABASE_URL": "postgres://u@db.example/prod",
            "REDIS_URL": "redis://cache:6379/2",
            "SECRET_KEY": "s" * 40,
            "THROUGHLINE_ENCRYPTION_KEY": key,
            "THROUGHLINE_LOGIN_ATTEMPTS_PER_ACCOUNT": "3",
        }
    )
    assert settings.database_url == "postgresql+psycopg://u@db.example/prod"
    assert settings.redis_url == "redis://cache:6379/2"
    assert not settings.embedded_redis
    assert settings.secret_key == "s" * 40
    assert settings.encryption_key == key
    assert settings.login_attempts_per_account == 3
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("THROUGHLINE_ENCRYPTION_KEY", "not-a-key", "must be a Fernet key"),
        ("THROUGHLINE_LOGIN_ATTEMPTS_PER_ACCOUNT", "many", "must be a whole number"),
        ("THROUGHLINE_LOGIN_WINDOW_SECONDS", "0", "must be at least 1"),
        (
            "THROUGHLINE_OUTBOUND_ALLOWED_NETWORKS",
            "10.0.0.0/8, crm.internal",
            "comma-separated list of networks",
        ),
        ("THROUGHLINE_PARTITION_PERIOD", "year", "one of day, week, month"),
        ("THROUGHLINE_PARTITION_PERIOD", "day", "unless each table has a retention"),
        ("THROUGHLINE_KEEP_EVENTS_DAYS", "3", "at least 7 days"),
        ("THROUGHLINE_KEEP_DELIVERIES_DAYS", "30", "frequency caps count"),
        ("THROUGHLINE_KEEP_STEPS_DAYS", "-1", "must be at least 0"),
    ],
)
def test_unusable_values_are_named(tmp_path, name, value, message):
    with pytest.raises(SettingsError, match=message) as raised:
        load_settings({"THROUGHLINE_HOME": str(tmp_path), name: value})
    assert name in str(raised.value)


def test_outbound_calls_reach_no_private_network_unless_listed(tmp_path):
    assert (
        load_settings({"THROUGHLINE_HOME": str(tmp_path)}).outbound_allowed_networks
        == ()
    )
    listed = load_settings(
        {
            "THROUGHLINE_HOME": str(tmp_path),
            "THROUGHLINE_OUTBOUND_ALLOWED_NETWORKS": " 10.0.0.0/8, 192.168.1.20,fd00::/8 ,",
        }
    ).outbound_allowed_networks
    assert [str(n) for n in listed] == ["10.0.0.0/8", "192.168.1.20/32", "fd00::/8"]


def test_retention_is_kept_for_ever_unless_set(tmp_path):
    assert load_settings({"THROUGHLINE_HOME": str(tmp_path)}).retention == Retention(
        "month", {"events": None, "steps": None, "deliveries": None}
    )
    settings = load_settings(
        {
            "THROUGHLINE_HOME": str(tmp_path),
            "THROUGHLINE_PARTITION_PERIOD": "Week",
            "THROUGHLINE_KEEP_EVENTS_DAYS": "30",
            "THROUGHLINE_KEEP_STEPS_DAYS": "60",
            "THROUGHLINE_KEEP_DELIVERIES_DAYS": "365",
        }
    )
    assert settings.retention == Retention(
        "week",
        {
            "events": timedelta(days=30),
            "steps": timedelta(days=60),
            "deliveries": timedelta(days=365),
        },
    )
