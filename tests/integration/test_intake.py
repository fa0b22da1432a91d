"""POST /hooks/<slug>: Standard Webhooks verification, dedup, schema, limits."""

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from engine.channels import create_channel, rotate_secrets
from engine.crypto import SecretBox
from engine.intake import admission, commit, store
from engine.intake.contract import parse_event
from engine.models import Channel, Event, EventStatus, utcnow
from engine.queues import queue
from tests.channels import post_event, refuse_storing, signed_headers
from tests.conftest import make_settings
from tests.threads import at_once
from webapp.hooks.channels import forget

EVENT = {
    "type": "cart_abandoned",
    "customer": {"id": "c-42", "email": "A@B.c"},
    "traits": {"tier": "vip"},
    "properties": {"cart_value": 120.5},
    "occurred_at": "2026-11-21T10:00:00Z",
}


@pytest.fixture
def channel(session, settings):
    forget()
    made = create_channel(
        session,
        SecretBox(settings.encryption_key),
        "web",
        "Web",
        "web",
        rate_limit=1000,
    )
    session.commit()
    return made


def test_a_signed_event_is_stored_before_the_202_and_its_drain_is_queued(
    client, session, channel, redis_client
):
    response = post_event(
        client, "web", channel.inbound_secret, EVENT, webhook_id="evt-1"
    )
    assert response.status_code == 202
    event_id = response.get_json()["event_id"]
    session.rollback()
    stored = session.get(Event, event_id)
    assert stored.status is EventStatus.pending and stored.webhook_id == "evt-1"
    assert stored.payload == EVENT and stored.type == "cart_abandoned"
    assert stored.occurred_at == datetime(2026, 11, 21, 10, tzinfo=UTC)
    jobs = queue("events", redis_client).jobs
    assert [(j.func_name, list(j.args)) for j in jobs] == [
        ("engine.jobs.drain_events", [stored.partition])
    ]


def test_a_repeated_webhook_id_gets_the_first_answer_and_stores_nothing(
    client, session, channel, redis_client
):
    first = post_event(client, "web", channel.inbound_secret, EVENT, webhook_id="evt-1")
    again = post_event(
        client,
        "web",
        channel.inbound_secret,
        {**EVENT, "type": "other"},
        webhook_id="evt-1",
    )
    assert again.status_code == 202
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    session.rollback()
    assert len(session.scalars(select(Event)).all()) == 1
    assert len(queue("events", redis_client).jobs) == 1


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({**EVENT, "type": ""}, "type", "type is required"),
        ({**EVENT, "customer": {}}, "customer", "at least one identifier"),
        (
            {**EVENT, "customer": {"email": "not-an-email"}},
            "customer.email",
            "not an email address",
        ),
        ({**EVENT, "customer": {"id": ""}}, "customer.id", "non-empty"),
        ({**EVENT, "properties": [1, 2]}, "properties", "must be an object"),
        ({**EVENT, "occurred_at": "yesterday"}, "occurred_at", "ISO 8601"),
        ({**EVENT, "propertys": {}}, "propertys", "not part of an event"),
        ([EVENT], "body", "JSON object"),
    ],
)
def test_a_body_breaking_the_schema_gets_400_naming_the_field(
    client, channel, body, field, fragment
):
    response = post_event(client, "web", channel.inbound_secret, body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["field"] == field and fragment in error["message"]


def test_bad_json_missing_headers_and_bad_signatures(client, channel):
    assert post_event(client, "web", channel.inbound_secret, "{nope").status_code == 400
    data = json.dumps(EVENT)
    missing = client.post("/hooks/web", data=data, headers={"webhook-id": "x"})
    assert (
        missing.status_code == 400
        and missing.get_json()["error"]["field"] == "webhook-timestamp"
    )
    wrong_key = post_event(client, "web", "whsec_" + "A" * 32, EVENT)
    assert (
        wrong_key.status_code == 401
        and wrong_key.get_json()["error"]["code"] == "bad_signature"
    )
    headers = signed_headers(channel.inbound_secret, data)
    tampered = client.post(
        "/hooks/web", data=data.replace("120.5", "999"), headers=headers
    )
    assert tampered.status_code == 401
    for signature in ("v1", "v1,@@@notbase64", "garbage", "v1,AAAA v2"):
        headers = {
            **signed_headers(channel.inbound_secret, data),
            "webhook-signature": signature,
        }
        answer = client.post("/hooks/web", data=data, headers=headers)
        assert answer.status_code in (400, 401), signature
        assert answer.is_json
    headers = {
        **signed_headers(channel.inbound_secret, data),
        "webhook-timestamp": "soon",
    }
    assert client.post("/hooks/web", data=data, headers=headers).status_code == 400
    assert (
        client.post(
            "/hooks/web",
            data=b"\xff\xfe",
            headers=signed_headers(channel.inbound_secret, "x"),
        ).status_code
        == 400
    )


def test_timestamps_older_or_newer_than_five_minutes_are_refused(client, channel):
    old = post_event(
        client,
        "web",
        channel.inbound_secret,
        EVENT,
        at=datetime.now(UTC) - timedelta(minutes=6),
    )
    assert (
        old.status_code == 401 and old.get_json()["error"]["code"] == "stale_signature"
    )
    new = post_event(
        client,
        "web",
        channel.inbound_secret,
        EVENT,
        at=datetime.now(UTC) + timedelta(minutes=6),
    )
    assert new.status_code == 401
    fine = post_event(
        client,
        "web",
        channel.inbound_secret,
        EVENT,
        at=datetime.now(UTC) - timedelta(minutes=4),
    )
    assert fine.status_code == 202


@pytest.mark.parametrize("stamp", ["soon", "nan", "inf", "1e400", "-1e20", "12:00"])
def test_a_timestamp_that_is_no_unix_time_is_a_bad_header(client, channel, stamp):
    data = json.dumps(EVENT)
    headers = {
        **signed_headers(channel.inbound_secret, data),
        "webhook-timestamp": stamp,
    }
    answer = client.post("/hooks/web", data=data, headers=headers)
    assert answer.status_code == 400
    assert answer.get_json()["error"] == {
        "code": "bad_header",
        "message": "webhook-timestamp must be a Unix time in seconds",
        "field": "webhook-timestamp",
    }


def test_the_timestamp_is_judged_before_the_signature_library_is_asked(
    client, channel, monkeypatch
):
    """Whatever the library's errors say, a stale timestamp is 'stale' and any failed
    verification of a fresh one is 'bad signature'."""
    asked: list[str] = []

    def verify(self, data, headers, json_parse=True):
        asked.append(headers["webhook-id"])
        raise WebhookVerificationError("outside the allowed window")

    monkeypatch.setattr(Webhook, "verify", verify)
    for minutes, word in ((-6, "old"), (6, "new")):
        answer = post_event(
            client,
            "web",
            channel.inbound_secret,
            EVENT,
            at=datetime.now(UTC) + timedelta(minutes=minutes),
        )
        assert answer.status_code == 401
        assert answer.get_json()["error"] == {
            "code": "stale_signature",
            "message": f"message timestamp too {word}: the tolerance is 5 minutes",
            "field": "webhook-timestamp",
        }
    assert asked == []
    fresh = post_event(client, "web", channel.inbound_secret, EVENT, webhook_id="f-1")
    assert fresh.status_code == 401
    assert fresh.get_json()["error"] == {
        "code": "bad_signature",
        "message": "the signature does not match the body with this channel's secret",
        "field": "webhook-signature",
    }
    assert asked == ["f-1"]


def test_unknown_disabled_and_too_large(client, session, channel):
    assert (
        post_event(client, "nowhere", channel.inbound_secret, EVENT).status_code == 404
    )
    big = {**EVENT, "properties": {"blob": "x" * (257 * 1024)}}
    assert post_event(client, "web", channel.inbound_secret, big).status_code == 413
    session.scalars(select(Channel)).one().enabled = False
    session.commit()
    forget()
    disabled = post_event(client, "web", channel.inbound_secret, EVENT)
    assert (
        disabled.status_code == 409
        and disabled.get_json()["error"]["code"] == "channel_disabled"
    )


@pytest.mark.security
def test_unknown_slugs_keep_the_channel_cache_bounded(client, channel, monkeypatch):
    from webapp.hooks import channels

    monkeypatch.setattr(channels, "MAX_ENTRIES", 16, raising=False)
    assert post_event(client, "web", channel.inbound_secret, EVENT).status_code == 202
    for number in range(60):
        slug = f"nowhere-{number}"
        assert (
            post_event(client, slug, channel.inbound_secret, EVENT).status_code == 404
        )
        # A channel in steady use stays cached while unknown slugs come and go.
        if number % 8 == 0:
            assert client.post("/hooks/web").status_code != 404
    cached = list(channels._cache)
    assert len(cached) <= 16
    assert "web" in cached
    assert post_event(client, "web", channel.inbound_secret, EVENT).status_code == 202


def _ask_at_once(services, slug, count):
    """`count` threads ask for `slug` together; each one's answer, or the error it met."""
    from webapp.hooks.channels import intake_channel

    def ask(_number):
        try:
            return intake_channel(services, slug)
        except Exception as error:  # noqa: BLE001 - the answer is the error
            return error

    return at_once(count, ask)


def _channel_reads(database, fail_first=False, moment="before_cursor_execute"):
    """Slows each read of a channel (before it runs, or after with `moment`
    "after_cursor_execute"), and fails the first one, so that requests overlap; returns
    the list the reads are counted in."""
    reads: list[str] = []

    def slow(_conn, _cursor, statement, *_):
        if "FROM channels" in statement:
            reads.append(statement)
            time.sleep(0.2)
            if fail_first and len(reads) == 1:
                raise OperationalError(statement, {}, Exception("connection lost"))

    event.listen(database.engine, moment, slow)
    return reads


def test_requests_for_an_expired_channel_wait_for_one_read(client, channel):
    services = client.application.extensions["throughline"]
    reads = _channel_reads(services.database)

    answers = _ask_at_once(services, "web", 12)

    assert len(reads) == 1
    assert {answer.id for answer in answers} == {channel.channel.id}
    assert _ask_at_once(services, "nowhere", 6) == [None] * 6
    assert len(reads) == 2


def test_requests_waiting_for_a_read_that_fails_fail_with_it(client, channel):
    services = client.application.extensions["throughline"]
    reads = _channel_reads(services.database, fail_first=True)

    answers = _ask_at_once(services, "web", 8)

    assert len(reads) == 1
    assert all(isinstance(answer, OperationalError) for answer in answers)
    # nothing was kept: the next request reads again
    assert _ask_at_once(services, "web", 1)[0].id == channel.channel.id
    assert len(reads) == 2


def test_a_channel_that_cannot_be_read_is_a_503_to_retry(client, channel):
    services = client.application.extensions["throughline"]
    _channel_reads(services.database, fail_first=True)
    answer = post_event(client, "web", channel.inbound_secret, EVENT)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert answer.get_json()["error"]["code"] == "unavailable"
    assert post_event(client, "web", channel.inbound_secret, EVENT).status_code == 202


def test_a_read_begun_before_the_cache_is_forgotten_is_not_kept(
    client, session, channel
):
    from webapp.hooks.channels import intake_channel

    services = client.application.extensions["throughline"]
    reads = _channel_reads(services.database, moment="after_cursor_execute")
    first: list = []
    reader = threading.Thread(
        target=lambda: first.append(intake_channel(services, "web"))
    )
    reader.start()
    time.sleep(0.05)  # the read is under way, with the channel still enabled
    session.scalars(select(Channel)).one().enabled = False
    session.commit()
    forget()

    after = intake_channel(services, "web")
    reader.join(10)

    assert len(reads) == 2
    assert first[0].enabled and not after.enabled
    assert not intake_channel(services, "web").enabled  # the newer read is the one kept
    assert len(reads) == 2


def test_both_secrets_verify_during_a_rotation_grace_period(
    client, session, channel, settings
):
    row = session.scalars(select(Channel)).one()
    rotated = rotate_secrets(
        session, SecretBox(settings.encryption_key), row, timedelta(hours=1), utcnow()
    )
    session.commit()
    forget()
    assert post_event(client, "web", channel.inbound_secret, EVENT).status_code == 202
    assert post_event(client, "web", rotated.inbound_secret, EVENT).status_code == 202
    row.previous_inbound_expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    forget()
    assert post_event(client, "web", channel.inbound_secret, EVENT).status_code == 401
    assert post_event(client, "web", rotated.inbound_secret, EVENT).status_code == 202


def test_over_the_channel_rate_gets_429_with_retry_after(client, session, channel):
    session.scalars(select(Channel)).one().rate_limit = 3
    session.commit()
    forget()
    started = time.time()
    answers = []
    while len(answers) < 30 and not any(a.status_code == 429 for a in answers):
        answers.append(post_event(client, "web", channel.inbound_secret, EVENT))
    # The limit counts per second: a burst that crosses a second boundary gets two windows.
    windows = int(time.time()) - int(started) + 1
    assert [a.status_code for a in answers].count(202) <= 3 * windows
    limited = [a for a in answers if a.status_code == 429]
    assert limited and limited[0].headers["Retry-After"] == "1"


def test_past_the_backlog_bound_intake_answers_429(
    app_factory, tmp_path, database_url, redis_url, redis_client, session
):
    settings = make_settings(
        tmp_path / "home", database_url, redis_url, THROUGHLINE_BACKLOG_LIMIT="2"
    )
    made = create_channel(
        session, SecretBox(settings.encryption_key), "web", "Web", "web"
    )
    session.commit()
    forget()
    client = app_factory(settings).test_client()
    answers = [
        post_event(client, "web", made.inbound_secret, EVENT).status_code
        for _ in range(3)
    ]
    assert answers == [202, 202, 429]
    overloaded = post_event(client, "web", made.inbound_secret, EVENT)
    assert (
        overloaded.headers["Retry-After"] == "5"
        and overloaded.get_json()["error"]["code"] == "overloaded"
    )


def test_a_batch_is_answered_per_event(client, session, channel):
    events = [
        {"id": "b-1", **EVENT},
        {"id": "b-2", **EVENT, "customer": {}},
        {"id": "b-1", **EVENT},
        {**EVENT},
        {"id": "b-3", **EVENT, "type": "viewed"},
    ]
    response = post_event(
        client, "web", channel.inbound_secret, {"events": events}, path="/batch"
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["accepted"] == 2 and body["rejected"] == 3
    statuses = [(r["id"], r["status"]) for r in body["results"]]
    assert statuses == [
        ("b-1", 202),
        ("b-2", 400),
        ("b-1", 400),
        (None, 400),
        ("b-3", 202),
    ]
    assert body["results"][1]["error"]["field"] == "events[1].customer"
    assert "appears twice" in body["results"][2]["error"]["message"]
    again = post_event(
        client,
        "web",
        channel.inbound_secret,
        {"events": [{"id": "b-1", **EVENT}]},
        path="/batch",
    ).get_json()
    assert again["results"][0]["duplicate"] is True
    assert again["results"][0]["event_id"] == body["results"][0]["event_id"]
    too_many = post_event(
        client,
        "web",
        channel.inbound_secret,
        {"events": [{"id": str(i), **EVENT} for i in range(1001)]},
        path="/batch",
    )
    assert too_many.status_code == 413
    assert (
        post_event(
            client, "web", channel.inbound_secret, {"events": []}, path="/batch"
        ).status_code
        == 400
    )


def _waiting(channel_id: int, webhook_id: str, rate_limit: int = 1000):
    body = {**EVENT, "customer": {"id": webhook_id}}
    return commit._Waiting(
        channel_id, rate_limit, store.ToStore(webhook_id, body, parse_event(body))
    )


def _event_inserts(monkeypatch) -> list[int]:
    """The statements inserting events, by channel: one per call of the database's insert
    (PostgreSQL's goes through the driver, where SQLAlchemy's events do not see it)."""
    inserts: list[int] = []
    for name in ("_insert_postgres", "_insert_sqlite"):
        real = getattr(store, name)

        def counting(connection, channel_id, rows, now, real=real):
            inserts.append(channel_id)
            return real(connection, channel_id, rows, now)

        monkeypatch.setattr(store, name, counting)
    return inserts


def test_a_group_of_single_events_is_admitted_stored_and_signalled_at_once(
    database, session, settings, redis_client, channel, monkeypatch
):
    other = create_channel(
        session, SecretBox(settings.encryption_key), "app", "App", "app", rate_limit=2
    )
    session.commit()
    web, app = channel.channel.id, other.channel.id
    drains: list[int] = []
    committer = commit.GroupCommitter(
        database, redis_client, settings.partitions, 1000, drains.append
    )
    commits: list[int] = []
    event.listen(database.engine, "commit", lambda _conn: commits.append(1))
    inserts = _event_inserts(monkeypatch)
    group = [_waiting(web, f"g-{n}") for n in range(40)]
    group += [_waiting(web, "g-0")]  # the same id twice in one group: one event
    group += [_waiting(app, f"a-{n}", rate_limit=2) for n in range(3)]

    answers = committer._apply(group)

    # one insert per channel; one transaction on SQLite, none needed on PostgreSQL
    assert sorted(inserts) == sorted([web, app])
    assert len(commits) == (0 if database.engine.dialect.name == "postgresql" else 1)
    web_answers = answers[:41]
    assert all(a.verdict == admission.ADMITTED for a in web_answers)
    assert len({a.stored.event_id for a in web_answers}) == 40
    # ids follow arrival order: drains apply a partition's events in id order
    first_ids = [a.stored.event_id for a in web_answers[:40]]
    assert first_ids == sorted(first_ids)
    assert [a.stored.duplicate for a in web_answers] == [False] * 40 + [True]
    assert web_answers[40].stored.event_id == web_answers[0].stored.event_id
    # the app channel's rate is 2 a second: its third event is refused, not stored
    assert [a.verdict for a in answers[41:]] == [
        admission.ADMITTED,
        admission.ADMITTED,
        admission.OVER_RATE,
    ]
    assert answers[43].stored is None
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Event)) == 42
    stored_partitions = set(session.scalars(select(Event.partition)))
    assert sorted(drains) == sorted(stored_partitions)  # each partition signalled once
    assert int(redis_client.get(admission.BACKLOG_KEY)) == 42


def test_single_events_from_many_threads_each_get_their_own_answer(
    database, session, settings, redis_client, channel
):
    committer = commit.GroupCommitter(
        database, redis_client, settings.partitions, 100_000, lambda _p: None
    )
    web = channel.channel.id
    answers: dict[str, int] = {}
    lock = threading.Lock()

    def post(thread: int) -> None:
        for n in range(25):
            webhook_id = f"t{thread}-{n}"
            answer = committer.submit(web, 100_000, _waiting(web, webhook_id).item)
            with lock:
                answers[webhook_id] = answer.stored.event_id

    threads = [threading.Thread(target=post, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 200 and len(set(answers.values())) == 200
    session.rollback()
    rows = dict(session.execute(select(Event.webhook_id, Event.id)).all())
    assert rows == answers


def test_take_admits_a_batch_whole_or_not_at_all_and_stores_it_in_one_insert(
    database, session, settings, redis_client, channel, monkeypatch
):
    drains: list[int] = []
    committer = commit.GroupCommitter(
        database, redis_client, settings.partitions, 1000, drains.append
    )
    web = channel.channel.id
    items = [_waiting(web, f"b-{n}").item for n in range(3)]
    inserts = _event_inserts(monkeypatch)

    assert committer.take(web, 2, items) == commit.Taken(admission.OVER_RATE)
    assert inserts == [] and drains == []

    taken = committer.take(web, 1000, items)
    assert taken.verdict == admission.ADMITTED and len(inserts) == 1
    assert [(s.webhook_id, s.duplicate) for s in taken.stored] == [
        ("b-0", False),
        ("b-1", False),
        ("b-2", False),
    ]
    again = committer.take(web, 1000, items)
    assert [s.event_id for s in again.stored] == [s.event_id for s in taken.stored]
    assert all(s.duplicate for s in again.stored)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Event)) == 3
    assert sorted(drains) == sorted(set(session.scalars(select(Event.partition))))
    assert int(redis_client.get(admission.BACKLOG_KEY)) == 3


def test_take_answers_none_for_an_event_the_database_refuses_alone(
    database, session, settings, redis_client, channel, monkeypatch
):
    committer = commit.GroupCommitter(
        database, redis_client, settings.partitions, 1000, lambda _p: None
    )
    web = channel.channel.id
    real = store.store_events

    def refusing(connection, channel_id, items, *args):
        if any(item.webhook_id.startswith("refused") for item in items):
            raise ValueError("the database refused it")
        return real(connection, channel_id, items, *args)

    monkeypatch.setattr(store, "store_events", refusing)
    single = committer.take(web, 1000, [_waiting(web, "refused").item])
    assert single == commit.Taken(admission.ADMITTED, (None,))
    batch = committer.take(
        web, 1000, [_waiting(web, w).item for w in ("a", "refused-too", "b")]
    )
    assert batch.verdict == admission.ADMITTED
    assert [s and s.webhook_id for s in batch.stored] == ["a", None, "b"]
    fine = committer.take(web, 1000, [_waiting(web, "c").item])
    assert fine.stored[0].webhook_id == "c"
    session.rollback()
    assert set(session.scalars(select(Event.webhook_id))) == {"a", "b", "c"}


def test_the_committing_thread_keeps_its_connection_on_postgresql_until_it_fails(
    database, session, settings, redis_client, channel, monkeypatch
):
    committer = commit.GroupCommitter(
        database, redis_client, settings.partitions, 1000, lambda _p: None
    )
    web = channel.channel.id
    checkouts: list[int] = []
    event.listen(database.engine, "checkout", lambda *_: checkouts.append(1))
    storage = commit._Storage(database.engine, keep=True)
    refuse_storing(monkeypatch)
    postgres = database.engine.dialect.name == "postgresql"

    def group(*ids):
        return committer._apply([_waiting(web, i) for i in ids], storage)

    assert all(a.stored for a in group("k-1", "k-2") + group("k-3"))
    assert len(checkouts) == (1 if postgres else 2)  # kept, or one per group
    # After any failure the connection is given up: the group's events are then stored
    # one by one, the first on a new connection, which the refused one gives up too.
    answers = group("k-4", "refused")
    assert answers[0].stored and isinstance(answers[1], ValueError)
    assert len(checkouts) == (2 if postgres else 5)
    assert all(a.stored for a in group("k-5"))
    assert len(checkouts) == (3 if postgres else 6)
    if postgres:
        # The server drops the connection: that group fails whole (its requests get 503
        # and retry); the next commits on a new connection, in autocommit.
        (pid,) = storage._kept.exec_driver_sql("select pg_backend_pid()").one()
        with database.engine.connect() as other:
            other.exec_driver_sql(f"select pg_terminate_backend({int(pid)})")
        with pytest.raises(OperationalError):
            group("k-lost")
    assert all(a.stored for a in group("k-6"))
    storage.close()
    session.rollback()
    assert set(session.scalars(select(Event.webhook_id))) == {
        f"k-{n}" for n in range(1, 7)
    }


def test_intake_without_redis_answers_503_and_stores_nothing(
    app_factory, tmp_path, database_url, redis_url, session
):
    settings = make_settings(tmp_path / "home", database_url, "redis://127.0.0.1:1/0")
    made = create_channel(
        session, SecretBox(settings.encryption_key), "web", "Web", "web"
    )
    session.commit()
    forget()
    client = app_factory(settings).test_client()
    answer = post_event(client, "web", made.inbound_secret, EVENT)
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert answer.get_json()["error"]["code"] == "unavailable"
    batch = post_event(
        client,
        "web",
        made.inbound_secret,
        {"events": [{"id": "b-1", **EVENT}]},
        path="/batch",
    )
    assert batch.status_code == 503
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Event)) == 0


def test_events_stored_on_a_connection_commit_with_its_transaction(
    database, session, settings, channel
):
    web = channel.channel.id
    with database.engine.connect() as connection:
        (stored,) = store.store_events(
            connection,
            web,
            [_waiting(web, "txn-1").item],
            settings.partitions,
            utcnow(),
        )
        connection.commit()
    with database.engine.connect() as connection:
        store.store_events(
            connection,
            web,
            [_waiting(web, "txn-2").item],
            settings.partitions,
            utcnow(),
        )
        connection.rollback()
    session.rollback()
    assert set(session.scalars(select(Event.webhook_id))) == {"txn-1"}
    assert not stored.duplicate
