import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine import accounts
from engine.crypto import SecretBox
from engine.journeys.starters import FOLDER as STARTERS
from engine.models import AuditEntry, Channel, Journey
from webapp.cli import cli


@pytest.fixture
def run(settings, monkeypatch):
    monkeypatch.setenv("THROUGHLINE_HOME", str(settings.home))
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_help_lists_every_command(run):
    output = run("--help").output
    for command in (
        "up",
        "web",
        "worker",
        "scheduler",
        "db",
        "user",
        "token",
        "channel",
        "demo",
    ):
        assert f"  {command} " in output


def test_db_upgrade_is_repeatable(run):
    for _ in range(2):
        result = run("db", "upgrade")
        assert result.exit_code == 0
        assert "latest schema" in result.output


def test_user_create_then_sign_in(run, session):
    result = run("user", "create", "--email", "m@example.com", "--role", "marketer")
    assert result.exit_code == 0
    password = result.output.strip().splitlines()[-1].removeprefix("password: ")
    assert accounts.authenticate(session, "m@example.com", password) is not None
    again = run("user", "create", "--email", "m@example.com", "--role", "viewer")
    assert again.exit_code == 1
    assert "already exists" in again.output
    bad = run("user", "create", "--email", "x@example.com", "--role", "owner")
    assert bad.exit_code == 2
    assert "'owner' is not one of" in bad.output


def test_user_password_changes_the_password(run, session):
    run(
        "user",
        "create",
        "--email",
        "m@example.com",
        "--role",
        "viewer",
        "--password",
        "first password",
    )
    result = run(
        "user", "password", "--email", "m@example.com", "--password", "second password"
    )
    assert result.exit_code == 0
    assert (
        accounts.authenticate(session, "m@example.com", "second password") is not None
    )
    assert run("user", "password", "--email", "none@example.com").exit_code == 1


def test_token_create_prints_the_token_alone_on_its_last_line(run, app):
    run(
        "user",
        "create",
        "--email",
        "m@example.com",
        "--role",
        "viewer",
        "--password",
        "a long password",
    )
    result = run("token", "create", "--email", "m@example.com")
    assert result.exit_code == 0
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("tl_") and " " not in token
    response = app.test_client().get(
        "/api/v1/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.get_json()["email"] == "m@example.com"
    assert run("token", "create", "--email", "none@example.com").exit_code == 1


def test_channel_create_prints_secrets_once_and_stores_them_encrypted(
    run, session, settings
):
    result = run(
        "channel",
        "create",
        "--slug",
        "web",
        "--kind",
        "web",
        "--outbound-url",
        "https://example.com/in",
    )
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert shown["inbound_secret"].startswith("whsec_")
    channel = session.scalars(select(Channel)).one()
    assert shown["inbound_secret"] not in channel.inbound_secret
    box = SecretBox(settings.encryption_key)
    assert box.decrypt(channel.inbound_secret) == shown["inbound_secret"]
    assert box.decrypt(channel.outbound_secret) == shown["outbound_secret"]
    duplicate = run("channel", "create", "--slug", "web", "--kind", "web")
    assert (
        duplicate.exit_code == 1
        and "slug: a channel with the slug 'web' already exists" in duplicate.output
    )
    bad = run("channel", "create", "--slug", "Web Site", "--kind", "web")
    assert bad.exit_code == 1 and "slug:" in bad.output


def test_demo_loads_once(run, session):
    first = run("demo")
    assert first.exit_code == 0 and "demo data loaded" in first.output
    second = run("demo")
    assert "already present" in second.output
    assert len(session.scalars(select(Channel)).all()) == 5
    assert len(session.scalars(select(Journey)).all()) == 2
    assert session.scalars(
        select(AuditEntry).where(AuditEntry.action == "demo.load")
    ).one()


def test_journey_import_publish_and_export_round_trip(run, tmp_path):

    run("demo")  # the channels the sample names
    source = STARTERS / "vip_routing.json"
    result = run("journey", "import", str(source), "--publish")
    assert result.exit_code == 0, result.output
    journey_id = int(result.output.split()[1])
    assert "version 1 live" in result.output
    exported = run("journey", "export", str(journey_id), "--version", "live")
    assert json.loads(exported.stdout) == json.loads(source.read_text())
    assert (
        json.loads(run("journey", "export", str(journey_id), "--version", "1").stdout)[
            "name"
        ]
        == "VIP routing"
    )
    assert run("journey", "export", str(journey_id), "--version", "7").exit_code == 1
    assert run("journey", "export", "999").exit_code == 1


def test_journey_import_names_each_problem(run, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text(
        json.dumps(
            {
                "schema": "throughline.journey/v1",
                "name": "x",
                "nodes": [{"id": "a", "type": "wait", "config": {"duration": "soon"}}],
                "edges": [],
            }
        )
    )
    result = run("journey", "import", str(broken))
    assert result.exit_code == 1
    assert "a: the duration: “soon” cannot be read as a length of time" in result.output
    assert "add a trigger" in result.output
    not_json = tmp_path / "x.json"
    not_json.write_text("{")
    assert "is not JSON" in run("journey", "import", str(not_json)).output


def test_a_demo_burst_is_applied_by_the_workers_and_fills_the_analytics(
    run, session, redis_client, engine_runtime
):
    from engine.analytics import overview, reports
    from engine.analytics.queries import Window
    from engine.execution import drains
    from engine.models import Event, EventStatus, Run
    from tests.conftest import work_all

    result = run("demo", "--burst", "60")
    assert result.exit_code == 0 and "demo events stored" in result.output
    pending = session.scalars(
        select(Event).where(Event.status == EventStatus.pending)
    ).all()
    assert len(pending) >= 60
    again = run("demo", "--burst", "60")
    assert "0 demo events stored" in again.output  # the same webhook ids: nothing twice
    drains.recover(
        engine_runtime
    )  # the scheduler's sweeper finds the pending partitions
    work_all(redis_client)
    session.rollback()
    assert not session.scalars(
        select(Event).where(Event.status == EventStatus.pending)
    ).all()
    assert session.scalars(select(Run)).all()
    journeys = session.scalars(select(Journey).order_by(Journey.id)).all()
    assert {j.status.value for j in journeys} == {"live"}
    report = overview.overview(session, journeys)
    assert report.entered > 10 and sum(report.events.values()) >= 60
    cart = reports.journey_report(session, journeys[0], Window())
    assert cart.funnel[0].arrived == cart.entered
