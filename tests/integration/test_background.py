"""The worker and scheduler processes, against real Redis and SQL."""

import json
import os
import subprocess
import sys
import zlib
from datetime import timedelta

from rq.job import JobStatus
from sqlalchemy import select

from engine import jobs, leadership, runtime, scheduler
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
    fence = leadership.next_fence(session, "test")
    session.commit()
    job = queue("default", redis_client).enqueue(
        jobs.housekeeping, "expire_rotated_secrets", 7, fence
    )
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
    job = queue("default", redis_client).enqueue(
        jobs.housekeeping, "expire_rotated_secrets", 7, 1
    )
    raw = zlib.decompress(redis_client.hget(f"rq:job:{job.id}", "data"))
    assert json.loads(raw) == [
        "engine.jobs.housekeeping",
        None,
        ["expire_rotated_secrets", 7, 1],
        {},
    ]


def test_the_scheduler_runs_each_task_on_its_interval(settings, redis_client):
    calls = []
    rt = runtime.Runtime.from_settings(settings)
    tasks = [
        scheduler.Periodic("often", 1, lambda rt: calls.append("often")),
        scheduler.Periodic("rarely", 60, lambda rt: calls.append("rarely")),
        scheduler.Periodic("broken", 1, lambda rt: 1 / 0),
    ]
    sched = scheduler.Scheduler(rt, tasks)
    sched.tick(now=100.0, fence=1)
    sched.tick(now=100.5, fence=1)
    sched.tick(now=101.0, fence=1)
    sched.tick(now=119.9, fence=1)
    sched.tick(now=120.0, fence=1)
    rt.close()
    # a failing task stops nothing else; slots are counted from the epoch, so the rare
    # task's next one begins at 120 s
    assert calls == ["often", "rarely", "often", "often", "often", "rarely"]


def test_the_default_schedule_beats_and_enqueues_housekeeping(settings, redis_client):
    rt = runtime.Runtime.from_settings(settings)
    sched = scheduler.Scheduler(rt, scheduler.periodic_tasks())
    sched.tick(now=3600.0 * 10, fence=4)
    rt.close()
    assert redis_client.get(scheduler.HEARTBEAT_KEY) is not None
    queued = [
        (job.func_name, tuple(job.args)) for job in queue("default", redis_client).jobs
    ]
    assert queued == [
        ("engine.jobs.housekeeping", ("expire_rotated_secrets", 600, 4)),
        ("engine.jobs.housekeeping", ("compact_counters", 120, 4)),
        ("engine.jobs.housekeeping", ("purge_schema_violations", 10, 4)),
        ("engine.jobs.housekeeping", ("maintain_partitions", 10, 4)),
    ]


def test_housekeeping_jobs_queued_before_fencing_still_run(
    settings, session, engine_runtime
):
    _rotated_channels(session, settings)
    assert jobs.expire_rotated_secrets() == 1
    assert jobs.compact_counters() == 0
    assert jobs.purge_schema_violations() == 0
