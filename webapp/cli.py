"""The `throughline` command: run the parts, manage the database, users, tokens and data."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import click
from sqlalchemy.orm import Session

from engine import accounts, channels, journeys, migrate
from engine.channels import ChannelError
from engine.crypto import SecretBox
from engine.db import Database
from engine.demo import burst as store_burst
from engine.demo import load_demo
from engine.journeys import lifecycle
from engine.language import graph
from engine.models import ChannelKind, Role
from engine.settings import Settings, SettingsError, keep_files_private, load_settings
from webapp import launcher


def _say(message: str) -> None:
    click.echo(f"throughline: {message}", err=True)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


DEMO_BURST = 300  # events `up --demo` stores, so analytics have figures from the start


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    database = Database(settings.database_url)
    try:
        with database.session() as session:
            yield session
    finally:
        database.dispose()


def ensure_first_admin(settings: Settings) -> tuple[str, str | None]:
    """Create the first admin when there is no user; returns (email, password or None)."""
    with _session(settings) as session:
        if accounts.count_users(session):
            return settings.admin_email, None
        password = accounts.generate_password()
        user = accounts.create(
            session, settings.admin_email, Role.admin, password, actor=None
        )
        return user.email, password


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Throughline: cross-channel customer journeys."""
    keep_files_private()


@cli.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on."
)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="RQ worker processes.",
)
@click.option("--demo", is_flag=True, help="Load the demo data first (once).")
def up(host: str, port: int, workers: int, demo: bool) -> None:
    """Migrate, then run the web server, N workers and the scheduler until stopped."""
    settings = _settings()
    supervisor: launcher.Supervisor | None = None

    def stop(signum: int, frame: object) -> None:
        if supervisor is not None:
            supervisor.request_stop(signum)
        else:
            raise KeyboardInterrupt

    launcher.install_signal_handlers(stop)  # type: ignore[arg-type]
    code = 0
    try:
        with launcher.embedded_redis(settings, _say):
            migrate.upgrade(settings.database_url)
            email, password = ensure_first_admin(settings)
            if demo:
                with _session(settings) as session:
                    loaded = load_demo(session, SecretBox(settings.encryption_key))
                    stored = store_burst(session, settings.partitions, DEMO_BURST)
                _say("demo data loaded" if loaded else "demo data already present")
                if stored:
                    _say(
                        f"{stored} demo events stored; the workers apply them in a moment"
                    )
            env = launcher.child_environment(settings)
            children = [launcher.Child("web", launcher.web_command(host, port))]
            children += [
                launcher.Child(f"worker-{n}", [sys.executable, "-m", "engine.worker"])
                for n in range(1, workers + 1)
            ]
            children.append(
                launcher.Child("scheduler", [sys.executable, "-m", "engine.scheduler"])
            )
            supervisor = launcher.Supervisor(children, env, _say)
            supervisor.start_all()
            if launcher.wait_until_ready(host, port, lambda: children[0].alive):
                shown = f"[{host}]" if ":" in host else host
                click.echo(f"\nThroughline is up at http://{shown}:{port}/")
                if password:
                    click.echo(f"Sign in as {email} with password {password}")
                    click.echo(
                        "(shown this once; change it with `throughline user password`)"
                    )
                else:
                    click.echo(f"Sign in as {email} (or any user you created)")
                click.echo(
                    f"Running 1 web server, {workers} worker(s) and the scheduler. Ctrl-C stops them.\n"
                )
            else:
                _say("the web server did not start; see the messages above")
                supervisor.request_stop(15)
            code = supervisor.watch()
    except KeyboardInterrupt:
        if supervisor is not None:
            supervisor.stop_all()
    sys.exit(code)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--processes", default=2, show_default=True, type=click.IntRange(1, 64))
def web(host: str, port: int, processes: int) -> None:
    """Run only the web server (granian)."""
    settings = _settings()
    with launcher.embedded_redis(settings, _say):
        env = launcher.child_environment(settings)
        child = launcher.Child("web", launcher.web_command(host, port, processes))
        supervisor = launcher.Supervisor([child], env, _say)
        launcher.install_signal_handlers(supervisor.request_stop)
        supervisor.start_all()
        code = supervisor.watch()
    sys.exit(code)


@cli.command()
@click.option("--burst", is_flag=True, help="Stop once the queues are empty.")
def worker(burst: bool) -> None:
    """Run one RQ worker on every queue."""
    from engine import worker as engine_worker

    settings = _settings()
    with launcher.embedded_redis(settings, _say):
        engine_worker.start(burst=burst)


@cli.command()
@click.option(
    "--every",
    multiple=True,
    metavar="TASK=SECONDS",
    help="Run a periodic task at another period than its own (may be repeated).",
)
def scheduler(every: tuple[str, ...]) -> None:
    """Run a scheduler (periodic work: timer sweeps, housekeeping). Any number may run: one
    leads and works, the others take over within THROUGHLINE_SCHEDULER_LEASE_SECONDS of it
    stopping."""
    from engine import scheduler as engine_scheduler

    settings = _settings()
    with launcher.embedded_redis(settings, _say):
        engine_scheduler.main([f"--every={item}" for item in every])


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    settings = _settings()
    migrate.upgrade(settings.database_url)
    _say("database is at the latest schema")


@cli.group()
def user() -> None:
    """Users of the web app and API."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option(
    "--password", help="At least 10 characters; generated and printed when omitted."
)
def user_create(email: str, role: str, password: str | None) -> None:
    """Add a user."""
    settings = _settings()
    generated = password is None
    password = password or accounts.generate_password()
    try:
        with _session(settings) as session:
            accounts.create(session, email, Role(role), password, actor=None)
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"created {role} {accounts.normalize_email(email)}")
    if generated:
        click.echo(f"password: {password}")


@user.command("password")
@click.option("--email", required=True)
@click.option(
    "--password", help="At least 10 characters; generated and printed when omitted."
)
def user_password(email: str, password: str | None) -> None:
    """Set a user's password."""
    settings = _settings()
    generated = password is None
    password = password or accounts.generate_password()
    try:
        with _session(settings) as session:
            found = accounts.find_user(session, email)
            if found is None:
                raise accounts.AccountError(f"no user has the email {email}")
            accounts.change_password(session, found, password, actor=None)
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"password changed for {accounts.normalize_email(email)}")
    if generated:
        click.echo(f"password: {password}")


@cli.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.option("--email", required=True, help="The user the token acts as.")
@click.option(
    "--name", default="cli", show_default=True, help="A label to recognise it by."
)
def token_create(email: str, name: str) -> None:
    """Create an API token; it is printed alone on the last line, and never again."""
    settings = _settings()
    with _session(settings) as session:
        found = accounts.find_user(session, email)
        if found is None:
            raise click.ClickException(f"no user has the email {email}")
        value = accounts.issue_token(session, found, name, actor=None)
    click.echo(f"API token for {found.email} ({found.role.value}):", err=True)
    click.echo(value)


@cli.group()
def channel() -> None:
    """Channels that post events and receive actions."""


@channel.command("create")
@click.option("--slug", required=True, help="Used in the webhook URL: /hooks/<slug>.")
@click.option(
    "--kind", required=True, type=click.Choice([k.value for k in ChannelKind])
)
@click.option("--name", help="A readable name; the slug when omitted.")
@click.option("--outbound-url", help="Where actions for this channel are POSTed.")
def channel_create(
    slug: str, kind: str, name: str | None, outbound_url: str | None
) -> None:
    """Add a channel and print its secrets as JSON (shown this once)."""
    settings = _settings()
    try:
        with _session(settings) as session:
            made = channels.create(
                session,
                SecretBox(settings.encryption_key),
                slug,
                name or slug,
                kind,
                actor=None,
                outbound_url=outbound_url,
                allowed_networks=settings.outbound_allowed_networks,
            )
    except ChannelError as error:
        raise click.ClickException(f"{error.field}: {error}") from None
    click.echo(
        json.dumps(
            {
                "id": made.channel.id,
                "slug": slug,
                "inbound_secret": made.inbound_secret,
                "outbound_secret": made.outbound_secret,
            },
            indent=2,
        )
    )


@cli.group()
def journey() -> None:
    """Journey documents: import and export."""


@journey.command("import")
@click.argument("file", type=click.File("r"))
@click.option(
    "--publish", "publish_now", is_flag=True, help="Publish it as version 1 too."
)
def journey_import(file: TextIO, publish_now: bool) -> None:
    """Create a journey from a document file ('-' reads standard input)."""
    settings = _settings()
    try:
        raw = json.load(file)
    except json.JSONDecodeError as error:
        raise click.ClickException(f"{file.name} is not JSON: {error}") from None
    try:
        with _session(settings) as session:
            ctx = lifecycle.check_context(
                session,
                settings.webhook_allowed_hosts,
                settings.outbound_allowed_networks,
            )
            created, _ = lifecycle.create_journey(session, raw, ctx, None)
            if publish_now:
                lifecycle.publish(session, created, ctx, None)
            click.echo(
                f"journey {created.id} {created.name!r} created"
                + (
                    f", version {created.live_version} live"
                    if publish_now
                    else " as a draft"
                )
            )
    except journeys.JourneyError as error:
        for problem in error.problems:
            where = problem.node or problem.field or "document"
            click.echo(f"  {where}: {problem.message}", err=True)
        raise click.ClickException(str(error)) from None


@journey.command("export")
@click.argument("journey_id", type=int)
@click.option(
    "--version",
    "which",
    default="draft",
    show_default=True,
    help="draft, live or a version number.",
)
def journey_export(journey_id: int, which: str) -> None:
    """Print a journey document as JSON."""
    settings = _settings()
    if which not in {"draft", "live"} and not which.isdigit():
        raise click.BadParameter(
            "use draft, live or a version number", param_hint="--version"
        )
    try:
        with _session(settings) as session:
            found = lifecycle.get_journey(session, journey_id)
            document = lifecycle.version_document(session, found, which)
    except journeys.JourneyError as error:
        raise click.ClickException(str(error)) from None
    click.echo(json.dumps(graph.to_dict(document), indent=2))


@cli.command()
@click.option(
    "--burst",
    type=click.IntRange(0, 100_000),
    default=0,
    help="Also store this many made-up events for the workers to apply (once per size).",
)
def demo(burst: int) -> None:
    """Load sample channels, customers, events and journeys (once)."""
    settings = _settings()
    migrate.upgrade(settings.database_url)
    with _session(settings) as session:
        loaded = load_demo(session, SecretBox(settings.encryption_key))
        stored = store_burst(session, settings.partitions, burst) if burst else 0
    _say("demo data loaded" if loaded else "demo data already present; nothing changed")
    if burst:
        _say(f"{stored} demo events stored; running workers apply them")


if __name__ == "__main__":
    cli()
