"""Server-side cost of the dialer's hot path, in-process (no gRPC, no other
load): StartAttempt / MarkAnswered / FinishAttempt flushes of N items on the
embedded PostgreSQL, timed per flush and per item.

    python bench/attempt_flushes.py [--contacts 4000] [--sizes 1 4 16] [--profile]

Where the dispatch benchmark says "the server is slow", this says which of
the three use cases costs what, so an optimisation can be measured alone.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import embedded_stack  # noqa: E402 - after the path is set


async def run(args: argparse.Namespace, org, batch) -> None:
    from sqlalchemy import select

    from server.adapters.db.schema import contacts
    from server.service.dialing import AnswerInput, FinishInput, StartInput, finish_attempts, mark_answered_many, start_attempts

    ctx = args.stack.ctx
    async with ctx.engine.connect() as conn:
        ids = [r.id for r in await conn.execute(select(contacts.c.id).where(contacts.c.batch_id == batch.batch_id))]
    profiler = cProfile.Profile() if args.profile else None
    pos = 0
    for size in args.sizes:
        times = {"start": 0.0, "mark": 0.0, "finish": 0.0}
        flushes = max(1, args.items // size)
        for _ in range(flushes):
            chunk, pos = ids[pos:pos + size], pos + size
            if len(chunk) < size:
                break
            items = [StartInput(org.org_id, batch.batch_id, c, 1000 + c, f"l{c}", "bench", f"call{c}") for c in chunk]
            if profiler:
                profiler.enable()
            t0 = time.perf_counter()
            granted = await start_attempts(ctx, items)
            t1 = time.perf_counter()
            await mark_answered_many(ctx, [AnswerInput(g.attempt_id, 1000 + c) for g, c in zip(granted, chunk)])
            t2 = time.perf_counter()
            await finish_attempts(ctx, [FinishInput(g.attempt_id, 1000 + c, "completed", duration_seconds=30.0)
                                        for g, c in zip(granted, chunk)])
            t3 = time.perf_counter()
            if profiler:
                profiler.disable()
            times["start"] += t1 - t0
            times["mark"] += t2 - t1
            times["finish"] += t3 - t2
        print(f"flush size {size:3d}: " + "  ".join(
            f"{k} {v / flushes * 1000:6.2f} ms/flush {v / (flushes * size) * 1000:5.2f} ms/item" for k, v in times.items()))
    if profiler:
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(45)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=4000)
    ap.add_argument("--items", type=int, default=600, help="items per flush size")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--sort", default="cumulative", help="pstats sort key with --profile")
    args = ap.parse_args()

    from tests.support.drive import create_batch

    with embedded_stack("bench-flush-", env={"BATCHCALLS_LOG_LEVEL": "WARNING"}) as stack:
        args.stack = stack
        args.contacts = max(args.contacts, args.items * len(args.sizes) + 100)
        org = stack.new_org(concurrency_limit=50, credits_usd=1_000_000)
        csv = "phone\n" + "".join(f"+1212{5550000 + i:07d}\n" for i in range(args.contacts))
        batch = create_batch(stack, org, csv, max_attempts=1)
        stack.run(run(args, org, batch), timeout=600)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
