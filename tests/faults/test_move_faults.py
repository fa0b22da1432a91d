"""A move of runs between versions survives workers killed with kill -9 in the middle."""

from __future__ import annotations

import random
from collections import Counter

from sqlalchemy import func, select

from engine.execution import drains
from engine.journeys import lifecycle
from engine.models import Delivery, Journey, MoveStatus, Run, RunMove, RunStatus, Step
from tests.channels import Recorder
from tests.faults.test_faults import _post_batches, _prepare

WAITING = {
    "schema": "throughline.journey/v1",
    "name": "Welcome, after a day",
    "entry": {"reentry": "never", "max_entries": None},
    "nodes": [
        {"id": "start", "type": "trigger", "config": {"event": "signed_up"}},
        {"id": "hold", "type": "wait", "config": {"duration": "P1D"}},
        {
            "id": "mail",
            "type": "send",
            "config": {
                "channel": "email",
                "message": {"subject": "Hi {{ customer.id }}"},
            },
        },
        {"id": "end", "type": "exit", "config": {}},
    ],
    "edges": [
        {"from": "start", "to": "hold"},
        {"from": "hold", "to": "mail"},
        {"from": "mail", "to": "end"},
    ],
    "layout": {},
}


def test_kill_9_workers_while_runs_move_moves_each_once_and_sends_once(stack_factory):
    stack = stack_factory()
    count = 2000
    with Recorder() as recorder:
        app, secret = _prepare(stack, recorder, WAITING)
        with stack.database.session() as session:
            journey_id = session.scalar(select(Journey.id))
        stack.start_workers(2)
        stack.start_scheduler()
        _post_batches(app.test_client(), secret, count)
        stack.wait_for(lambda c: c["processed_events"] == count, 240)

        # Version 2 sends the waiting customers straight to the message. A writer session:
        # on SQLite it takes the write lock before it reads, so the scheduler's and the
        # workers' commits meanwhile cannot leave it writing from a stale snapshot.
        with stack.database.session(writer=True) as session:
            journey = session.get(Journey, journey_id)
            ctx = lifecycle.check_context(session)
            changed = {**WAITING, "nodes": [dict(n) for n in WAITING["nodes"]]}
            changed["nodes"][2] = {
                "id": "mail",
                "type": "send",
                "config": {"channel": "email", "message": {"subject": "Hello again"}},
            }
            lifecycle.replace_draft(session, journey, changed, ctx, None)
            _version, move = lifecycle.publish_with_plan(
                session, journey, ctx, None, {"hold": "mail"}
            )
            move_id = move.id
        drains.enqueue_move(stack.redis, move_id)
        kills = 0
        rng = random.Random(11)

        def chaos():
            nonlocal kills
            if kills < 4 and rng.random() < 0.5:
                stack.kill_worker(rng.randrange(len(stack.workers)))
                kills += 1

        stack.wait_for(lambda c: c["delivered"] == count, 300, chaos)
        assert kills >= 2
        with stack.database.session() as session:
            assert session.get(RunMove, move_id).status is MoveStatus.done
            runs = session.scalars(select(Run)).all()
            assert len(runs) == count
            assert {r.status for r in runs} == {RunStatus.completed}
            moved = Counter(
                session.scalars(select(Step.run_id).where(Step.outcome == "moved"))
            )
            assert len(moved) == count and set(moved.values()) == {1}
            per_run = Counter(session.scalars(select(Delivery.run_id)))
            assert len(per_run) == count and set(per_run.values()) == {1}
            ids = set(session.scalars(select(Delivery.id)))
            assert session.scalar(select(func.count()).select_from(Delivery)) == count
        received = Counter(r["headers"]["webhook-id"] for r in recorder.delivered())
        assert set(received) == ids
        print(
            f"killed {kills} workers while moving {count} runs: each moved once, sent once"
        )
        app.extensions["throughline"].database.dispose()
