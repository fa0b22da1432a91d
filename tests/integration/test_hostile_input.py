"""Hostile or careless input is answered 4xx with its field, and never costs anyone else.

Findings 2, 4, 11, 12 and 16 of the security review of 2026-12-04.
"""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select
from werkzeug.exceptions import InternalServerError

from engine import migrate
from engine.channels import create_channel
from engine.crypto import SecretBox
from engine.db import create_db_engine
from engine.intake import commit, store
from engine.intake.contract import parse_event
from engine.journeys.starters import FOLDER as STARTERS
from engine.models import Event, Role
from tests.channels import post_event, refuse_storing
from tests.factories import api_client, login, make_channels, make_customer, make_user
from webapp.hooks.channels import forget

pytestmark = pytest.mark.security

EVENT = {
    "type": "signed_up",
    "customer": {"id": "c-1"},
    "traits": {"tier": "vip"},
    "properties": {"plan": "pro"},
}


def _with(path: str, value) -> str:
    """EVENT as JSON text with the raw JSON `value` at `path` (dots between keys)."""
    marker = "__value__"
    body = json.loads(json.dumps(EVENT))
    *parents, last = path.split(".")
    place = body
    for key in parents:
        place = place.setdefault(key, {})
    place[last] = marker
    return json.dumps(body).replace(f'"{marker}"', value)


@pytest.fixture
def web(session, settings):
    forget()
    made = create_channel(
        session,
        SecretBox(settings.encryption_key),
        "web",
        "Web",
        "web",
        rate_limit=5000,
    )
    other = create_channel(
        session,
        SecretBox(settings.encryption_key),
        "app",
        "App",
        "app",
        rate_limit=5000,
    )
    session.commit()
    return made, other


HOSTILE = [
    # (name, body text, field named in the answer)
    ("NaN", _with("properties.total", "NaN"), "properties.total"),
    ("Infinity", _with("traits.score", "-Infinity"), "traits.score"),
    (
        "a float that overflows",
        _with("properties.total", "1e10000"),
        "properties.total",
    ),
    ("a 10,000-digit integer", _with("properties.n", "1" * 10_000), "properties.n"),
    ("an integer past 64 bits", _with("properties.n", str(10**20)), "properties.n"),
    (
        "nesting past the recursion limit",
        _with("properties.deep", "[" * 10_000 + "]" * 10_000),
        "body",
    ),
    (
        "nesting past 32 levels",
        _with("properties.deep", "[" * 40 + "]" * 40),
        "properties.deep" + "[0]" * 30,  # the 33rd level
    ),
    ("a NUL character in type", _with("type", '"signed\\u0000up"'), "type"),
    ("a lone surrogate in an id", _with("customer.id", '"c-\\ud800"'), "customer.id"),
    (
        "a lone surrogate in a trait key",
        json.dumps({**EVENT, "traits": {"\ud800": 1}}),
        "traits",
    ),
    (
        "a key given twice",
        '{"type": "a", "type": "b", "customer": {"id": "c-1"}}',
        "type",
    ),
    (
        "a key over 200 characters",
        json.dumps({**EVENT, "traits": {"k" * 201: 1}}),
        "traits",
    ),
    (
        "more than 500 keys",
        json.dumps({**EVENT, "properties": {f"p{n}": n for n in range(501)}}),
        "properties",
    ),
    (
        "year 1 in another zone",
        _with("occurred_at", '"0001-01-01T00:00:00+01:00"'),
        "occurred_at",
    ),
    (
        "year 9999 in another zone",
        _with("occurred_at", '"9999-12-31T23:59:59-01:00"'),
        "occurred_at",
    ),
    ("before 2000", _with("occurred_at", '"1999-12-31T23:59:59Z"'), "occurred_at"),
]


@pytest.mark.parametrize(
    ("body", "field"), [case[1:] for case in HOSTILE], ids=[case[0] for case in HOSTILE]
)
def test_an_event_that_cannot_be_stored_gets_400_naming_its_field(
    client, session, web, body, field
):
    channel, _ = web
    response = post_event(client, "web", channel.inbound_secret, body)
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["field"] == field
    assert error["message"]
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Event)) == 0


def test_an_occurred_at_more_than_a_day_ahead_is_refused_and_one_hour_ahead_taken(
    client, web
):
    channel, _ = web
    ahead = datetime.now(UTC) + timedelta(days=2)
    soon = datetime.now(UTC) + timedelta(hours=1)
    far = post_event(
        client,
        "web",
        channel.inbound_secret,
        {**EVENT, "occurred_at": ahead.isoformat()},
    )
    near = post_event(
        client,
        "web",
        channel.inbound_secret,
        {**EVENT, "occurred_at": soon.isoformat()},
    )
    assert far.status_code == 400 and far.get_json()["error"]["field"] == "occurred_at"
    assert near.status_code == 202


def test_the_earliest_occurred_at_is_a_setting():
    body = {**EVENT, "occurred_at": "1995-06-01T00:00:00Z"}
    taken = parse_event(body, earliest=datetime(1990, 1, 1, tzinfo=UTC))
    assert taken.occurred_at == datetime(1995, 6, 1, tzinfo=UTC)


def test_a_batch_answers_each_poison_event_alone_and_keeps_the_good_ones(
    client, session, web
):
    channel, _ = web
    good = [{"id": f"good-{n}", **EVENT} for n in range(5)]
    poison = [
        {"id": "nan", **EVENT, "properties": {"total": "NaN"}},
        {"id": "year-one", **EVENT, "occurred_at": "0001-01-01T00:00:00+01:00"},
        {"id": "surrogate", **EVENT, "customer": {"id": "c-\ud800"}},
    ]
    text = json.dumps({"events": good[:2] + poison + good[2:]}).replace('"NaN"', "NaN")
    response = post_event(client, "web", channel.inbound_secret, text, path="/batch")
    assert response.status_code == 200
    body = response.get_json()
    assert body["accepted"] == 5 and body["rejected"] == 3
    statuses = {r["id"]: r["status"] for r in body["results"]}
    assert statuses == {
        **{f"good-{n}": 202 for n in range(5)},
        "nan": 400,
        "year-one": 400,
        "surrogate": 400,
    }
    fields = {r["id"]: r["error"]["field"] for r in body["results"] if "error" in r}
    assert fields == {
        "nan": "events[2].properties.total",
        "year-one": "events[3].occurred_at",
        "surrogate": "events[4].customer.id",
    }
    session.rollback()
    assert set(session.scalars(select(Event.webhook_id))) == {
        f"good-{n}" for n in range(5)
    }


def test_a_batch_whose_store_fails_on_one_event_stores_the_others_one_by_one(
    client, session, web, monkeypatch
):
    channel, _ = web
    refuse_storing(monkeypatch)
    events = [{"id": "a", **EVENT}, {"id": "refused", **EVENT}, {"id": "b", **EVENT}]
    response = post_event(
        client, "web", channel.inbound_secret, {"events": events}, path="/batch"
    )
    assert response.status_code == 200
    body = response.get_json()
    assert [r["status"] for r in body["results"]] == [202, 500, 202]
    assert body["accepted"] == 2 and body["rejected"] == 1
    session.rollback()
    assert set(session.scalars(select(Event.webhook_id))) == {"a", "b"}


def test_a_single_event_the_database_refuses_is_answered_as_a_server_error(
    client, session, web, monkeypatch
):
    channel, _ = web

    def refusing(*args):
        raise ValueError("the database refused it")

    monkeypatch.setattr(store, "store_events", refusing)
    response = post_event(client, "web", channel.inbound_secret, EVENT)
    assert response.status_code == 500
    assert response.get_json() == {
        "error": {
            "code": "internal_error",
            "message": InternalServerError.description,
        }
    }
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Event)) == 0


def _waiting(channel_id: int, webhook_id: str, type_: str = "signed_up"):
    body = {**EVENT, "type": type_, "customer": {"id": webhook_id}}
    parsed = parse_event({**EVENT, "customer": {"id": webhook_id}})
    parsed = type(parsed)(type_, parsed.identifiers, {}, {}, None)
    return commit._Waiting(channel_id, 5000, store.ToStore(webhook_id, body, parsed))


def test_an_event_the_database_refuses_costs_no_other_event_of_its_group_its_answer(
    database, session, settings, redis_client, web
):
    """Storing bypasses intake's checks here: whatever still fails fails alone."""
    one, other = (made.channel.id for made in web)
    committer = commit.GroupCommitter(
        database, redis_client, settings.partitions, 100_000, lambda _p: None
    )
    group = [_waiting(other, f"other-{n}") for n in range(3)]
    group += [_waiting(one, "poison", type_="bad\ud800")]
    group += [_waiting(one, f"same-{n}") for n in range(2)]
    group += [_waiting(other, f"later-{n}") for n in range(2)]

    answers = committer._apply(group)

    assert isinstance(answers[3], Exception)
    good = [a for n, a in enumerate(answers) if n != 3]
    assert all(isinstance(a, commit.Admitted) and a.stored for a in good)
    session.rollback()
    assert set(session.scalars(select(Event.webhook_id))) == {
        "other-0",
        "other-1",
        "other-2",
        "same-0",
        "same-1",
        "later-0",
        "later-1",
    }


def test_poison_from_one_channel_under_load_never_answers_another_channel_500(
    app, session, web
):
    """The review's probe: good events on one channel while another sends poison."""
    channel, other = web
    statuses: dict[str, list[int]] = {"good": [], "poison": []}
    lock = threading.Lock()
    poisons = [
        _with("occurred_at", '"0001-01-01T00:00:00+01:00"'),
        _with("customer.id", '"\\ud800"'),
        _with("type", '"x\\u0000"'),
    ]

    def send(kind: str, slug: str, secret: str, n: int) -> None:
        client = app.test_client()
        for i in range(n):
            body = EVENT if kind == "good" else poisons[i % len(poisons)]
            response = post_event(client, slug, secret, body)
            with lock:
                statuses[kind].append(response.status_code)

    threads = [
        threading.Thread(target=send, args=("good", "app", other.inbound_secret, 15))
        for _ in range(3)
    ] + [
        threading.Thread(
            target=send, args=("poison", "web", channel.inbound_secret, 15)
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses["good"] == [202] * 45
    assert statuses["poison"] == [400] * 45


def test_text_stored_by_an_earlier_version_still_renders(client, session):
    """A lone surrogate once taken in (SQLite JSON could hold it) no longer fails a page."""
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("PostgreSQL's JSONB never held a lone surrogate")
    customer = make_customer(
        session,
        identities={"id": "c-odd"},
        traits={"nickname": "odd \ud800 one", "\udc00key": "v"},
    )
    login(client, make_user(session, Role.viewer))
    listing = client.get("/customers/")
    profile = client.get(f"/customers/{customer.id}")
    assert listing.status_code == 200
    assert profile.status_code == 200
    assert "odd \ufffd one" in profile.get_data(as_text=True)


def test_the_migration_cleans_what_earlier_versions_stored(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0004")
    engine = create_db_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO customers (id, traits, consent, seen_channels, created_at,"
                " updated_at) VALUES (1, :traits, '{}', '[]', '2026-01-01', '2026-01-01')"
            ),
            {"traits": '{"a": "x\\ud800y", "b": NaN, "c": "Nancy", "\\u0000k": 1}'},
        )
    migrate.upgrade(url, "head")
    with engine.connect() as connection:
        raw = connection.execute(sa.text("SELECT traits FROM customers")).scalar_one()
    engine.dispose()
    assert json.loads(raw) == {"a": "x\ufffdy", "b": None, "c": "Nancy", "\ufffdk": 1}


@pytest.fixture
def api(client, session, settings):
    make_channels(
        session,
        SecretBox(settings.encryption_key),
        "email",
        "sms",
        "app",
        "support-desk",
    )
    return api_client(client, session, Role.admin)


def _starter() -> dict:
    return json.loads((STARTERS / "cart_recovery.json").read_text())


def test_numbers_no_database_holds_are_404_or_400_not_500(api, client, session):
    huge = "9" * 23
    journey_id = api.post("/api/v1/journeys", json=_starter()).get_json()["id"]
    assert api.get(f"/api/v1/customers/{huge}").status_code == 404
    assert (
        api.put(f"/api/v1/customers/{huge}/consent", json={"email": False}).status_code
        == 404
    )
    simulated = api.post(
        f"/api/v1/journeys/{journey_id}/simulate",
        data='{"version": 100000000000000000000}',
        content_type="application/json",
    )
    assert simulated.status_code == 400
    assert simulated.get_json()["error"]["field"] == "version"
    login(client, make_user(session, Role.marketer, email="m@example.com"))
    assert (
        client.get(f"/journeys/{journey_id}/draft.json?version={huge}").status_code
        == 404
    )
    assert (
        client.get(f"/journeys/{journey_id}/export?version={huge}").status_code == 404
    )
    assert client.get(f"/journeys/{huge}").status_code == 404
    assert client.get(f"/customers/{huge}").status_code == 404


def test_deep_json_to_the_journey_api_is_400(api):
    deep = '{"name": "x", "nodes": ' + "[" * 5000 + "]" * 5000 + "}"
    created = api.post("/api/v1/journeys", data=deep, content_type="application/json")
    assert created.status_code == 400
    assert "nested too deeply" in created.get_json()["error"]["message"]
    journey_id = api.post("/api/v1/journeys", json=_starter()).get_json()["id"]
    replaced = api.put(
        f"/api/v1/journeys/{journey_id}/draft",
        data=deep,
        content_type="application/json",
    )
    assert replaced.status_code == 400


def test_durations_that_overflow_are_refused_with_their_field(api):
    document = _starter()
    wait = next(node for node in document["nodes"] if node["type"] == "wait_for_event")
    wait["config"]["timeout"] = "P99999999999999999D"
    created = api.post("/api/v1/journeys", json=document)
    assert created.status_code == 422
    problems = created.get_json()["problems"]
    assert [(p["node"], p["field"]) for p in problems] == [
        (wait["id"], "config.timeout")
    ]
    assert "too long" in problems[0]["message"]
    rotated = api.post(
        "/api/v1/channels/app/rotate", json={"grace_period": "P99999999999999999D"}
    )
    assert rotated.status_code == 422
    assert rotated.get_json()["error"]["field"] == "grace_period"


def test_odd_shapes_in_journey_bodies_are_422_not_500(api):
    journey_id = api.post("/api/v1/journeys", json=_starter()).get_json()["id"]
    for version in ([], {}, [1], {"a": 1}, True):
        answer = api.post(
            f"/api/v1/journeys/{journey_id}/simulate", json={"version": version}
        )
        assert answer.status_code == 422, version
        assert answer.get_json()["error"]["field"] == "version"
    document = _starter()
    document["nodes"].insert(
        1, {"id": "note", "type": "update_profile", "config": {"set": 5}}
    )
    created = api.post("/api/v1/journeys", json=document)
    assert created.status_code == 422
    assert any(p["node"] == "note" for p in created.get_json()["problems"])


def test_a_name_with_a_nul_character_names_nothing(api, client, session):
    customer = make_customer(session, identities={"id": "c-1"})
    for method, path in [
        ("GET", "/api/v1/channels/a%00b"),
        ("POST", "/api/v1/channels/a%00b/rotate"),
        ("GET", "/api/v1/customers/id:c%00"),
        ("GET", "/api/v1/customers/id:c%00/timeline"),
        ("PUT", "/api/v1/customers/id:c%00/consent"),
        ("DELETE", "/api/v1/customers/id:%00"),
    ]:
        response = api.open(path, method=method, json={"email": False})
        assert response.status_code == 404, (method, path)
        assert response.get_json()["error"]["code"] == "not_found"
    login(client, make_user(session, Role.admin, email="a@example.com"))
    assert client.get("/channels/a%00b").status_code == 404
    assert client.get("/customers/%00").status_code == 404
    cursor = api.get(
        f"/api/v1/customers/{customer.id}/timeline?before=2026-01-01T00:00:00Z~delivery~%00"
    )
    assert cursor.status_code == 400
    assert cursor.get_json()["error"]["field"] == "before"


def test_a_webhook_id_with_a_nul_character_is_refused(client, web):
    made, _other = web
    response = post_event(client, "web", made.inbound_secret, EVENT, "m-\x00")
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "webhook-id"


def test_ids_past_an_integer_column_are_404_not_500(api, client, session):
    """Journey, version and user ids are PostgreSQL integers; customers' are bigints."""
    past = str(2**31)
    journey_id = api.post("/api/v1/journeys", json=_starter()).get_json()["id"]
    for method, path in [
        ("GET", f"/api/v1/journeys/{past}"),
        ("GET", f"/api/v1/journeys/{past}/stats"),
        ("GET", f"/api/v1/journeys/{past}/publish-plan"),
        ("POST", f"/api/v1/journeys/{past}/pause"),
    ]:
        assert api.open(path, method=method).status_code == 404, path
    simulated = api.post(
        f"/api/v1/journeys/{journey_id}/simulate", json={"version": 2**40}
    )
    assert simulated.status_code == 404
    assert api.get(f"/api/v1/customers/{2**40}").status_code == 404
    login(client, make_user(session, Role.admin, email="a@example.com"))
    assert client.get(f"/journeys/{past}").status_code == 404
    assert client.get(f"/customers/{2**40}").status_code == 404
    customer = make_customer(session, identities={"id": "c-9"})
    for key in ("event~" + "9" * 30, "step~" + "9" * 19, "profile~" + "1" * 5000):
        timeline = api.get(
            f"/api/v1/customers/{customer.id}/timeline?before=2026-01-01T00:00:00Z~{key}"
        )
        assert timeline.status_code in {200, 400}, key


def test_digits_python_cannot_read_as_a_number_are_refused_not_500(api, session):
    """`"²".isdigit()` holds, but int("²") fails, as does int() of 5,000 digits."""
    customer = make_customer(session, identities={"id": "c-9"})
    journey_id = api.post("/api/v1/journeys", json=_starter()).get_json()["id"]
    assert api.get("/api/v1/customers/²").status_code == 400
    timeline = f"/api/v1/customers/{customer.id}/timeline"
    assert api.get(f"{timeline}?limit=²").status_code == 200
    assert api.get(f"{timeline}?limit={'1' * 5000}").status_code == 200
    for bad in ("²", "1" * 5000):
        replaced = api.put(
            f"/api/v1/journeys/{journey_id}/draft",
            json=_starter(),
            headers={"If-Match": bad},
        )
        assert replaced.status_code == 400
        published = api.post(
            f"/api/v1/journeys/{journey_id}/publish",
            json={"migrate": {f"v{bad}:wait": "stay"}},
        )
        assert published.status_code in {200, 400, 422}


def test_a_simulation_version_of_the_wrong_type_is_422(api):
    journey_id = api.post("/api/v1/journeys", json=_starter()).get_json()["id"]
    for version in ([], {}, 1.5, True, None):
        response = api.post(
            f"/api/v1/journeys/{journey_id}/simulate", json={"version": version}
        )
        assert response.status_code == 422, version
        assert response.get_json()["error"]["field"] == "version"
