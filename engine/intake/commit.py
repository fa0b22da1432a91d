"""Intake's one entry: `GroupCommitter.take` admits a request's events against the channel's
rate and the backlog, stores them (single events of concurrent requests committed in groups, a
batch's events together) and signals the drains of their partitions."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from queue import Empty, SimpleQueue

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from engine.db import Database
from engine.execution import signals
from engine.intake import admission, store
from engine.intake.store import Stored, ToStore
from engine.models import utcnow

log = logging.getLogger("throughline.intake")


# Failures of a service rather than of an event: the whole group hears of them (503, retry).
GROUP_FAILURES = (OperationalError, InterfaceError, RedisError, TimeoutError)


# The committing thread of an idle process ends after this long; the next event starts one.
IDLE_SECONDS = 5.0


@dataclass(frozen=True)
class Admitted:
    """The answer to one submitted event: stored (new or a repeat), or refused by Redis."""

    stored: Stored | None
    verdict: int = admission.ADMITTED


@dataclass(frozen=True)
class Taken:
    """What became of one request's events: all refused by Redis (`verdict`, none stored),
    or each one stored (new or a repeat), or None where the database refused it alone."""

    verdict: int
    stored: tuple[Stored | None, ...] = ()


class _Waiting:
    """One request's event and, once its group is committed, the answer or the error.

    The answer is the error itself when the database refused this event alone; `error` is
    what failed the whole group. The request thread waits on a lock the committing thread
    releases: cheaper, per request, than a Future's condition variable.
    """

    __slots__ = ("channel_id", "rate_limit", "item", "answer", "error", "_done")

    def __init__(self, channel_id: int, rate_limit: int, item: ToStore) -> None:
        self.channel_id, self.rate_limit, self.item = channel_id, rate_limit, item
        self.answer: Admitted | Exception | None = None
        self.error: BaseException | None = None
        self._done = threading.Lock()
        self._done.acquire()

    def settle(
        self, answer: Admitted | Exception | None, error: BaseException | None
    ) -> None:
        self.answer, self.error = answer, error
        self._done.release()

    def result(self, timeout: float) -> Admitted | Exception:
        if not self._done.acquire(timeout=timeout):
            raise TimeoutError("no answer from the committing thread in time")
        if self.error is not None:
            raise self.error
        assert self.answer is not None
        return self.answer


@contextmanager
def _storing(engine: Engine) -> Iterator[Connection]:
    """A connection to insert a group's events on.

    On PostgreSQL each channel's insert is one statement that commits by itself: a group of
    one event costs one round trip instead of three (BEGIN, INSERT, COMMIT), and a failure
    leaves the channels stored before it stored (their requests hear of the failure and
    retry, and a repeated webhook id is answered as the first time). On SQLite the
    transaction takes the write lock when it begins (engine.db).
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")
    else:
        with engine.execution_options(sqlite_immediate=True).begin() as connection:
            yield connection


class _Storage:
    """The connections a committer inserts on. With `keep` (a committing thread) on
    PostgreSQL, one autocommit connection for the thread's life, given up after any failure
    and opened again for the next group: a group of one event then costs its statement
    alone. Otherwise one connection or transaction per group (`_storing`)."""

    def __init__(self, engine: Engine, keep: bool = False) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._keep = keep and self.postgres
        self._kept: Connection | None = None

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        if not self._keep:
            with _storing(self.engine) as connection:
                yield connection
            return
        if self._kept is None:
            self._kept = self.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            )
        try:
            yield self._kept
        except BaseException:
            # Failures are rare; a new connection is sure to be in autocommit, where one
            # replaced behind the ORM's back (after the server dropped it) would not be.
            self.close()
            raise

    def close(self) -> None:
        kept, self._kept = self._kept, None
        if kept is not None:
            try:
                kept.close()
            except GROUP_FAILURES:
                pass  # a broken connection is dropped by the pool


class GroupCommitter:
    """Stores the events of one process's request threads, many per transaction.

    A request with a single event hands it over and waits. One thread takes whatever has
    gathered (one event when traffic is light, dozens under load: nothing waits for a group
    to fill) and admits them in one Redis round trip, inserts them in one statement per
    channel, commits once, and signals their partitions in one more round trip. A batch is
    a group already: the request's own thread admits, stores and signals it the same way.
    An event is answered only after the commit that made it durable.
    """

    def __init__(
        self,
        database: Database,
        redis: Redis,
        partitions: int,
        backlog_bound: int,
        enqueue_drain: Callable[[int], object],
        largest: int = 500,
    ) -> None:
        self.database, self.redis = database, redis
        self.partitions, self.backlog_bound = partitions, backlog_bound
        self.enqueue_drain, self.largest = enqueue_drain, largest
        self._queue: SimpleQueue[_Waiting] = SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def take(
        self,
        channel_id: int,
        rate_limit: int,
        items: Sequence[ToStore],
        timeout: float = 30.0,
    ) -> Taken:
        """Admit, store and signal one request's events (a single one, or a batch).

        Raises one of GROUP_FAILURES when a service failed them all (the sender retries: a
        repeated webhook id is answered as the first time).
        """
        if not items:
            return Taken(admission.ADMITTED)
        if len(items) != 1:
            return self._take_batch(channel_id, rate_limit, items)
        answer = self._wait(channel_id, rate_limit, items[0], timeout)
        if isinstance(answer, Exception):
            return Taken(admission.ADMITTED, (None,))
        if answer.stored is None:
            return Taken(answer.verdict)
        return Taken(answer.verdict, (answer.stored,))

    def submit(
        self, channel_id: int, rate_limit: int, item: ToStore, timeout: float = 30.0
    ) -> Admitted:
        """Store one event (or refuse it); raises what storing it raised."""
        answer = self._wait(channel_id, rate_limit, item, timeout)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def _wait(
        self, channel_id: int, rate_limit: int, item: ToStore, timeout: float
    ) -> Admitted | Exception:
        """Hand one event to the committing thread and wait for its answer."""
        waiting = _Waiting(channel_id, rate_limit, item)
        with self._lock:
            # The thread ends when idle, and a forked process (a web server worker) has none
            # of its parent's: start one if needed, in the same step as queueing.
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._queue = SimpleQueue()
                self._thread = threading.Thread(
                    target=self._run, args=(self._queue,), name="intake", daemon=True
                )
                self._thread.start()
            self._queue.put(waiting)
        return waiting.result(timeout)

    def _run(self, queue: SimpleQueue[_Waiting]) -> None:
        # A connection of its own, not pinged before each group: a dropped one fails that
        # group (its requests may retry) and is replaced for the next.
        database = Database(self.database.url, pool_size=1, pool_pre_ping=False)
        storage = _Storage(database.engine, keep=True)
        while True:
            try:
                first = queue.get(timeout=IDLE_SECONDS)
            except Empty:
                with self._lock:
                    if queue.empty():
                        self._thread = None
                        storage.close()
                        database.dispose()
                        return
                continue
            group = [first]
            while len(group) < self.largest:
                try:
                    group.append(queue.get_nowait())
                except Empty:
                    break
            try:
                answers = self._apply(group, storage)
            except BaseException as error:  # every waiting request hears of it
                for waiting in group:
                    waiting.settle(None, error)
            else:
                for waiting, answer in zip(group, answers, strict=True):
                    waiting.settle(answer, None)

    def _apply(
        self, group: list[_Waiting], storage: _Storage | None = None
    ) -> list[Admitted | Exception]:
        """A group of single events: each one's answer, or what refused it alone."""
        verdicts = admission.admit_many(
            self.redis,
            [admission.Ask(w.channel_id, 1, w.rate_limit) for w in group],
            self.backlog_bound,
        )
        answers: list[Admitted | Exception] = [
            Admitted(None, verdict) for verdict in verdicts
        ]
        by_channel: dict[int, list[int]] = {}
        for index, verdict in enumerate(verdicts):
            if verdict == admission.ADMITTED:
                by_channel.setdefault(group[index].channel_id, []).append(index)
        outcomes = self._store(
            storage or _Storage(self.database.engine),
            {
                channel_id: [group[index].item for index in indexes]
                for channel_id, indexes in by_channel.items()
            },
        )
        for channel_id, indexes in by_channel.items():
            for index, outcome in zip(indexes, outcomes[channel_id], strict=True):
                answers[index] = (
                    Admitted(outcome) if isinstance(outcome, Stored) else outcome
                )
        return answers

    def _take_batch(
        self, channel_id: int, rate_limit: int, items: Sequence[ToStore]
    ) -> Taken:
        """A batch's events, admitted all or none, on the calling thread."""
        (verdict,) = admission.admit_many(
            self.redis,
            [admission.Ask(channel_id, len(items), rate_limit)],
            self.backlog_bound,
        )
        if verdict != admission.ADMITTED:
            return Taken(verdict)
        outcomes = self._store(
            _Storage(self.database.engine), {channel_id: list(items)}
        )
        return Taken(
            verdict,
            tuple(o if isinstance(o, Stored) else None for o in outcomes[channel_id]),
        )

    def _store(
        self, storage: _Storage, by_channel: dict[int, list[ToStore]]
    ) -> dict[int, list[Stored | Exception]]:
        """Store admitted events, one insert per channel, and signal their partitions.

        Each event's outcome in order: stored, or what the database raised storing it alone.
        Raises one of GROUP_FAILURES when a service fails.
        """
        if not by_channel:
            return {}
        outcomes: dict[int, list[Stored | Exception]] = {}
        try:
            with storage.connection() as connection:
                now = utcnow()
                for channel_id, items in by_channel.items():
                    outcomes[channel_id] = list(
                        store.store_events(
                            connection, channel_id, items, self.partitions, now
                        )
                    )
        except GROUP_FAILURES:
            raise
        except Exception:
            # One event the database refuses must not cost the others their answer: store
            # each of the rest alone. On PostgreSQL each channel's insert committed by
            # itself, so the channels stored before the failure stay stored; on SQLite the
            # transaction rolled back whole.
            if not storage.postgres:
                outcomes.clear()
            for channel_id, items in by_channel.items():
                if channel_id not in outcomes:
                    outcomes[channel_id] = [
                        self._store_alone(storage, channel_id, item) for item in items
                    ]
        stored = [
            o for found in outcomes.values() for o in found if isinstance(o, Stored)
        ]
        try:
            signals.signal_events(
                self.redis, store.fresh_per_partition(stored), self.enqueue_drain
            )
        except RedisError:
            # Stored is stored: the sweeper finds pending events without a queued drain.
            log.warning("intake: events stored but their drains not signalled")
        return outcomes

    def _store_alone(
        self, storage: _Storage, channel_id: int, item: ToStore
    ) -> Stored | Exception:
        """Store one event in a transaction of its own: the answer, or what refused it."""
        try:
            with storage.connection() as connection:
                (one,) = store.store_events(
                    connection, channel_id, [item], self.partitions, utcnow()
                )
        except GROUP_FAILURES:
            raise
        except Exception as error:
            log.exception("intake: an event could not be stored")
            return error
        return one
