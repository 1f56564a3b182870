"""CSV validation off the event loop, with a short-lived, bounded cache.

ValidateContacts followed by CreateBatch of the same file is the normal
flow (the report is shown before anything is created), so the second call
reuses the first one's parse instead of paying for phonenumbers twice.

The cache is per replica and keyed by the caller's scope (the organization
id), the file's SHA-256, and every input that affects the parse: whether
the filename passes the file-type check (the only use of the name), the
default region, ``require_valid`` (the limits are the defaults). It keeps
at most ``max_entries`` reports and at most ``max_bytes`` of CSV (each entry
counted at its upload's size, a proxy for its report's), least recently used
out first, each for ``ttl_seconds``. Few entries on purpose: a report of
10,000 contacts is ~10,000 objects the garbage collector tracks, and every
full collection of the process walks all of them (~0.5 ms per 1,000 objects
on the benchmark machine). A miss, or another replica, just parses again:
the result is the same report, so behaviour never depends on the cache. A
file whose validation raises (CsvRejected) is not cached. Reports are
shared between hits and are never mutated by their users.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import OrderedDict
from typing import Any, NamedTuple

from server.domain.csv_ingest import CsvLimits


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class CacheKey(NamedTuple):
    scope: str
    digest: str
    csv_name: bool
    default_region: str
    require_valid: bool


class _Entry(NamedTuple):
    stored_at: float
    size: int
    report: Any


class ReportCache:
    """LRU of validation reports bounded by entries, bytes and age; thread-safe."""

    def __init__(self, max_entries: int = 4, max_bytes: int = 16 << 20, ttl_seconds: float = 600.0,
                 clock: Any = time.monotonic) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def key(scope: str, digest: str, filename: str, default_region: str | None, require_valid: bool) -> CacheKey:
        csv_name = isinstance(filename, str) and filename.strip().lower().endswith(".csv")
        return CacheKey(scope, digest, csv_name, default_region or "", require_valid)

    def get(self, key: CacheKey) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self._clock() - entry.stored_at >= self.ttl:
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return entry.report

    def put(self, key: CacheKey, size: int, report: Any) -> None:
        if size > self.max_bytes or self.max_entries <= 0:
            return
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = _Entry(self._clock(), size, report)
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def _drop(self, key: CacheKey) -> None:
        self._bytes -= self._entries.pop(key).size

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes


class CachingValidator:
    def __init__(self, workers: int = 2, ttl_seconds: float = 600.0, max_entries: int = 4,
                 max_bytes: int = 16 << 20) -> None:
        from server.service.validation_runner import ValidationRunner

        self._runner = ValidationRunner(workers=workers)
        self.cache = ReportCache(max_entries=max_entries, max_bytes=max_bytes, ttl_seconds=ttl_seconds)

    async def validate_async(
        self, content: bytes, filename: str, default_region: str | None, *, require_valid: bool = True,
        scope: str = "",
    ) -> Any:
        """The report of ``content`` (see validate_csv); ``scope`` (the
        organization id) keeps one organization's entries from serving another."""
        # Hashing a big upload is CPU work too: off the event loop.
        digest = (await asyncio.to_thread(_sha256, content)) if len(content) > 1 << 20 else _sha256(content)
        key = self.cache.key(scope, digest, filename, default_region, require_valid)
        report = self.cache.get(key)
        if report is not None:
            return report
        report = await self._runner.validate_async(
            content, filename, default_region, CsvLimits(), require_valid=require_valid
        )
        self.cache.put(key, len(content), report)
        return report

    def shutdown(self) -> None:
        self._runner.shutdown()
