"""The worker: RQ's SimpleWorker, refreshing its key in Redis only as often as it must."""

from rq.serializers import JSONSerializer

from engine.queues import queue
from engine.worker import Worker


def _worker(redis_client, born: bool = True) -> Worker:
    worker = Worker(
        [queue("default", redis_client)],
        connection=redis_client,
        serializer=JSONSerializer,
    )
    if born:
        worker.register_birth()  # as `work` does first
    return worker


def _last_heartbeat(redis_client, worker: Worker) -> bytes | None:
    return redis_client.hget(worker.key, "last_heartbeat")


def test_plain_refreshes_are_sent_once_per_interval_and_job_refreshes_always(
    redis_client,
):
    worker = _worker(redis_client)
    worker.heartbeat()
    first = _last_heartbeat(redis_client, worker)
    assert first is not None
    worker.heartbeat()
    worker.heartbeat()
    assert (
        _last_heartbeat(redis_client, worker) == first
    )  # within the interval: not sent
    worker.heartbeat(90)  # tied to a job's timeout: always written
    assert _last_heartbeat(redis_client, worker) != first
    assert 0 < redis_client.ttl(worker.key) <= 90


def test_a_state_is_written_once_until_it_changes(redis_client):
    worker = _worker(redis_client)
    worker.set_state("busy")
    assert redis_client.hget(worker.key, "state") == b"busy"
    redis_client.hset(worker.key, "state", "marker")
    worker.set_state("busy")  # already busy: nothing written
    assert redis_client.hget(worker.key, "state") == b"marker"
    worker.set_state("idle")
    assert redis_client.hget(worker.key, "state") == b"idle"


def test_it_runs_every_queued_job(redis_client):
    jobs = [
        queue("default", redis_client).enqueue("os.getpid", result_ttl=60)
        for _ in range(5)
    ]
    assert _worker(redis_client, born=False).work(burst=True, logging_level="WARNING")
    assert [job.get_status(refresh=True) for job in jobs] == ["finished"] * 5
