"""The reconciler's repair pass must not put back an organization limit that
an UpdateOrganization changed while the pass was taking its snapshot (seen
in CI: the org limit 2 set by its owner was overwritten by the stale 10 read
a moment before, and a SIP peer saw 6 calls at once)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from server.adapters.db.schema import organizations
from contract import keys
from server.service import background


def test_repair_pass_keeps_an_org_limit_changed_during_its_snapshot(stack: Any, monkeypatch: Any) -> None:
    org = stack.new_org(concurrency_limit=10)
    real_snapshot = background.snapshot

    async def snapshot_then_update(ctx: Any) -> Any:
        snap = await real_snapshot(ctx)  # says 10
        # The owner lowers the limit now (what UpdateOrganization does).
        async with ctx.engine.begin() as conn:
            await conn.execute(update(organizations).where(organizations.c.id == org.org_id).values(concurrency_limit=2))
        await ctx.redis_state.set_org_limit(org.org_id, 2)
        return snap

    monkeypatch.setattr(background, "snapshot", snapshot_then_update)

    async def run_and_read() -> bytes:
        await background.reconcile(stack.ctx)
        return await stack.ctx.redis_state.redis.hget(keys.org_config(org.org_id), "limit")

    assert stack.run(run_and_read()) == b"2"


def test_repair_pass_still_fixes_a_missing_or_unchanged_limit(stack: Any) -> None:
    org = stack.new_org(concurrency_limit=7)
    redis = stack.ctx.redis_state.redis

    async def scenario() -> list[bytes | None]:
        await redis.hdel(keys.org_config(org.org_id), "limit")  # lost
        await background.reconcile(stack.ctx)
        restored = await redis.hget(keys.org_config(org.org_id), "limit")
        await redis.hset(keys.org_config(org.org_id), "limit", 99)  # wrong, and nobody changes it
        await background.reconcile(stack.ctx)
        fixed = await redis.hget(keys.org_config(org.org_id), "limit")
        return [restored, fixed]

    assert stack.run(scenario()) == [b"7", b"7"]
