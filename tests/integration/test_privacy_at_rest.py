"""Personal data does not outlive an erasure where nobody looks: refusals kept in Redis,
the access log, free pages of the database, file modes, reused ids."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import make_url, text

from engine.channels import create_channel
from engine.crypto import SecretBox
from engine.db import Database
from engine.embedded_redis import EmbeddedRedis
from engine.models import Role
from tests.channels import post_event
from tests.factories import api_client, make_customer
from webapp.hooks.channels import forget

pytestmark = pytest.mark.security


@pytest.fixture
def web(session, settings):
    forget()
    made = create_channel(
        session, SecretBox(settings.encryption_key), "web", "Web site", "web"
    )
    session.commit()
    yield made
    forget()


def test_a_kept_refusal_names_the_field_and_the_reason_but_not_the_value(
    client, web, redis_client
):
    event = {"type": "signed_up", "customer": {"email": "not-an-email-Eraseme-7731"}}
    answer = post_event(client, "web", web.inbound_secret, event)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"] == "customer.email"
    kept = redis_client.get("throughline:rejections:web:last").decode()
    assert "customer.email" in kept and "not an email address" in kept
    assert "Eraseme" not in kept and "not-an-email" not in kept
    assert "Eraseme" not in answer.get_data(as_text=True)


def test_a_new_database_file_is_readable_by_its_owner_alone(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    with database.session() as session:
        session.execute(text("CREATE TABLE t (x TEXT)"))
        session.execute(text("INSERT INTO t VALUES ('a')"))
    for name in ("fresh.db", "fresh.db-wal"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    database.dispose()


def test_an_erased_row_leaves_no_bytes_in_the_database_file(tmp_path):
    path = tmp_path / "erase.db"
    database = Database(f"sqlite:///{path}")
    needle = "Eraseme-Unique-7731"
    with database.session() as session:
        assert session.execute(text("PRAGMA secure_delete")).scalar() == 1
        session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT)"))
        session.execute(text("INSERT INTO t (x) VALUES ('keep'), (:n)"), {"n": needle})
    with database.session() as session:
        session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    assert needle.encode() in path.read_bytes()
    with database.session() as session:
        session.execute(text("DELETE FROM t WHERE x = :n"), {"n": needle})
    with database.session() as session:
        session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    database.dispose()
    assert needle.encode() not in path.read_bytes()


def test_the_embedded_redis_files_are_readable_by_their_owner_alone(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    try:
        client = Redis(unix_socket_path=str(server.socket))
        client.set("k", "v")
        client.close()
    finally:
        server.stop()
    found = [p for p in (tmp_path / "redis").rglob("*") if p.name != "redis.sock"]
    assert any("appendonly" in p.name for p in found)
    for path in found:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path


def test_the_command_line_creates_its_files_private(tmp_path):
    env = {**os.environ, "THROUGHLINE_HOME": str(tmp_path / "home")}
    env.pop("DATABASE_URL", None)
    subprocess.run(
        [sys.executable, "-c", "from webapp.cli import cli; cli()", "db", "upgrade"],
        env=env,
        check=True,
        capture_output=True,
    )
    database = tmp_path / "home" / "throughline.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


def test_an_erased_customer_leaves_no_bytes_in_the_database_or_its_log(
    client, session, settings
):
    if not settings.is_sqlite:
        pytest.skip("the files of a SQLite database")
    needle = "erase-me-7731@sec.test"
    make_customer(
        session,
        traits={"first_name": "Eraseme-Unique-7731"},
        identities={"email": needle},
    )
    session.close()
    path = Path(make_url(settings.database_url).database)
    files = (path, path.with_name(path.name + "-wal"))
    assert any(needle.encode() in f.read_bytes() for f in files if f.exists())
    api = api_client(client, session, Role.admin)
    session.close()
    assert api.delete(f"/api/v1/customers/email:{needle}").status_code == 200
    for found in files:
        if found.exists():
            data = found.read_bytes()
            assert needle.encode() not in data and b"Eraseme" not in data, found
