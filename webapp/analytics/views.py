"""Analytics: the overview of every journey, and one journey's figures, charts and CSVs."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any

from flask import Response, current_app, render_template, request
from sqlalchemy import select
from werkzeug.exceptions import NotFound
from wtforms import SelectChoice

from engine.analytics import overview, reports
from engine.analytics.counters import TIME_TO_GOAL_NAMES
from engine.analytics.queries import Window
from engine.intake.payload import scrub
from engine.journeys import summaries
from engine.models import Journey, JourneyStatus, JourneyVersion, Role, utcnow
from webapp.analytics import bp
from webapp.analytics.forms import FiltersForm
from webapp.paging import Page, requested_page
from webapp.security import requires
from webapp.services import db

TABLES = ("summary", "trend", "funnel", "uplift", "time_to_goal", "channels", "reasons")


# How the overview can be ordered: its columns, each read off a line.
SORTS: dict[str, Any] = {
    "name": lambda line: line.journey.name.lower(),
    "status": lambda line: line.journey.status.value,
    "entered": lambda line: line.entered,
    "active": lambda line: line.active,
    "converted": lambda line: line.converted,
    "conversion": lambda line: line.conversion_rate or 0.0,
    "cross_channel": lambda line: line.cross_channel,
}
STATUSES = ("live", "paused", "draft", "archived", "all")


@bp.get("/analytics/")
@requires(Role.viewer)
def index() -> Any:
    """Every journey of a status (live ones first shown) with its headline figures, in the
    order of any column, and the cross-channel figures."""
    form = FiltersForm(request.args)
    form.validate()
    window = form.window(utcnow(), {})
    status = request.args.get("status", "live")
    status = status if status in STATUSES else "live"
    sort = request.args.get("sort", "name")
    sort = sort if sort in SORTS else "name"
    descending = request.args.get("order") == "desc"
    statement = select(Journey).order_by(Journey.name, Journey.id)
    if status != "all":
        statement = statement.where(Journey.status == JourneyStatus(status))
    # Figures are sums over counters for every journey at once; ordering by one of them
    # happens here, then the page is cut.
    figures = overview.overview(db(), list(db().scalars(statement)), window)
    figures.lines.sort(key=SORTS[sort], reverse=descending)
    size = int(current_app.config["PAGE_SIZE"])
    last = max(1, -(-len(figures.lines) // size))
    number = min(requested_page(), last)
    shown = figures.lines[(number - 1) * size : number * size]
    page = Page(items=shown, number=number, size=size, total=len(figures.lines))
    return render_template(
        "analytics/index.html",
        page=page,
        overview=figures,
        lines=shown,
        form=form,
        status=status,
        statuses=STATUSES,
        sort=sort,
        descending=descending,
        query=form.query(),
    )


def _journey(journey_id: int) -> Journey:
    journey = db().get(Journey, journey_id)
    if journey is None:
        raise NotFound("there is no such journey")
    return journey


def _report(journey: Journey) -> tuple[FiltersForm, reports.JourneyReport]:
    form = FiltersForm(request.args)
    versions = {
        str(number): version_id
        for version_id, number in db().execute(
            select(JourneyVersion.id, JourneyVersion.number)
            .where(JourneyVersion.journey_id == journey.id)
            .order_by(JourneyVersion.number.desc())
        )
    }
    form.version.choices = [SelectChoice("", "All versions")] + [
        SelectChoice(number, f"Version {number}") for number in versions
    ]
    form.validate()
    now = utcnow()
    window = form.window(now, versions)
    report = reports.journey_report(db(), journey, window, form.trend_by(window, now))
    return form, report


@bp.get("/journeys/<int:journey_id>/analytics")
@requires(Role.viewer)
def journey(journey_id: int) -> Any:
    """A journey's figures over a period: headline, trend, funnel, uplift, channels."""
    found = _journey(journey_id)
    form, report = _report(found)
    return render_template(
        "analytics/journey.html",
        journey=found,
        form=form,
        report=report,
        chart=_chart_data(report),
        goal_names=TIME_TO_GOAL_NAMES,
        query=form.query(),
    )


@bp.get("/journeys/<int:journey_id>/analytics.csv")
@requires(Role.viewer)
def journey_csv(journey_id: int) -> Any:
    """One table of the page as CSV (`table`: summary, trend, funnel, uplift, ...)."""
    found = _journey(journey_id)
    table = request.args.get("table", "summary")
    if table not in TABLES:
        return Response(
            f"table must be one of: {', '.join(TABLES)}\n",
            status=400,
            mimetype="text/plain",
        )
    _, report = _report(found)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in ROWS[table](report):
        writer.writerow(row)
    name = re.sub(r"[^a-z0-9]+", "-", found.name.lower()).strip("-") or "journey"
    return Response(
        scrub(buffer.getvalue()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}-{table}.csv"'},
    )


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _window_text(window: Window) -> tuple[str, str]:
    return (
        window.since.isoformat() if window.since else "",
        window.until.isoformat() if window.until else "",
    )


def _summary(report: reports.JourneyReport) -> Iterable[list[Any]]:
    since, until = _window_text(report.window)
    yield ["figure", "value", "since", "until"]
    for name, value in (
        ("entered", report.entered),
        ("active", report.active),
        ("completed", report.completed),
        ("exited", report.exited),
        ("failed", report.failed),
        ("converted", report.converted),
        ("conversion_rate", _share(report.conversion_rate)),
        ("converted_cross_channel", report.cross_channel),
    ):
        yield [name, value, since, until]


def _trend(report: reports.JourneyReport) -> Iterable[list[Any]]:
    yield [report.granularity, "entered", "converted", "delivered", "failed"]
    for point in report.trend:
        yield [
            point.at.isoformat(),
            point.entered,
            point.converted,
            point.delivered,
            point.failed,
        ]


def _funnel(report: reports.JourneyReport) -> Iterable[list[Any]]:
    outcomes = sorted({k for node in report.funnel for k in node.outcomes})
    yield ["node", "type", "arrived", "here_now", *outcomes, "label", "summary"]
    for node in report.funnel:
        yield [
            node.node_id,
            node.node_type,
            node.arrived,
            node.here,
            *(node.outcomes.get(k, 0) for k in outcomes),
            node.label or "",
            node.summary,
        ]


def _uplift(report: reports.JourneyReport) -> Iterable[list[Any]]:
    yield [
        "split",
        "holdout_port",
        "treated",
        "treated_converted",
        "held_out",
        "held_out_converted",
        "difference",
        "ci95_low",
        "ci95_high",
        "relative_uplift",
    ]
    for uplift in report.uplifts:
        low, high = uplift.interval or (None, None)
        yield [
            uplift.node_id,
            uplift.holdout_port,
            uplift.treated,
            uplift.treated_converted,
            uplift.held,
            uplift.held_converted,
            _share(uplift.difference),
            _share(low),
            _share(high),
            _share(uplift.relative),
        ]


def _time_to_goal(report: reports.JourneyReport) -> Iterable[list[Any]]:
    yield ["time_to_goal", "up_to_seconds", "conversions"]
    for label, count in report.time_to_goal:
        yield [TIME_TO_GOAL_NAMES.get(label, label), label, count]


def _ms(value: float | None) -> str:
    if value is None:
        return ""
    return "over 30000" if value == float("inf") else f"{value:.0f}"


def _channels(report: reports.JourneyReport) -> Iterable[list[Any]]:
    yield [
        "channel",
        "delivered",
        "failed",
        "suppressed",
        "success_rate",
        "p50_ms_at_most",
        "p95_ms_at_most",
        "p99_ms_at_most",
    ]
    for channel in report.channels:
        yield [
            channel.name,
            channel.delivered,
            channel.failed,
            channel.suppressed,
            _share(channel.success_rate),
            _ms(channel.latency_ms(0.5)),
            _ms(channel.latency_ms(0.95)),
            _ms(channel.latency_ms(0.99)),
        ]


def _reasons(report: reports.JourneyReport) -> Iterable[list[Any]]:
    """Why deliveries were not made (suppressed, failed), and sends held for later."""
    yield ["channel", "reason", "deliveries", "outcome"]
    for channel in report.channels:
        for reason, count in sorted(channel.reasons.items()):
            yield [channel.name, reason, count, "not delivered"]
        for reason, count in sorted(channel.held.items()):
            yield [channel.name, reason, count, "held for later"]


ROWS = {
    "summary": _summary,
    "trend": _trend,
    "funnel": _funnel,
    "uplift": _uplift,
    "time_to_goal": _time_to_goal,
    "channels": _channels,
    "reasons": _reasons,
}


def _chart_data(report: reports.JourneyReport) -> dict[str, Any]:
    """What the charts draw (the tables beside them show the same figures)."""
    day = report.granularity == "day"
    return {
        "trend": {
            "labels": [
                point.at.strftime("%Y-%m-%d" if day else "%m-%d %H:00")
                for point in report.trend
            ],
            "entered": [point.entered for point in report.trend],
            "converted": [point.converted for point in report.trend],
            "delivered": [point.delivered for point in report.trend],
        },
        "funnel": {
            # Each step by its own name, else by what it does, as the canvas names it.
            "labels": [
                node.label
                or summaries.shortened(node.summary, 32)
                or node.title
                or node.node_id
                for node in report.funnel
            ],
            "arrived": [node.arrived for node in report.funnel],
            "here": [node.here for node in report.funnel],
        },
        "time_to_goal": {
            "labels": [
                TIME_TO_GOAL_NAMES.get(label, label) for label, _ in report.time_to_goal
            ],
            "conversions": [count for _, count in report.time_to_goal],
        },
    }
