"""Redis behind a sentinel (REDIS_URL=redis+sentinel://...): the master killed mid-run, the
replica promoted, nothing lost and nothing sent twice."""

from __future__ import annotations

import time

import pytest

from tests.channels import Recorder, post_event
from tests.faults.test_faults import _assert_once_each, _prepare
from tests.infrastructure import RedisGroup


@pytest.fixture
def redis_group(tmp_path):
    group = RedisGroup(tmp_path / "redis-group")
    group.start()
    yield group
    group.stop()


def _post_until_taken(client, secret, first: int, count: int, size: int = 50) -> int:
    """Post events `first`.. in batches, sending a batch again while intake answers 503
    (its Redis is failing over); returns how many answers were 503."""
    unavailable = 0
    for start in range(first, first + count, size):
        events = [
            {"id": f"e-{n}", "type": "signed_up", "customer": {"id": f"c-{n}"}}
            for n in range(start, min(start + size, first + count))
        ]
        deadline = time.monotonic() + 60
        while True:
            response = post_event(
                client, "web", secret, {"events": events}, path="/batch"
            )
            if response.status_code == 200:
                assert response.get_json()["accepted"] == len(events)
                break
            assert response.status_code == 503, response.get_json()
            assert time.monotonic() < deadline, "intake did not come back"
            unavailable += 1
            time.sleep(0.2)
    return unavailable


def test_a_sentinel_failover_mid_run_loses_nothing(redis_group, stack_factory):
    stack = stack_factory(redis_url=redis_group.url)
    with Recorder() as recorder:
        app, secret = _prepare(stack, recorder)
        stack.start_workers(2)
        stack.start_scheduler()
        client = app.test_client()
        _post_until_taken(client, secret, 0, 400)
        stack.wait_for(lambda c: c["delivered"] >= 100, 120)

        old_master = redis_group.master_port()
        redis_group.kill_master()
        assert redis_group.master_port() != old_master
        _post_until_taken(client, secret, 400, 400)

        counts = stack.wait_for(
            lambda c: c["processed_events"] == 800 and c["delivered"] == 800, 240
        )
        assert counts["failed_events"] == 0 and counts["undelivered"] == 0
        _assert_once_each(stack, recorder, 800)
        # the workers and the scheduler went on with the promoted replica, none restarted
        assert stack.redis.info("server")["tcp_port"] == redis_group.ports["replica"]
        assert stack.revived == []
        app.extensions["throughline"].database.dispose()
