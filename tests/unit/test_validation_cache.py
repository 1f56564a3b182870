"""The validation report cache (server/service/validation_cache.py): a hit is
the same parse; another file, organization or parse option misses; the entry,
byte and age bounds hold; a rejected file is not cached."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.domain.csv_ingest import CsvRejected, validate_csv
from server.service.validation_cache import CachingValidator, ReportCache

CSV = b"phone,name\n+14155552671,Ann\n+12125550123,Bob\n"
OTHER = b"phone,name\n+14155552671,Ann\n"


class CountingRunner:
    """Stands in for the process-pool runner: validate_csv in-process, counted."""

    def __init__(self) -> None:
        self.calls = 0

    async def validate_async(self, content: bytes, filename: str, default_region: str | None, limits: Any,
                             *, require_valid: bool = True) -> Any:
        self.calls += 1
        return validate_csv(content, filename, default_region, limits, require_valid=require_valid)

    def shutdown(self) -> None:
        pass


def validator(**kw: Any) -> tuple[CachingValidator, CountingRunner]:
    v = CachingValidator(workers=1, **kw)
    v._runner.shutdown()  # never started: nothing to stop
    runner = CountingRunner()
    v._runner = runner  # type: ignore[assignment]
    return v, runner


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_hit_returns_the_same_report_without_parsing_again() -> None:
    v, runner = validator()
    first = run(v.validate_async(CSV, "a.csv", None, scope="org_1"))
    second = run(v.validate_async(CSV, "b.csv", None, scope="org_1"))  # same type, same bytes
    assert second is first
    assert runner.calls == 1
    assert first == validate_csv(CSV, "a.csv")


@pytest.mark.parametrize(
    "change",
    [
        {"content": OTHER},
        {"scope": "org_2"},
        {"region": "US"},
        {"require_valid": False},
    ],
)
def test_another_file_organization_or_option_misses(change: dict[str, Any]) -> None:
    v, runner = validator()
    base = {"content": CSV, "filename": "a.csv", "region": None, "scope": "org_1", "require_valid": True}
    args = {**base, **change}
    run(v.validate_async(base["content"], base["filename"], base["region"], scope=base["scope"],
                         require_valid=base["require_valid"]))
    report = run(v.validate_async(args["content"], args["filename"], args["region"], scope=args["scope"],
                                  require_valid=args["require_valid"]))
    assert runner.calls == 2
    assert report == validate_csv(args["content"], args["filename"], args["region"],
                                  require_valid=args["require_valid"])


def test_filename_check_still_applies_on_a_cached_file() -> None:
    v, runner = validator()
    run(v.validate_async(CSV, "a.csv", None, scope="org_1"))
    for name in ("csv", "a.txt", "a.csv.txt"):
        with pytest.raises(CsvRejected) as exc:
            run(v.validate_async(CSV, name, None, scope="org_1"))
        assert exc.value.reason == "FILE_TYPE"
    assert run(v.validate_async(CSV, " B.CSV ", None, scope="org_1")) is not None
    assert runner.calls == 4  # the three rejections ran; the upper-case .CSV name hit


def test_rejected_file_is_not_cached() -> None:
    v, runner = validator()
    for _ in range(2):
        with pytest.raises(CsvRejected):
            run(v.validate_async(b"name\nAnn\n", "a.csv", None, scope="org_1"))
    assert runner.calls == 2
    assert len(v.cache) == 0


def test_entry_bound_evicts_least_recently_used() -> None:
    cache = ReportCache(max_entries=2, max_bytes=1 << 20)
    keys = [cache.key("o", f"d{i}", "a.csv", None, True) for i in range(3)]
    cache.put(keys[0], 10, "r0")
    cache.put(keys[1], 10, "r1")
    assert cache.get(keys[0]) == "r0"  # now the most recent
    cache.put(keys[2], 10, "r2")
    assert len(cache) == 2
    assert cache.get(keys[1]) is None
    assert cache.get(keys[0]) == "r0" and cache.get(keys[2]) == "r2"


def test_byte_bound_holds() -> None:
    cache = ReportCache(max_entries=100, max_bytes=100)
    for i in range(10):
        cache.put(cache.key("o", f"d{i}", "a.csv", None, True), 30, f"r{i}")
        assert cache.bytes <= 100
    assert len(cache) == 3 and cache.bytes == 90
    # A file larger than the whole bound is never kept (and evicts nothing).
    cache.put(cache.key("o", "big", "a.csv", None, True), 101, "big")
    assert len(cache) == 3 and cache.get(cache.key("o", "big", "a.csv", None, True)) is None
    # Replacing an entry does not count it twice.
    key = cache.key("o", "d9", "a.csv", None, True)
    cache.put(key, 30, "again")
    assert cache.bytes == 90 and cache.get(key) == "again"


def test_entries_expire() -> None:
    now = [0.0]
    cache = ReportCache(max_entries=4, max_bytes=1000, ttl_seconds=10, clock=lambda: now[0])
    key = cache.key("o", "d", "a.csv", None, True)
    cache.put(key, 10, "r")
    now[0] = 9.9
    assert cache.get(key) == "r"
    now[0] = 10.0
    assert cache.get(key) is None
    assert len(cache) == 0 and cache.bytes == 0
