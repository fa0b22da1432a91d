"""Channels: connect one, watch its health, change it, rotate its secrets, try a delivery."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import (
    Response,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from engine import channels, durations
from engine.analytics import channel_health
from engine.channels import ChannelError, channel_names, find_channel
from engine.delivery import TEST, reason_words
from engine.execution import drains
from engine.journeys import summaries
from engine.models import (
    Channel,
    Customer,
    Delivery,
    DeliveryStatus,
    Event,
    Journey,
    JourneyVersion,
    Role,
    SchemaViolation,
    utcnow,
)
from webapp.channels import bp
from webapp.channels.example import TOLERANCE_MINUTES, signed_example
from webapp.channels.forms import (
    ChannelSettingsForm,
    ConfirmForm,
    NewChannelForm,
    RotateForm,
)
from webapp.customers.views import display_name
from webapp.hooks.channels import forget
from webapp.htmx import page_or_partial, wants_partial
from webapp.paging import Page, paginate
from webapp.security import acting_user, requires
from webapp.services import db, services

RECENT = 10  # rows of each list on the channel page


@bp.app_template_filter("delivery_reason")
def delivery_reason(reason: str | None) -> str:
    return reason_words(reason)


def _channel(slug: str) -> Channel:
    channel = find_channel(db(), slug)
    if channel is None:
        abort(404, f"There is no channel “{slug}”.")
    return channel


def _is_admin() -> bool:
    return acting_user().role.includes(Role.admin)


def _events(channel: Channel, size: int | None = None) -> Page:
    statement = (
        select(Event).where(Event.channel_id == channel.id).order_by(Event.id.desc())
    )
    return paginate(db(), statement, size=size)


def _deliveries(channel: Channel, size: int | None = None) -> dict[str, Any]:
    """A page of the channel's deliveries, with the names of the journeys and steps they
    came from (steps as the live version names them) and of the customers they were for."""
    statement = (
        select(Delivery)
        .where(Delivery.channel_id == channel.id)
        .order_by(Delivery.created_at.desc(), Delivery.id.desc())
    )
    page = paginate(db(), statement, size=size)
    ids = {row.journey_id for row in page.items if row.journey_id is not None}
    journeys: dict[int, str] = {}
    steps: dict[tuple[int, str], str] = {}
    if ids:
        # The journeys' names and live documents in one query; steps named as it names them.
        rows = db().execute(
            select(Journey.id, Journey.name, JourneyVersion.document)
            .outerjoin(
                JourneyVersion,
                (JourneyVersion.journey_id == Journey.id)
                & (JourneyVersion.number == Journey.live_version),
            )
            .where(Journey.id.in_(ids))
        )
        names = channel_names(db())
        for journey_id, name, document in rows:
            journeys[journey_id] = name
            for node_id, step in summaries.step_names(document or {}, names).items():
                steps[(journey_id, node_id)] = step.label or step.summary or step.title
    people = {row.customer_id for row in page.items if row.customer_id is not None}
    customers = (
        db()
        .scalars(
            select(Customer)
            .where(Customer.id.in_(people))
            .options(selectinload(Customer.identities))
        )
        .all()
        if people
        else []
    )
    return {
        "deliveries": page,
        "journey_names": journeys,
        "step_names": steps,
        "customer_names": {c.id: display_name(c) for c in customers},
    }


def _health(channel: Channel) -> channel_health.Health:
    return channel_health.channel_health(db(), services().redis, [channel], utcnow())[
        channel.id
    ]


def _field_error(form: Any, error: ChannelError) -> None:
    field = getattr(form, error.field, None)
    if field is None:
        form.form_errors.append(str(error))
    else:
        field.errors = [*field.errors, str(error)]


@bp.get("/")
@requires(Role.viewer)
def index() -> Any:
    """Every channel with its health over the last day."""
    page = paginate(db(), select(Channel).order_by(Channel.slug))
    health = channel_health.channel_health(db(), services().redis, page.items, utcnow())
    return render_template(
        "channels/index.html", page=page, health=health, can_admin=_is_admin()
    )


@bp.route("/new", methods=["GET", "POST"])
@requires(Role.admin)
def new() -> Any:
    """Connect a channel; its secrets are shown on the answer to this form, and never again."""
    form = NewChannelForm()
    if form.validate_on_submit():
        try:
            made = channels.create(
                db(),
                services().box,
                form.slug.data or "",
                form.name.data or "",
                form.kind.data or "",
                acting_user(),
                form.outbound_url.data or None,
                form.rate_limit.data or 0,
                services().settings.outbound_allowed_networks,
            )
        except ChannelError as error:
            db().rollback()
            _field_error(form, error)
        else:
            db().commit()
            forget()
            return _secrets_page(
                made.channel, made.inbound_secret, made.outbound_secret, created=True
            )
    status = 400 if request.method == "POST" else 200
    return render_template("channels/new.html", form=form), status


def _secrets_page(
    channel: Channel,
    inbound: str,
    outbound: str,
    created: bool,
    previous_valid_until: datetime | None = None,
) -> Response:
    """The one page that ever shows a channel's secrets; browsers must not keep it."""
    hook_url = url_for("hooks.receive", slug=channel.slug, _external=True)
    now = utcnow()
    response = make_response(
        render_template(
            "channels/secrets.html",
            channel=channel,
            created=created,
            inbound_secret=inbound,
            outbound_secret=outbound,
            hook_url=hook_url,
            example=signed_example(hook_url, inbound, now),
            tolerance=TOLERANCE_MINUTES,
            fresh_until=now + timedelta(minutes=TOLERANCE_MINUTES),
            previous_valid_until=previous_valid_until,
            events=_events(channel, RECENT),
            compact=True,
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<slug>")
@requires(Role.viewer)
def show(slug: str) -> Any:
    """One channel: settings, health, recent events and deliveries, and what can be done."""
    channel = _channel(slug)
    test = None
    if request.args.get("test") and _is_admin():
        test = db().get(Delivery, request.args["test"])
        if test is not None and (test.channel_id != channel.id or test.kind != TEST):
            test = None
    return render_template(
        "channels/show.html",
        channel=channel,
        health=_health(channel),
        events=_events(channel, RECENT),
        **_deliveries(channel, RECENT),
        compact=True,
        test=test,
        waited=(utcnow() - test.created_at).total_seconds() if test else 0,
        form=ConfirmForm(),
        can_admin=_is_admin(),
        hook_url=url_for("hooks.receive", slug=channel.slug, _external=True),
        reset_seconds=services().settings.breaker_reset_seconds,
        now=utcnow(),
        schema_problems=db()
        .scalars(
            select(SchemaViolation)
            .where(SchemaViolation.channel_id == channel.id)
            .order_by(SchemaViolation.id.desc())
            .limit(5)
        )
        .all(),
    )


@bp.get("/<slug>/health")
@requires(Role.viewer)
def health(slug: str) -> Any:
    """The channel page's health figures, polled by it."""
    channel = _channel(slug)
    response = make_response(
        render_template(
            "channels/_figures.html",
            channel=channel,
            health=_health(channel),
            reset_seconds=services().settings.breaker_reset_seconds,
        )
    )
    response.headers.add("Vary", "HX-Request")
    return response


@bp.get("/<slug>/events")
@requires(Role.viewer)
def events(slug: str) -> Any:
    """The channel's inbound events, newest first (the channel page polls the short list)."""
    channel = _channel(slug)
    compact = request.args.get("compact") == "1"
    return page_or_partial(
        "channels/events.html",
        "channels/_events.html",
        channel=channel,
        events=_events(channel, RECENT if compact else None),
        compact=compact,
    )


@bp.get("/<slug>/deliveries")
@requires(Role.viewer)
def deliveries(slug: str) -> Any:
    """The channel's deliveries, newest first."""
    channel = _channel(slug)
    compact = request.args.get("compact") == "1"
    return page_or_partial(
        "channels/deliveries.html",
        "channels/_deliveries.html",
        channel=channel,
        **_deliveries(channel, RECENT if compact else None),
        compact=compact,
    )


@bp.route("/<slug>/edit", methods=["GET", "POST"])
@requires(Role.admin)
def edit(slug: str) -> Any:
    """Change the name, outbound URL or rate limit."""
    channel = _channel(slug)
    form = ChannelSettingsForm(obj=channel)
    if form.validate_on_submit():
        try:
            changes = channels.update(
                db(),
                channel,
                acting_user(),
                form.name.data or "",
                form.outbound_url.data or None,
                form.rate_limit.data or 0,
                services().settings.outbound_allowed_networks,
            )
        except ChannelError as error:
            db().rollback()
            _field_error(form, error)
        else:
            if changes:
                db().commit()
                forget()
                flash(f"Saved the settings of “{channel.name}”.", "success")
            else:
                flash("Nothing changed.", "success")
            return redirect(url_for("channels.show", slug=slug))
    status = 400 if request.method == "POST" else 200
    return render_template("channels/edit.html", channel=channel, form=form), status


@bp.route("/<slug>/disable", methods=["GET", "POST"])
@requires(Role.admin)
def disable(slug: str) -> Any:
    """Ask, then disable: events are refused with 409 and actions to it are suppressed."""
    channel = _channel(slug)
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template("channels/disable.html", channel=channel, form=form)
    if channels.disable(db(), channel, acting_user()):
        db().commit()
        forget()
    flash(
        f"Disabled “{channel.name}”: its events are refused until you enable it.",
        "success",
    )
    return redirect(url_for("channels.show", slug=slug))


@bp.post("/<slug>/enable")
@requires(Role.admin)
def enable(slug: str) -> Any:
    """Accept the channel's events and send it actions again."""
    channel = _channel(slug)
    if ConfirmForm().validate_on_submit() and channels.enable(
        db(), channel, acting_user()
    ):
        db().commit()
        forget()
        flash(f"Enabled “{channel.name}”.", "success")
    return redirect(url_for("channels.show", slug=slug))


@bp.route("/<slug>/rotate", methods=["GET", "POST"])
@requires(Role.admin)
def rotate(slug: str) -> Any:
    """Ask, then replace both secrets; the old inbound one keeps working for a grace period."""
    channel = _channel(slug)
    form = RotateForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template(
            "channels/rotate.html", channel=channel, form=form
        ), status
    grace_text = form.grace.data or "PT0S"
    grace = durations.as_timedelta(grace_text)
    rotated = channels.rotate(
        db(), services().box, channel, acting_user(), grace_text, utcnow()
    )
    db().commit()
    forget()
    return _secrets_page(
        channel,
        rotated.inbound_secret,
        rotated.outbound_secret,
        created=False,
        previous_valid_until=rotated.previous_valid_until if grace else None,
    )


@bp.post("/<slug>/test")
@requires(Role.admin)
def send_test(slug: str) -> Any:
    """Queue a signed test action through the channel's normal delivery path."""
    channel = _channel(slug)
    row = channels.send_test(db(), channel, acting_user(), utcnow())
    db().commit()
    try:
        drains.signal_deliveries(services().redis, channel.id)
    except RedisError:
        pass  # the sweeper signals due deliveries once Redis answers again
    if not wants_partial():
        return redirect(url_for("channels.show", slug=slug, test=row.id))
    return _test_result(channel, row)


@bp.get("/<slug>/tests/<delivery_id>")
@requires(Role.admin)
def test_result(slug: str, delivery_id: str) -> Any:
    """A test delivery's outcome; while it is pending, the partial polls this again."""
    channel = _channel(slug)
    row = db().get(Delivery, delivery_id)
    if row is None or row.channel_id != channel.id or row.kind != TEST:
        abort(404, "There is no such test delivery.")
    return _test_result(channel, row)


def _test_result(channel: Channel, row: Delivery) -> Response:
    waited = (utcnow() - row.created_at).total_seconds()
    response = make_response(
        render_template(
            "channels/_test_delivery.html", channel=channel, test=row, waited=waited
        )
    )
    response.headers.add("Vary", "HX-Request")
    if row.status is not DeliveryStatus.pending:
        response.headers["HX-Trigger"] = "delivery-settled"  # the list shows it now
    return response
