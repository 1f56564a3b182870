"""Explaining callability (issue 16, item 6): the ExplainCallability RPC and
the explanation shown on a contact that waits for its window.

Both use the dial decision's own inputs (``window_for``, the batch's time
zone, ``jurisdiction_applies`` for its trunk) and
:func:`server.domain.jurisdiction.evaluate`, so they say what StartAttempt
would decide on the window (not the frequency caps, which depend on calls
placed in the meantime).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from server.adapters.db.schema import batches, organizations, phone_numbers
from server.domain.errors import FieldViolation, InvalidArgument, NotFound
from server.domain.jurisdiction import TABLE_VERSION, RuleTable, Verdict, evaluate
from server.domain.phone import normalize_phone
from server.service.context import ServiceContext
from server.service.dialing_types import jurisdiction_applies, window_for

#: No jurisdiction rows: the window alone (simulated trunk, rules not applied).
_NO_RULES = RuleTable(TABLE_VERSION, ())


@dataclass(frozen=True)
class Explanation:
    verdict: Verdict
    jurisdiction_applied: bool


def explain_with(phone: str, at: datetime, batch: Any, org: Any, trunk_kind: str | None, settings: Any) -> Explanation:
    """The verdict for ``phone`` at ``at`` under ``batch`` (None: the
    organization's default window, UTC for unknown zones)."""
    applied = jurisdiction_applies(trunk_kind, settings)
    window = window_for(batch, org)
    tz = batch.timezone if batch is not None else "UTC"
    verdict = evaluate(phone, at, window, tz) if applied else evaluate(phone, at, window, tz, table=_NO_RULES)
    return Explanation(verdict, applied)


async def explain(ctx: ServiceContext, org_id: str, raw_phone: str, at: datetime | None, batch_id: str | None) -> Explanation:
    if not raw_phone.strip():
        raise InvalidArgument(FieldViolation("phone_number", "required, E.164 (+13055550123)"))
    parsed = normalize_phone(raw_phone, None)
    if parsed.e164 is None:
        raise InvalidArgument(FieldViolation("phone_number", parsed.reason or "invalid phone number"))
    at = at or ctx.clock.now()
    async with ctx.engine.connect() as conn:
        org = (await conn.execute(select(organizations).where(organizations.c.id == org_id))).first()
        if org is None:
            raise NotFound("organization not found")
        batch, trunk_kind = None, "sip"  # no batch: judged as a real call
        if batch_id is not None:
            row = (
                await conn.execute(
                    select(batches, phone_numbers.c.trunk_kind.label("trunk_kind_of_number"))
                    .join(phone_numbers, phone_numbers.c.id == batches.c.from_number_id)
                    .where(batches.c.id == batch_id, batches.c.org_id == org_id)
                )
            ).first()
            if row is None:
                raise NotFound(f"batches/{batch_id} not found")
            batch, trunk_kind = row, row.trunk_kind_of_number
    return explain_with(parsed.e164, at, batch, org, trunk_kind, ctx.settings)


async def explain_contact(ctx: ServiceContext, contact: Any) -> Explanation | None:
    """For a contact waiting for its calling window: the explanation now."""
    from server.domain.compliance import REASON_OUTSIDE_WINDOW

    if contact.status != "queued" or contact.wait_reason != REASON_OUTSIDE_WINDOW:
        return None
    return await explain(ctx, contact.org_id, contact.phone, None, contact.batch_id)
