"""Worker entry: load every job module, then work the queues without forking per job."""

from __future__ import annotations

import argparse
import logging

from rq import SimpleWorker
from rq.serializers import JSONSerializer
from rq.worker import DequeueStrategy

import engine.jobs  # noqa: F401 - preloaded so no job pays for imports
from engine import runtime
from engine.queues import all_queues
from engine.settings import keep_files_private, load_settings

log = logging.getLogger("throughline.worker")


def run(burst: bool = False, max_jobs: int | None = None) -> bool:
    """Work every queue until stopped (or until empty with `burst`)."""
    settings = load_settings()
    rt = runtime.Runtime.from_settings(settings)
    runtime.install(rt)
    worker = SimpleWorker(
        all_queues(rt.redis), connection=rt.redis, serializer=JSONSerializer
    )
    log.info(
        "worker %s on queues %s", worker.name, ", ".join(q.name for q in worker.queues)
    )
    try:
        # Round robin: a steady stream of event drains must not starve the deliveries.
        return bool(
            worker.work(
                burst=burst,
                max_jobs=max_jobs,
                with_scheduler=False,
                dequeue_strategy=DequeueStrategy.ROUND_ROBIN,
                # RQ's own lines at INFO are four per job: hundreds a second of noise, and
                # formatting them cost a fifth of a short job's time.
                logging_level="WARNING",
            )
        )
    finally:
        rt.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m engine.worker")
    parser.add_argument(
        "--burst", action="store_true", help="stop when the queues are empty"
    )
    args = parser.parse_args()
    keep_files_private()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run(burst=args.burst)


if __name__ == "__main__":
    main()
