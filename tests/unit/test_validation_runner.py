"""The process-pool runner gives exactly the in-process report."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import pytest

from server.domain.csv_ingest import CsvLimits, CsvRejected, validate_csv
from server.service.validation_runner import ValidationRunner

AREAS = ["415", "212", "650", "202"]
INVALID = ["4155552671", "+1-800-FLOWERS", "+1", "", "+11234567890", "n/a"]


def make_csv(rows: int, seed: int = 7) -> bytes:
    """A file with valid, punctuated, invalid, duplicate and empty rows."""
    rnd = random.Random(seed)
    seen: list[str] = []
    lines = ["phone,name,email,city"]
    for i in range(rows):
        roll = rnd.random()
        if roll < 0.08:
            phone = rnd.choice(INVALID)
        elif roll < 0.14 and seen:
            phone = rnd.choice(seen)
        elif roll < 0.16:
            lines.append(",,,")
            continue
        else:
            phone = f"+1{rnd.choice(AREAS)}{rnd.randint(2_000_000, 9_999_999)}"
            seen.append(phone)
            if roll > 0.9:
                phone = f"+1 ({phone[2:5]}) {phone[5:8]}-{phone[8:]}"
        email = "bad-email" if roll > 0.995 else f"p{i}@example.com"
        lines.append(f'{phone},"Person, {i}",{email},City{i % 40}')
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def runner() -> Iterator[ValidationRunner]:
    runner = ValidationRunner(workers=2, parallel_threshold=2000)
    yield runner
    runner.shutdown()


def test_parallel_equals_single_process_on_5k_rows(runner: ValidationRunner) -> None:
    content = make_csv(5000)
    expected = validate_csv(content, "big.csv")
    assert expected.invalid_rows and expected.duplicate_rows and expected.empty_rows
    assert expected.normalized_count > 0
    actual = runner.validate_parallel(content, "big.csv")
    assert runner._pool is not None  # really went through the pool
    assert actual == expected


def test_parallel_equals_single_with_region(runner: ValidationRunner) -> None:
    content = make_csv(3000, seed=3)
    assert runner.validate_parallel(content, "a.csv", "US") == validate_csv(content, "a.csv", "US")


def test_small_file_stays_in_process() -> None:
    runner = ValidationRunner(parallel_threshold=2000)
    try:
        content = make_csv(100)
        assert runner.validate_parallel(content, "a.csv") == validate_csv(content, "a.csv")
        assert runner._pool is None
    finally:
        runner.shutdown()


def test_same_rejection_as_single_process(runner: ValidationRunner) -> None:
    content = make_csv(3000)
    limits = CsvLimits(max_contacts=1000)
    with pytest.raises(CsvRejected) as single:
        validate_csv(content, "a.csv", None, limits)
    with pytest.raises(CsvRejected) as parallel:
        runner.validate_parallel(content, "a.csv", None, limits)
    assert single.value.reason == "TOO_MANY_CONTACTS"
    assert parallel.value == single.value


def test_malformed_big_file_rejected_the_same(runner: ValidationRunner) -> None:
    content = make_csv(5000) + b'+14155552671,"never closed\n+442071838750,x\n'
    with pytest.raises(CsvRejected) as single:
        validate_csv(content, "a.csv")
    with pytest.raises(CsvRejected) as parallel:
        runner.validate_parallel(content, "a.csv")
    assert single.value.reason == "MALFORMED" and parallel.value == single.value


def test_unknown_region_rejected_like_single(runner: ValidationRunner) -> None:
    with pytest.raises(CsvRejected) as info:
        runner.validate_parallel(make_csv(3000), "a.csv", "XX")
    assert info.value.reason == "INVALID_REGION"


def test_require_valid_false_passes_through(runner: ValidationRunner) -> None:
    content = ("phone\n" + "bad\n" * 2500).encode()
    report = runner.validate_parallel(content, "a.csv", require_valid=False)
    assert report == validate_csv(content, "a.csv", require_valid=False)
    assert report.valid_rows == 0


def test_async_api(runner: ValidationRunner) -> None:
    content = make_csv(2500, seed=11)

    async def main() -> None:
        reports = await asyncio.gather(
            runner.validate_async(content, "a.csv", None, CsvLimits()),
            runner.validate_async(content, "a.csv", None, CsvLimits()),
        )
        expected = validate_csv(content, "a.csv")
        assert reports[0] == expected and reports[1] == expected

    asyncio.run(main())


def test_pool_is_reused(runner: ValidationRunner) -> None:
    content = make_csv(2500)
    runner.validate_parallel(content, "a.csv")
    pool = runner._pool
    runner.validate_parallel(content, "a.csv")
    assert runner._pool is pool


def test_broken_pool_falls_back_in_process() -> None:
    runner = ValidationRunner(parallel_threshold=10)
    try:
        runner.warm_up()
        pool = runner._pool
        assert pool is not None
        for process in list(pool._processes.values()):  # simulate a crashed worker
            process.kill()
            process.join()
        content = make_csv(500)
        assert runner.validate_parallel(content, "a.csv") == validate_csv(content, "a.csv")
        assert runner._pool is not pool
    finally:
        runner.shutdown()


def test_shutdown_then_use_raises() -> None:
    runner = ValidationRunner(parallel_threshold=10)
    runner.shutdown()
    with pytest.raises(RuntimeError):
        runner.validate_parallel(make_csv(100), "a.csv")


def test_module_level_functions() -> None:
    from server.service import validation_runner as vr

    content = make_csv(50)
    try:
        assert vr.validate_parallel(content, "a.csv") == validate_csv(content, "a.csv")
        assert asyncio.run(vr.validate_async(content, "a.csv")) == validate_csv(content, "a.csv")
    finally:
        vr.shutdown()


def _outcome(fn: object, *args: object, **kw: object) -> object:
    """The report, or the CsvRejected, a validation call produces."""
    try:
        return fn(*args, **kw)  # type: ignore[operator]
    except CsvRejected as err:
        return err


def test_parallel_equals_single_on_random_files() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    cells = st.sampled_from(
        ["+14155552671", "+1 415 555 2671", "+442071838750", "4155552671", "", "x,y", 'q"', "a\nb"]
    )
    runner = ValidationRunner(parallel_threshold=1, chunks_per_worker=3)

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.lists(cells, min_size=1, max_size=4), max_size=30), st.sampled_from([None, "US"]))
    def check(rows: list[list[str]], region: str | None) -> None:
        import csv
        import io

        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([["phone", "name"], *rows])
        content = buffer.getvalue().encode()
        for require_valid in (True, False):
            single = _outcome(validate_csv, content, "r.csv", region, require_valid=require_valid)
            parallel = _outcome(
                runner.validate_parallel, content, "r.csv", region, require_valid=require_valid
            )
            assert parallel == single

    try:
        check()
    finally:
        runner.shutdown()


def test_shutdown_during_validation_still_finishes() -> None:
    import threading

    runner = ValidationRunner(parallel_threshold=10, chunks_per_worker=8)
    runner.warm_up()
    content = make_csv(3000, seed=5)
    expected = validate_csv(content, "a.csv")
    results: list[object] = []

    def validate() -> None:
        try:
            results.append(runner.validate_parallel(content, "a.csv"))
        except RuntimeError as err:  # shut down before it got the pool
            results.append(err)

    worker = threading.Thread(target=validate)
    worker.start()
    runner.shutdown(wait=False)
    worker.join(timeout=60)
    assert results and (results[0] == expected or isinstance(results[0], RuntimeError))
