"""The worker and scheduler processes, against real Redis and SQL."""

import json
import os
import subprocess
import sys
import zlib
from datetime import timedelta

from rq.job import JobStatus
from sqlalchemy import select

from engine import jobs, runtime, scheduler
from engine.channels import create_channel
from engine.crypto import SecretBox
from engine.models import Channel, utcnow
from engine.queues import queue


def _rotated_channels(session, settings):
    box = SecretBox(settings.encryption_key)
    expired = create_channel(session, box, "old", "Old", "web").channel
    expired.previous_inbound_secret = box.encrypt("whsec_old")
    expired.previous_inbound_expires_at = utcnow() - timedelta(seconds=1)
    current = create_channel(session, box, "grace", "Grace", "web").channel
    current.previous_inbound_secret = box.encrypt("whsec_grace")
    current.previous_inbound_expires_at = utcnow() + timedelta(hours=1)
    session.commit()


def _environment(settings):
    env = dict(os.environ)
    env.update(
        THROUGHLINE_HOME=str(settings.home),
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
    )
    return env


def test_a_worker_process_runs_queued_jobs(settings, session, redis_client):
    _rotated_channels(session, settings)
    job = queue("default", redis_client).enqueue(jobs.expire_rotated_secrets)
    subprocess.run(
        [sys.executable, "-m", "engine.worker", "--burst"],
        env=_environment(settings),
        check=True,
        timeout=60,
        capture_output=True,
    )
    job.refresh()
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == 1
    session.expire_all()
    by_slug = {c.slug: c for c in session.scalars(select(Channel))}
    assert by_slug["old"].previous_inbound_secret is None
    assert by_slug["grace"].previous_inbound_secret is not None


def test_jobs_are_stored_as_json_with_ids_only(redis_client):
    job = queue("default", redis_client).enqueue(jobs.expire_rotated_secrets)
    raw = zlib.decompress(redis_client.hget(f"rq:job:{job.id}", "data"))
    assert json.loads(raw) == ["engine.jobs.expire_rotated_secrets", None, [], {}]


def test_the_scheduler_runs_each_task_on_its_interval(settings, redis_client):
    calls = []
    rt = runtime.Runtime.from_settings(settings)
    tasks = [
        scheduler.Periodic("often", 1, lambda rt: calls.append("often")),
        scheduler.Periodic("rarely", 60, lambda rt: calls.append("rarely")),
        scheduler.Periodic("broken", 1, lambda rt: 1 / 0),
    ]
    sched = scheduler.Scheduler(rt, tasks)
    due: dict[str, float] = {}
    sched.tick(due, now=100.0)
    sched.tick(due, now=100.5)
    sched.tick(due, now=101.0)
    rt.close()
    assert calls == ["often", "rarely", "often"]  # a failing task stops nothing else


def test_the_default_schedule_beats_and_enqueues_housekeeping(settings, redis_client):
    rt = runtime.Runtime.from_settings(settings)
    sched = scheduler.Scheduler(rt, scheduler.periodic_tasks())
    sched.tick({}, now=0.0)
    rt.close()
    assert redis_client.get(scheduler.HEARTBEAT_KEY) is not None
    names = [job.func_name for job in queue("default", redis_client).jobs]
    assert names == [
        "engine.jobs.expire_rotated_secrets",
        "engine.jobs.compact_counters",
        "engine.jobs.purge_schema_violations",
    ]
