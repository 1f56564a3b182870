"""Run CSV validation off the event loop, spreading phone parsing over processes.

``phonenumbers.parse`` is pure Python and dominates validation (docs/design.md §8: the
floor is parsing 10,000 numbers), so threads cannot speed it up. This runner:

* does phase 1 (:func:`split_csv`) and phase 3 (:func:`assemble_report`) in
  the calling process — they are cheap and need the row objects;
* ships only the raw phone strings, in chunks (8 per worker), to a
  ``ProcessPoolExecutor`` (2 workers, created lazily, reused, ``spawn`` start
  method so the workers never inherit the gRPC server's threads or sockets),
  and streams the results back in order into phase 3;
* runs small files (fewer than ``parallel_threshold`` phones) entirely
  in-process, where the pickling/IPC round trip would cost more than it saves.

Because phase 3 consumes results in file order, the report (or the
CsvRejected) is exactly what :func:`validate_csv` produces. If the pool breaks
(a worker killed), the affected chunks are parsed in-process and the pool is
recreated on next use.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Iterator, NamedTuple

from server.domain.csv_ingest import (
    CsvLimits,
    CsvReport,
    assemble_report,
    split_csv,
)
from server.domain.phone import phone_outcome, phone_outcomes

__all__ = [
    "ValidationRunner",
    "validate_async",
    "validate_parallel",
    "shutdown",
    "default_runner",
]

log = logging.getLogger(__name__)

_WARM_NUMBERS = (
    "+14155552671",
    "+442071838750",
    "+919876543210",
    "+81312345678",
    "+61212345678",
    "+4930123456",
    "+33123456789",
    "+5511912345678",
)


#: How often a worker checks that the process that started it is alive (s).
PARENT_CHECK_SECONDS = 1.0


def _exit_with_parent(parent: int, interval: float = PARENT_CHECK_SECONDS) -> None:
    """Ends this worker once its parent is gone (the worker is re-parented).

    A server killed outright (SIGKILL, an OOM kill, a test or benchmark
    tearing it down) never shuts its pool down, and its idle workers would
    wait on their call queue forever, holding the server's stdout and stderr
    open (a ``| tail`` of the server never ends)."""
    import time

    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(0)


def _warm_worker(parent: int | None = None) -> None:
    """Worker initializer: exit with the parent (``parent``: its pid), import
    phonenumbers and load common region metadata.

    phonenumbers loads each region's metadata on first use; doing it here
    keeps that one-off cost out of the first upload's latency.
    """
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent,), name="exit-with-parent", daemon=True).start()
    for number in _WARM_NUMBERS:
        phone_outcome(number, None)


def _ping() -> bool:
    """A no-op task used by :meth:`ValidationRunner.warm_up`."""
    return True


class ValidationRunner:
    """Owns the process pool; thread-safe; reusable until :meth:`shutdown`."""

    def __init__(
        self,
        workers: int = 2,
        parallel_threshold: int = 2000,
        chunks_per_worker: int = 8,
    ) -> None:
        """``parallel_threshold``: fewer phones than this are parsed in-process.

        ``chunks_per_worker``: each worker receives this many chunks, so phase 3
        can start on the first results while later chunks are still parsed.
        What phase 3 still has to do once the workers are done is the last
        chunk of each: with 8 per worker (625 phones each for 10,000) that is
        ~2 ms of assembly, where 2 per worker left ~6 ms; the 12 more round
        trips cost well under that (ValidateContacts of 10,000 rows, 2 vs 8
        alternating in one server, four sets: median 147/302/227/393 ms vs
        139/292/218/310 ms on a shared 2-core machine).
        """
        self.workers = workers
        self.parallel_threshold = parallel_threshold
        self.chunks_per_worker = chunks_per_worker
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    # -- pool lifecycle ---------------------------------------------------

    def _get_pool(self) -> ProcessPoolExecutor:
        """Create the pool on first use (lazily: most processes never need it)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("ValidationRunner is shut down")
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_warm_worker,
                    initargs=(os.getpid(),),
                )
            return self._pool

    def _discard_pool(self, pool: ProcessPoolExecutor) -> None:
        """Forget a broken pool so the next call starts a fresh one."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def warm_up(self) -> None:
        """Start the workers now (e.g. at server start or before a benchmark)."""
        pool = self._get_pool()
        for future in [pool.submit(_ping) for _ in range(self.workers * 2)]:
            future.result()

    def shutdown(self, wait: bool = True) -> None:
        """Stop the workers; later calls raise RuntimeError."""
        with self._lock:
            pool, self._pool, self._closed = self._pool, None, True
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)

    # -- validation -------------------------------------------------------

    def validate_parallel(
        self,
        content: bytes,
        filename: str,
        default_region: str | None = None,
        limits: CsvLimits = CsvLimits(),
        *,
        require_valid: bool = True,
    ) -> CsvReport:
        """Same contract and result as :func:`validate_csv`, phones parsed in parallel.

        Phase 1 runs fully before any chunk is sent. Streaming chunks to the
        workers while phase 1 was still reading was tried and measured no
        faster on 2 cores (the main process then competes with both workers),
        so the simpler flow stays.
        """
        split = split_csv(content, filename, default_region, limits)
        region = split.default_region
        if len(split.phones) < self.parallel_threshold:
            outcomes = phone_outcomes(split.phones, region)
            return assemble_report(split, outcomes, limits, require_valid=require_valid)
        pool = self._get_pool()
        jobs = [self._submit(pool, chunk, region) for chunk in self._chunks(split.phones)]
        stream = self._results(pool, jobs, region)
        try:
            return assemble_report(split, stream, limits, require_valid=require_valid)
        finally:
            stream.close()  # cancels queued chunks if phase 3 raised early

    async def validate_async(
        self,
        content: bytes,
        filename: str,
        default_region: str | None = None,
        limits: CsvLimits = CsvLimits(),
        *,
        require_valid: bool = True,
    ) -> CsvReport:
        """Validate without blocking the event loop (runs in a thread; big files fan out)."""
        return await asyncio.to_thread(
            self.validate_parallel,
            content,
            filename,
            default_region,
            limits,
            require_valid=require_valid,
        )

    def _chunks(self, phones: list[str]) -> list[list[str]]:
        """Split into ``workers * chunks_per_worker`` contiguous, ordered chunks."""
        count = max(1, self.workers * self.chunks_per_worker)
        size = -(-len(phones) // count)
        return [phones[i : i + size] for i in range(0, len(phones), size)]

    def _submit(
        self, pool: ProcessPoolExecutor, phones: list[str], region: str | None
    ) -> _Job:
        """Queue one chunk; a pool that cannot take it leaves it to run in-process."""
        try:
            return _Job(phones, pool.submit(phone_outcomes, phones, region))
        except (BrokenProcessPool, RuntimeError):
            self._discard_pool(pool)
            return _Job(phones, None)

    def _results(
        self, pool: ProcessPoolExecutor, jobs: list[_Job], region: str | None
    ) -> Iterator[str]:
        """Yield phone outcomes (E.164 or reason) in order, chunk by chunk.

        A chunk whose future fails because the pool broke is recomputed
        in-process (same function, same results). Closing the generator
        cancels the chunks still queued.
        """
        try:
            for job in jobs:
                yield from self._job_result(pool, job, region)
        finally:
            _cancel(jobs)

    def _job_result(
        self, pool: ProcessPoolExecutor, job: _Job, region: str | None
    ) -> list[str]:
        """One chunk's outcomes, falling back to in-process on a broken or closed pool."""
        if job.future is not None:
            try:
                return job.future.result()
            except BrokenProcessPool:
                log.warning("validation worker pool broke; parsing phones in-process")
                self._discard_pool(pool)
            except CancelledError:
                pass  # pool discarded or shut down meanwhile: finish the work here
        return phone_outcomes(job.phones, region)


class _Job(NamedTuple):
    """A chunk of raw phones and the pool future computing their outcomes."""

    phones: list[str]
    future: Future[list[str]] | None


def _cancel(jobs: list[_Job]) -> None:
    """Cancel chunks that have not started (their results are not needed)."""
    for job in jobs:
        if job.future is not None:
            job.future.cancel()


_default_runner: ValidationRunner | None = None
_default_lock = threading.Lock()


def default_runner() -> ValidationRunner:
    """The process-wide runner (created on first use, replaced after shutdown())."""
    global _default_runner
    with _default_lock:
        if _default_runner is None:
            _default_runner = ValidationRunner()
        return _default_runner


def validate_parallel(
    content: bytes,
    filename: str,
    default_region: str | None = None,
    limits: CsvLimits = CsvLimits(),
    *,
    require_valid: bool = True,
) -> CsvReport:
    """Synchronous parallel validation with the default runner."""
    return default_runner().validate_parallel(
        content, filename, default_region, limits, require_valid=require_valid
    )


async def validate_async(
    content: bytes,
    filename: str,
    default_region: str | None = None,
    limits: CsvLimits = CsvLimits(),
    *,
    require_valid: bool = True,
) -> CsvReport:
    """Event-loop-friendly validation with the default runner."""
    return await default_runner().validate_async(
        content, filename, default_region, limits, require_valid=require_valid
    )


def shutdown(wait: bool = True) -> None:
    """Stop the default runner's workers (call at server shutdown)."""
    global _default_runner
    with _default_lock:
        runner, _default_runner = _default_runner, None
    if runner is not None:
        runner.shutdown(wait=wait)
