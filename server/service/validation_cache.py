"""CSV validation off the event loop, with a short-lived cache.

ValidateContacts followed by CreateBatch of the same file is the normal
flow (the report is shown before anything is created), so the second call
reuses the first one's parse instead of paying for phonenumbers twice. The
cache is per replica and keyed by the file's sha256 and the options.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from typing import Any

from server.domain.csv_ingest import CsvLimits


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class CachingValidator:
    def __init__(self, workers: int = 2, ttl_seconds: float = 600.0, max_entries: int = 16) -> None:
        from server.service.validation_runner import ValidationRunner

        self._runner = ValidationRunner(workers=workers)
        self._ttl = ttl_seconds
        self._max = max_entries
        self._cache: OrderedDict[tuple[str, str, str, bool], tuple[float, Any]] = OrderedDict()

    async def validate_async(
        self, content: bytes, filename: str, default_region: str | None, *, require_valid: bool = True
    ) -> Any:
        # Hashing a big upload is CPU work too: off the event loop.
        digest = (await asyncio.to_thread(_sha256, content)) if len(content) > 1 << 20 else _sha256(content)
        key = (digest, filename.lower().rsplit(".", 1)[-1], default_region or "", require_valid)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit and now - hit[0] < self._ttl:
            self._cache.move_to_end(key)
            return hit[1]
        report = await self._runner.validate_async(
            content, filename, default_region, CsvLimits(), require_valid=require_valid
        )
        self._cache[key] = (now, report)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return report

    def shutdown(self) -> None:
        self._runner.shutdown()
