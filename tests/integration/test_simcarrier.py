"""The simulated carrier as a real process, driven through SimulatedProvider."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import pytest

from dialer.providers.base import CallRequest, CallState, Outcome, TrunkSettings
from dialer.providers.simulated import SimulatedProvider, SimulatedProviderError
from simcarrier import SimCarrierProcess, number_with_outcome, spawn
from simcarrier.analysis import check_record, load_record

SCALE = 0.005  # 1 simulated second = 5 ms
RING = 20.0  # -> 100 ms
MAX = 60.0  # -> 300 ms
TRUNK = TrunkSettings(kind="simulated")
FAST = TrunkSettings(kind="simulated", simulation={"completed": 1, "ring_seconds": 0, "mean_call_seconds": 20, "talk_sigma": 0})


@pytest.fixture
def record_file(tmp_path: Path) -> Path:
    return tmp_path / "calls.jsonl"


@pytest.fixture
def carrier(record_file: Path) -> Iterator[SimCarrierProcess]:
    with spawn(time_scale=SCALE, seed=7, record_file=str(record_file)) as proc:
        yield proc


def request(call_id: str, to: str, *, batch: str = "b1", org: str = "o1", contact: str = "", trunk: TrunkSettings = TRUNK,
            attempt: int = 1, ring: float = RING, max_duration: float = MAX, **kw: Any) -> CallRequest:
    return CallRequest(
        provider_call_id=call_id, to_number=to, from_number="+14155550100", trunk=trunk,
        ring_timeout_seconds=ring, max_call_duration_seconds=max_duration, organization_id=org, batch_id=batch,
        contact_id=contact or f"contact-{call_id}", agent_id="agent-1", attempt_number=attempt, **kw,
    )


class Answers:
    """An on_answer callback that remembers its calls."""

    def __init__(self) -> None:
        self.times: list[datetime] = []
        self.event = asyncio.Event()

    async def __call__(self, answer_time: datetime) -> None:
        self.times.append(answer_time)
        self.event.set()


def http_json(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_ready_line_and_health(carrier: SimCarrierProcess) -> None:
    assert carrier.url.startswith("http://127.0.0.1:")
    status, body = http_json(carrier.url + "/healthz")
    assert status == 200 and body["time_scale"] == SCALE


def test_overrides_end_as_documented_and_are_recorded(carrier: SimCarrierProcess, record_file: Path) -> None:
    expected = {
        "busy": (Outcome.BUSY, False),
        "no_answer": (Outcome.NO_ANSWER, False),
        "timeout": (Outcome.TIMEOUT, False),
        "invalid_number": (Outcome.INVALID_NUMBER, False),
        "blocked": (Outcome.BLOCKED, False),
        "carrier_error": (Outcome.CARRIER_ERROR, False),
        "agent_error": (Outcome.AGENT_ERROR, True),
        "completed": (Outcome.COMPLETED, True),
        "completed_long": (Outcome.COMPLETED, True),
    }

    async def main() -> dict[str, tuple[Any, Answers]]:
        provider = SimulatedProvider(carrier.url)
        try:
            out = {}

            async def one(behaviour: str, i: int) -> None:
                answers = Answers()
                res = await provider.place_call(request(f"ov-{behaviour}", number_with_outcome(behaviour, i)), answers)
                out[behaviour] = (res, answers)

            await asyncio.gather(*(one(b, i) for i, b in enumerate(expected)))
            return out
        finally:
            await provider.close()

    results = asyncio.run(main())
    for behaviour, (outcome, answered) in expected.items():
        res, answers = results[behaviour]
        assert res.outcome is outcome, behaviour
        assert (res.answer_time is not None) == answered, behaviour
        assert len(answers.times) == (1 if answered else 0), behaviour
        if answered:
            assert answers.times[0] == res.answer_time
            assert res.duration_seconds > 0
        else:
            assert res.duration_seconds == 0
    assert results["completed_long"][0].duration_seconds == pytest.approx(MAX, rel=0.01)
    assert results["busy"][0].sip_code == 486

    # Real durations follow the time scale (no_answer rings exactly the ring timeout).
    status, calls = http_json(carrier.url + "/calls?batch_id=b1")
    by_id = {c["call_id"]: c for c in calls}
    assert len(by_id) == len(expected)
    no_answer = by_id["ov-no_answer"]
    assert no_answer["end"] - no_answer["start"] == pytest.approx(RING * SCALE, abs=0.03)
    long = by_id["ov-completed_long"]
    assert long["end"] - long["answer"] == pytest.approx(MAX * SCALE, abs=0.03)
    for c in calls:
        assert {"call_id", "org_id", "batch_id", "contact_id", "to", "from", "attempt", "start", "answer", "end", "outcome"} <= set(c)

    recorded = {c["call_id"]: c for c in load_record(record_file)}
    assert set(recorded) == set(by_id)
    assert all(recorded[k]["end"] == by_id[k]["end"] for k in by_id)


def test_no_answer_then_completed_is_stateful_per_number(carrier: SimCarrierProcess) -> None:
    number = number_with_outcome("no_answer_then_completed", 42)

    async def main() -> list[Outcome]:
        provider = SimulatedProvider(carrier.url)
        try:
            first = await provider.place_call(request("retry-1", number, contact="k"), Answers())
            second = await provider.place_call(request("retry-2", number, contact="k", attempt=2), Answers())
            return [first.outcome, second.outcome]
        finally:
            await provider.close()

    assert asyncio.run(main()) == [Outcome.NO_ANSWER, Outcome.COMPLETED]


def test_cancel_before_answer_hangs_up_as_no_answer(carrier: SimCarrierProcess) -> None:
    async def main() -> None:
        provider = SimulatedProvider(carrier.url)
        try:
            req = request("cancel-ringing", number_with_outcome("no_answer", 1), ring=400)
            task = asyncio.create_task(provider.place_call(req, Answers()))
            await asyncio.sleep(0.05)  # it rings for 2 s
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            status = await provider.call_status("cancel-ringing", TRUNK)
            assert status.state is CallState.ENDED and status.result is not None
            assert status.result.outcome is Outcome.NO_ANSWER
            assert status.result.detail == "cancelled by caller"
            assert (await provider.stats())["live_calls"] == 0
        finally:
            await provider.close()

    asyncio.run(main())


def test_cancel_after_answer_completes_with_actual_duration(carrier: SimCarrierProcess) -> None:
    async def main() -> None:
        provider = SimulatedProvider(carrier.url)
        try:
            answers = Answers()
            req = request("cancel-talking", number_with_outcome("completed_long", 1), max_duration=400)
            task = asyncio.create_task(provider.place_call(req, answers))
            await asyncio.wait_for(answers.event.wait(), 5)
            await asyncio.sleep(0.05)  # ~10 simulated seconds of talk
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            status = await provider.call_status("cancel-talking", TRUNK)
            assert status.state is CallState.ENDED and status.result is not None
            assert status.result.outcome is Outcome.COMPLETED
            assert 8 <= status.result.duration_seconds < 400
            assert status.result.detail == "hung up by caller"
            assert (await provider.stats())["live_calls"] == 0
        finally:
            await provider.close()

    asyncio.run(main())


def test_same_call_id_is_not_placed_twice(carrier: SimCarrierProcess) -> None:
    async def main() -> None:
        provider = SimulatedProvider(carrier.url)
        try:
            req = request("dup-1", number_with_outcome("completed", 1), batch="dup")
            first, second = await asyncio.gather(provider.place_call(req, Answers()), provider.place_call(req, Answers()))
            assert first == second
            third = await provider.place_call(req, Answers())  # after the end: the ended call comes back
            assert third == first
            stats = await provider.stats()
            assert stats["total_calls"] == 1 and stats["duplicate_posts"] == 2
            (call,) = await provider.calls("dup")
            assert call["duplicate_posts"] == 2
        finally:
            await provider.close()

    asyncio.run(main())


def test_hang_up_that_overtakes_the_post_places_nothing(carrier: SimCarrierProcess) -> None:
    status, _ = http_json(carrier.url + "/calls/ghost-1", "DELETE")
    assert status == 404
    status, body = http_json(carrier.url + "/calls", "POST", {"call_id": "ghost-1", "to": number_with_outcome("completed", 1)})
    assert status == 200 and body["state"] == "ended" and body["outcome"] == "no_answer"
    _, stats = http_json(carrier.url + "/stats")
    assert stats["total_calls"] == 0 and stats["live_calls"] == 0


def test_status_of_unknown_call_and_bad_requests(carrier: SimCarrierProcess) -> None:
    async def main() -> None:
        provider = SimulatedProvider(carrier.url)
        try:
            assert (await provider.call_status("never-placed", TRUNK)).state is CallState.UNKNOWN
        finally:
            await provider.close()

    asyncio.run(main())
    assert http_json(carrier.url + "/calls", "POST", {"to": "+14155550123"})[0] == 400
    assert http_json(carrier.url + "/nope")[0] == 404


def test_recording_and_transcript_when_enabled(carrier: SimCarrierProcess) -> None:
    async def main() -> tuple[Any, Any]:
        provider = SimulatedProvider(carrier.url)
        try:
            on = request("rec-on", number_with_outcome("completed", 1), recording_enabled=True, transcript_enabled=True,
                         variables={"first_name": "Ada", "topic": "your appointment"})
            off = request("rec-off", number_with_outcome("completed", 2))
            return await asyncio.gather(provider.place_call(on, Answers()), provider.place_call(off, Answers()))
        finally:
            await provider.close()

    on, off = asyncio.run(main())
    assert on.recording_uri == "https://recordings.sim.batchcalls.invalid/rec-on.wav"
    assert "Ada" in on.transcript and "your appointment" in on.transcript and on.transcript.count("\n") >= 2
    assert off.recording_uri == "" and off.transcript == ""


def test_call_outlives_a_killed_dialer(carrier: SimCarrierProcess) -> None:
    """A dialer killed with SIGKILL mid-call leaves the call to end on the carrier's timers."""
    script = textwrap.dedent(f"""
        import asyncio, sys
        from dialer.providers.base import CallRequest, TrunkSettings
        from dialer.providers.simulated import SimulatedProvider, SimulatedProviderError
        async def on_answer(t):
            print("ANSWERED", flush=True)
        async def main():
            p = SimulatedProvider({carrier.url!r})
            await p.place_call(CallRequest(
                provider_call_id="orphan-1", to_number={number_with_outcome("completed_long", 9)!r},
                from_number="+14155550100", trunk=TrunkSettings(kind="simulated"), ring_timeout_seconds=20,
                max_call_duration_seconds=400, organization_id="o1", batch_id="orphans", contact_id="k1",
                agent_id="a", attempt_number=1), on_answer)
        asyncio.run(main())
    """)
    dialer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert dialer.stdout is not None
        assert dialer.stdout.readline().strip() == "ANSWERED"
        dialer.send_signal(signal.SIGKILL)
        dialer.wait(5)
    finally:
        if dialer.poll() is None:
            dialer.kill()
        if dialer.stdout is not None:
            dialer.stdout.close()

    async def main() -> None:
        provider = SimulatedProvider(carrier.url)
        try:
            status = await provider.call_status("orphan-1", TRUNK)
            assert status.state is CallState.IN_PROGRESS
            assert (await provider.stats())["live_calls"] == 1
            deadline = time.monotonic() + 10
            while status.state is not CallState.ENDED and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                status = await provider.call_status("orphan-1", TRUNK)
            assert status.state is CallState.ENDED and status.result is not None
            assert status.result.outcome is Outcome.COMPLETED
            assert status.result.duration_seconds == pytest.approx(400, rel=0.01)
        finally:
            await provider.close()

    asyncio.run(main())


def test_concurrency_is_tracked_per_org_and_batch_and_agrees_with_the_record(carrier: SimCarrierProcess) -> None:
    async def main() -> None:
        provider = SimulatedProvider(carrier.url)
        try:
            # Two batches of one org, 3 and 5 at a time, plus another org with 4.
            async def run_batch(org: str, batch: str, limit: int, n: int) -> None:
                sem = asyncio.Semaphore(limit)

                async def one(i: int) -> None:
                    async with sem:
                        await provider.place_call(
                            request(f"{batch}-{i}", number_with_outcome("random", i), batch=batch, org=org, trunk=FAST), Answers()
                        )

                await asyncio.gather(*(one(i) for i in range(n)))

            await asyncio.gather(run_batch("orgA", "bA1", 3, 30), run_batch("orgA", "bA2", 5, 40), run_batch("orgB", "bB1", 4, 30))
            stats = await provider.stats()
            assert stats["live_calls"] == 0 and stats["total_calls"] == 100
            assert stats["max_live_by_batch"] == {"bA1": 3, "bA2": 5, "bB1": 4}
            assert stats["max_live_calls_by_org"] == {"orgA": 8, "orgB": 4}
            check = check_record(await provider.calls())
            assert check.max_concurrent_by_batch == stats["max_live_by_batch"]
            assert check.max_concurrent_by_org == stats["max_live_calls_by_org"]
            assert not check.has_overlap and check.unfinished_calls == 0
            assert check.outcomes == {"completed": 100}
        finally:
            await provider.close()

    asyncio.run(main())


def test_reset_ends_live_calls_and_forgets_everything(carrier: SimCarrierProcess, record_file: Path) -> None:
    async def main() -> None:
        provider = SimulatedProvider(carrier.url)
        try:
            task = asyncio.create_task(provider.place_call(request("reset-1", number_with_outcome("completed_long", 3)), Answers()))
            await asyncio.sleep(0.05)
            await provider.reset()
            result = await asyncio.wait_for(task, 5)
            assert result.outcome is Outcome.CARRIER_ERROR and result.detail == "carrier reset"
            stats = await provider.stats()
            assert stats["total_calls"] == 0 and stats["live_calls"] == 0 and stats["max_live_calls_by_org"] == {}
        finally:
            await provider.close()

    asyncio.run(main())
    assert load_record(record_file) == []


def test_500_concurrent_calls(carrier: SimCarrierProcess) -> None:
    async def main() -> float:
        provider = SimulatedProvider(carrier.url)
        try:
            # 600 simulated seconds = 3 s of talk: long enough that all 500
            # calls overlap even on a busy machine, so the carrier's peak of
            # live calls proves they ran at once (speed is bench/'s business).
            trunk = TrunkSettings(kind="simulated", simulation={"completed": 1, "ring_seconds": 0, "mean_call_seconds": 600, "talk_sigma": 0})
            reqs = [request(f"load-{i}", number_with_outcome("random", i), batch="load", trunk=trunk, max_duration=1200)
                    for i in range(500)]
            results = await asyncio.gather(*(provider.place_call(r, Answers()) for r in reqs))
            assert all(r.outcome is Outcome.COMPLETED and r.duration_seconds == 600 for r in results)
            stats = await provider.stats()
            assert stats["max_live_by_batch"]["load"] == 500
        finally:
            await provider.close()

    asyncio.run(main())


def test_cli_prints_one_ready_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simcarrier", "--host", "127.0.0.1", "--port", "0", "--time-scale", "0.001",
         "--record-file", str(tmp_path / "r.jsonl"), "--seed", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("SIMCARRIER_READY http://127.0.0.1:")
        url = line.split()[1]
        assert http_json(url + "/stats")[1]["time_scale"] == 0.001
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert out == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_provider_survives_a_carrier_restart_and_reports_a_dead_one() -> None:
    """Pooled keep-alive connections to a restarted carrier are retried on fresh ones."""
    first = spawn(time_scale=SCALE)
    port = int(first.url.rsplit(":", 1)[1])

    async def main() -> None:
        provider = SimulatedProvider(first.url, retry_budget_seconds=0.5)
        try:
            await provider.stats()  # leaves a pooled connection behind
            first.stop()
            with spawn(time_scale=SCALE, port=port):
                assert (await provider.call_status("anything", TRUNK)).state is CallState.UNKNOWN
            t0 = time.monotonic()
            with pytest.raises(SimulatedProviderError):
                await provider.place_call(request("dead-1", number_with_outcome("completed", 1)), Answers())
            assert time.monotonic() - t0 < 5
        finally:
            await provider.close()

    try:
        asyncio.run(main())
    finally:
        first.stop()


def test_post_with_wait_answers_once_ringing_is_over(carrier: SimCarrierProcess) -> None:
    """POST /calls?wait=<s> holds the answer until the call is past ringing
    (the provider's first long-poll saved); without it the call is ringing."""
    body = {"to": "+14155550187", "simulation": {"completed": 1, "ring_seconds": RING, "mean_call_seconds": 20}}
    status, plain = http_json(carrier.url + "/calls", "POST", {**body, "call_id": "post-plain"})
    assert (status, plain["state"]) == (202, "ringing")
    t0 = time.monotonic()
    status, waited = http_json(carrier.url + "/calls?wait=5", "POST", {**body, "call_id": "post-wait"})
    assert status == 202 and waited["state"] in ("in_progress", "ended")
    assert waited["answer"] is not None
    assert time.monotonic() - t0 >= RING * SCALE * 0.45  # it waited out the ring (0.5-1.5 x ring_seconds)


def test_every_error_answer_is_json(carrier: SimCarrierProcess) -> None:
    """Unknown paths, refused methods and oversized bodies answer a JSON error, as the API documents."""
    assert http_json(carrier.url + "/calls", "PUT", {}) == (405, {"error": "PUT not allowed on /calls"})
    assert http_json(carrier.url + "/stats", "POST", {}) == (404, {"error": "no such resource"})
    assert http_json(carrier.url + "/calls/nobody/wait", "POST", {}) == (404, {"error": "no such resource"})
    assert http_json(carrier.url + "/calls/nobody", "PUT", {}) == (404, {"error": "unknown call"})
    status, body = http_json(carrier.url + "/calls", "POST", {"call_id": "big", "to": "+14155550108", "pad": "x" * 300_000})
    assert (status, body) == (413, {"error": "body too large"})


def test_cli_help_and_environment_fallbacks(tmp_path: Path) -> None:
    """``--help`` lists every option; without options the SIMCARRIER_* variables apply."""
    help_text = subprocess.run([sys.executable, "-m", "simcarrier", "--help"], capture_output=True, text=True,
                               timeout=30, check=True).stdout
    for option in ("--host", "--port", "--time-scale", "--seed", "--log-level", "--record-file"):
        assert option in help_text
    record = tmp_path / "env.jsonl"
    env = {**os.environ, "SIMCARRIER_HOST": "127.0.0.1", "SIMCARRIER_PORT": "0", "SIMCARRIER_TIME_SCALE": "0.002",
           "SIMCARRIER_RECORD_FILE": str(record), "SIMCARRIER_LOG_LEVEL": "error"}
    proc = subprocess.Popen([sys.executable, "-m", "simcarrier"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[1]
        assert http_json(url + "/healthz")[1]["time_scale"] == 0.002
        assert http_json(url + "/calls", "POST", {"call_id": "env-1", "to": number_with_outcome("busy", 1)})[0] == 202
        assert [c["call_id"] for c in load_record(record)] == ["env-1"]
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def ndjson_post(url: str, body: Any) -> tuple[int, str, list[dict[str, Any]]]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), [json.loads(x) for x in resp.read().splitlines()]


def test_post_with_follow_streams_the_call_to_its_end(carrier: SimCarrierProcess) -> None:
    """POST /calls?follow=<s> answers NDJSON: a line once ringing is over (the
    answer), a last one once the call ended; a call that ends while ringing
    has only the ended line; a follow shorter than the call ends its body
    with the live state, and the call goes on."""
    body = {"to": "+14155550187", "simulation": {"completed": 1, "ring_seconds": RING, "mean_call_seconds": 20}}
    status, ctype, lines = ndjson_post(carrier.url + "/calls?follow=5", {**body, "call_id": "follow-1"})
    assert status == 202 and ctype.startswith("application/x-ndjson")
    assert [x["state"] for x in lines] == ["in_progress", "ended"]
    assert lines[0]["answer"] is not None and lines[0]["end"] is None
    assert lines[1]["outcome"] == "completed" and lines[1]["end"] >= lines[1]["answer"]

    status, _, lines = ndjson_post(carrier.url + "/calls?follow=5",
                                   {"call_id": "follow-busy", "to": number_with_outcome("busy", 1)})
    assert status == 202 and [(x["state"], x["outcome"]) for x in lines] == [("ended", "busy")]

    long = {**body, "simulation": {"completed": 1, "ring_seconds": 0, "mean_call_seconds": 2000, "talk_sigma": 0}}
    status, _, lines = ndjson_post(carrier.url + "/calls?follow=0.2", {**long, "call_id": "follow-long"})
    assert [x["state"] for x in lines] == ["in_progress", "in_progress"]  # the follow's time ran out
    assert http_json(carrier.url + "/calls/follow-long")[1]["state"] == "in_progress"
    # Posted again (a retry), the same call is followed: 200, not a second call.
    status, _, lines = ndjson_post(carrier.url + "/calls?follow=0.05", {**long, "call_id": "follow-long"})
    assert status == 200 and lines[0]["call_id"] == "follow-long"


def test_provider_follows_a_call_on_one_request_and_long_polls_only_past_the_follow(
        carrier: SimCarrierProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """place_call learns the answer (on_answer, before the end) and the end
    from the one POST; only a call that outlives the follow's time costs a
    long-poll, and it still ends with its result."""
    import dialer.providers.simulated as simulated

    async def main() -> None:
        provider = SimulatedProvider(carrier.url)
        polls: list[str] = []
        plain_request = provider._http.request

        async def counting(method: str, path: str, *a: Any, **kw: Any) -> Any:
            polls.append(f"{method} {path.split('?')[0]}")
            return await plain_request(method, path, *a, **kw)

        provider._http.request = counting  # type: ignore[method-assign]
        try:
            answers = Answers()
            res = await provider.place_call(request("prov-follow-1", "+14155550123", trunk=FAST), answers)
            assert res.outcome is Outcome.COMPLETED and len(answers.times) == 1
            assert answers.times[0] <= res.end_time
            assert polls == []  # no long-poll, no second request

            monkeypatch.setattr(simulated, "POLL_SECONDS", 0.05)  # the follow ends before the call
            slow = TrunkSettings(kind="simulated", simulation={"completed": 1, "ring_seconds": 0,
                                                               "mean_call_seconds": 50, "talk_sigma": 0})
            answers = Answers()
            res = await provider.place_call(request("prov-follow-2", "+14155550124", trunk=slow), answers)
            assert res.outcome is Outcome.COMPLETED and len(answers.times) == 1
            assert polls and all(p == "GET /calls/prov-follow-2/wait" for p in polls)
        finally:
            await provider.close()

    asyncio.run(main())
