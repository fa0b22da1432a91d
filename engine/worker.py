"""Worker entry: load every job module, then work the queues without forking per job."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time

from redis.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker import DequeueStrategy

import engine.jobs  # noqa: F401 - preloaded so no job pays for imports
from engine import heap, logs, runtime, tracing
from engine.queues import all_queues
from engine.settings import keep_files_private, load_settings

log = logging.getLogger("throughline.worker")
# How often an idle or busy worker refreshes its key in Redis; its key lives for minutes
# (RQ's worker TTL), so this only bounds how stale "last heartbeat" looks on a dashboard.
HEARTBEAT_EVERY = 5.0
# How long a worker that lost Redis waits before it works again (a failover takes seconds).
RECONNECT_AFTER = 2.0


class Worker(SimpleWorker):
    """RQ's SimpleWorker without its per-job Redis chatter.

    RQ refreshes the worker's key three times around every job (three round trips each) and
    writes its state twice over; for jobs that take a few milliseconds that is most of a job's
    cost. Here the plain refreshes are sent at most every HEARTBEAT_EVERY seconds, in one round
    trip, and a state already written is not written again. The refreshes RQ ties to a job
    (with the job's timeout, in the job's pipeline) are untouched.
    """

    _refreshed_at = 0.0

    def heartbeat(
        self, timeout: int | None = None, pipeline: Pipeline | None = None
    ) -> None:
        if timeout is not None or pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        if time.monotonic() - self._refreshed_at < HEARTBEAT_EVERY:
            return
        with self.connection.pipeline(transaction=False) as batch:
            super().heartbeat(None, batch)
            batch.execute()
        self._refreshed_at = time.monotonic()

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            super().execute_job(job, queue)
        finally:
            heap.resume_collector()  # drains pause it; no pause outlives its job

    def set_state(self, state: str, pipeline: Pipeline | None = None) -> None:
        if pipeline is None and state == getattr(self, "_state", None):
            return
        super().set_state(state, pipeline)


def run(burst: bool = False, max_jobs: int | None = None) -> bool:
    """Work every queue until stopped (or until empty with `burst`).

    When Redis goes away under a job or between jobs (a restart, a sentinel failover), RQ
    gives up on the worker, by an error or by ending its loop; unless it was asked to stop,
    this process then waits a moment and works again under a new worker name, with the same
    connection, which finds the new master. What a lost job was doing is in SQL and is
    signalled again by the scheduler's recovery.
    """
    settings = load_settings()
    rt = runtime.Runtime.from_settings(settings)
    runtime.install(rt)
    once = burst or max_jobs is not None
    try:
        while True:
            worker: Worker | None = None
            try:
                worker = Worker(
                    all_queues(rt.redis), connection=rt.redis, serializer=JSONSerializer
                )
                log.info(
                    "worker %s on queues %s",
                    worker.name,
                    ", ".join(q.name for q in worker.queues),
                )
                # Round robin: a steady stream of event drains must not starve deliveries.
                finished = worker.work(
                    burst=burst,
                    max_jobs=max_jobs,
                    with_scheduler=False,
                    dequeue_strategy=DequeueStrategy.ROUND_ROBIN,
                    # RQ's own lines at INFO are four per job: hundreds a second of noise,
                    # and formatting them cost a fifth of a short job's time.
                    logging_level="WARNING",
                )
                if once or _asked_to_stop(worker):
                    return bool(finished)
                log.warning(
                    "the worker stopped unasked (Redis went away?); "
                    "working again in %.0f s",
                    RECONNECT_AFTER,
                )
            except StopRequested:
                return False
            except (RedisConnectionError, RedisTimeoutError) as error:
                if once or (worker is not None and _asked_to_stop(worker)):
                    raise
                log.warning(
                    "Redis went away (%s); working again in %.0f s",
                    type(error).__name__,
                    RECONNECT_AFTER,
                )
            if _pause(RECONNECT_AFTER):
                return False
    finally:
        rt.close()


def _asked_to_stop(worker: Worker) -> bool:
    """Whether SIGTERM or SIGINT reached the worker (RQ notes when)."""
    return getattr(worker, "_shutdown_requested_date", None) is not None


def _pause(seconds: float) -> bool:
    """Wait before working again; True when asked to stop meanwhile."""
    asked = threading.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = [signal.signal(s, lambda *_: asked.set()) for s in signals]
    try:
        asked.wait(seconds)
    finally:
        for number, handler in zip(signals, previous, strict=True):
            signal.signal(number, handler)
    return asked.is_set()


def start(burst: bool = False) -> bool:
    """A worker process as `throughline worker` and `python -m engine.worker` run it: its
    files private, its log and traces set up."""
    keep_files_private()
    logs.setup()
    tracing.configure("throughline-worker")
    heap.freeze_startup()
    return run(burst=burst)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m engine.worker")
    parser.add_argument(
        "--burst", action="store_true", help="stop when the queues are empty"
    )
    args = parser.parse_args()
    start(burst=args.burst)


if __name__ == "__main__":
    main()
