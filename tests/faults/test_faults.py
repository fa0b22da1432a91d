"""Nothing lost, nothing done twice: worker kill -9, Redis restart, channel outage, replays."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import httpx
import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from engine.channels import create_channel
from engine.crypto import SecretBox
from engine.journeys import lifecycle
from engine.models import Delivery, Event, Run
from tests.channels import Recorder, post_event, signed_headers
from tests.world import WELCOME
from webapp import create_app
from webapp.hooks.channels import forget


def _prepare(stack, recorder, document=WELCOME):
    """Channels, the journey, and an in-process intake talking to the stack's Redis."""
    forget()
    secret = channels_and_journey(stack, recorder, document)
    return create_app(stack.settings, TESTING=True), secret


def channels_and_journey(stack, recorder, document=WELCOME) -> str:
    """The `web` channel, the `email` channel (`recorder`) and `document` published;
    returns web's inbound secret."""
    box = SecretBox(stack.settings.encryption_key)
    with stack.database.session() as session:
        web = create_channel(session, box, "web", "Web", "web", rate_limit=100_000)
        email = create_channel(
            session,
            box,
            "email",
            "Email",
            "email",
            outbound_url=recorder.url,
            rate_limit=100_000,
            allowed_networks=stack.settings.outbound_allowed_networks,
        )
        ctx = lifecycle.check_context(session)
        journey, _ = lifecycle.create_journey(session, document, ctx, None)
        lifecycle.publish(session, journey, ctx, None)
    recorder.secret = email.outbound_secret
    return web.inbound_secret


def _post_batches(client, secret, count, start=0, size=100):
    for first in range(start, start + count, size):
        events = [
            {"id": f"e-{n}", "type": "signed_up", "customer": {"id": f"c-{n}"}}
            for n in range(first, min(first + size, start + count))
        ]
        response = post_event(client, "web", secret, {"events": events}, path="/batch")
        assert response.status_code == 200 and response.get_json()["accepted"] == len(
            events
        )


def _assert_once_each(stack, recorder, expected):
    with stack.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == expected
        assert session.scalar(select(func.count()).select_from(Run)) == expected
        per_run = Counter(session.scalars(select(Delivery.run_id)))
        assert len(per_run) == expected and set(per_run.values()) == {1}, (
            "a run made two deliveries"
        )
        ids = set(session.scalars(select(Delivery.id)))
    delivered = recorder.delivered()
    received_ids = Counter(r["headers"]["webhook-id"] for r in delivered)
    assert set(received_ids) == ids, "a delivery never reached the channel"
    assert recorder.bad_signatures == 0
    return sum(received_ids.values()) - len(
        received_ids
    )  # repeats of one id: deduped by the channel


def test_kill_9_workers_during_1000_events_loses_nothing_and_sends_nothing_twice(
    stack_factory,
):
    stack = stack_factory()
    with Recorder() as recorder:
        app, secret = _prepare(stack, recorder)
        stack.start_workers(2)
        stack.start_scheduler()
        client = app.test_client()
        _post_batches(client, secret, 1000)
        kills = 0
        rng = random.Random(7)

        def chaos():
            nonlocal kills
            if kills < 6 and rng.random() < 0.3:
                stack.kill_worker(rng.randrange(len(stack.workers)))
                kills += 1

        counts = stack.wait_for(
            lambda c: c["processed_events"] == 1000 and c["delivered"] == 1000,
            240,
            chaos,
        )
        assert counts["failed_events"] == 0 and counts["undelivered"] == 0
        assert kills >= 3
        repeats = _assert_once_each(stack, recorder, 1000)
        print(
            f"killed {kills} workers; 1000 events applied once; 1000 deliveries; {repeats} repeated POSTs (same id)"
        )
        app.extensions["throughline"].database.dispose()


def test_redis_losing_everything_mid_run_is_recovered_by_the_sweeper(stack_factory):
    stack = stack_factory()
    with Recorder() as recorder:
        app, secret = _prepare(stack, recorder)
        client = app.test_client()
        _post_batches(client, secret, 500)  # stored, drains queued, no worker yet
        stack.restart_redis(lose_everything=True)  # the queued drains are gone
        assert stack.redis.dbsize() == 0
        _post_batches(client, secret, 500, start=500)
        stack.start_workers(2)
        stack.start_scheduler()
        counts = stack.wait_for(lambda c: c["delivered"] >= 200, 120)
        stack.restart_redis(lose_everything=True)  # again, mid-run
        counts = stack.wait_for(
            lambda c: c["processed_events"] == 1000 and c["delivered"] == 1000, 240
        )
        assert counts["failed_events"] == 0 and counts["undelivered"] == 0
        _assert_once_each(stack, recorder, 1000)
        app.extensions["throughline"].database.dispose()


def test_a_channel_down_for_a_while_gets_every_delivery_once_and_the_breaker_opens_then_closes(
    stack_factory,
):
    # Open for 4 seconds at a time: long enough for the watch below to see it on a busy
    # machine, where one of its rounds (a query, a Redis read, a quarter second) can take 2.
    stack = stack_factory(
        THROUGHLINE_BREAKER_FAIL_MAX="3", THROUGHLINE_BREAKER_RESET_SECONDS="4"
    )
    with Recorder() as recorder:
        app, secret = _prepare(stack, recorder)
        recorder.answers = [500] * 12  # down until 12 calls have failed
        stack.start_workers(2)
        stack.start_scheduler()
        _post_batches(app.test_client(), secret, 40)
        states: list[str] = []

        def watch():
            with stack.database.session() as session:
                channel_id = session.scalar(select(Delivery.channel_id).limit(1))
            state = stack.redis.get(f"throughline:breaker:{channel_id}:state")
            if state and (not states or states[-1] != state.decode()):
                states.append(state.decode())

        stack.wait_for(lambda c: c["delivered"] == 40, 180, watch)
        watch()
        assert "open" in states and states[-1] == "closed", states
        failures = [r for r in recorder.received if r["status"] == 500]
        assert len(failures) == 12
        _assert_once_each(stack, recorder, 40)
        app.extensions["throughline"].database.dispose()


def test_the_same_webhook_id_100_times_from_10_threads_is_one_event_and_one_run(
    stack_factory,
):
    stack = stack_factory()
    with Recorder() as recorder:
        app, secret = _prepare(stack, recorder)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        body = '{"type": "signed_up", "customer": {"id": "c-1"}}'
        answers: list[tuple[int, int]] = []
        lock = threading.Lock()

        def replay():
            with httpx.Client(
                base_url=f"http://127.0.0.1:{server.server_port}"
            ) as http:
                for _ in range(10):
                    headers = signed_headers(secret, body, webhook_id="same-id")
                    response = http.post("/hooks/web", content=body, headers=headers)
                    with lock:
                        answers.append(
                            (response.status_code, response.json()["event_id"])
                        )

        threads = [threading.Thread(target=replay) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        server.shutdown()
        assert len(answers) == 100 and {status for status, _ in answers} == {202}
        assert len({event_id for _, event_id in answers}) == 1
        stack.start_workers(2)
        stack.start_scheduler()
        stack.wait_for(lambda c: c["processed_events"] == 1 and c["delivered"] == 1, 60)
        time.sleep(1)
        _assert_once_each(stack, recorder, 1)
        app.extensions["throughline"].database.dispose()


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
