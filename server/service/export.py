"""Queries behind ExportBatch: contact rows in pages, and the report figures.

Rows are read in keyset pages on ``contacts.id`` (``EXPORT_PAGE`` at a time),
one short transaction per page, so an export of any size holds neither a
long transaction nor the whole batch in memory. Exports are only allowed
for final batches (COMPLETED / FAILED), whose contacts no longer change, so
paging sees one consistent set.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, AsyncIterator

from sqlalchemy import func, select, text

from server.adapters.db.schema import attempts, contacts
from server.domain.contact_rules import ContactStatus
from server.domain.export_csv import FAILED_STATUSES, SUCCESSFUL_STATUSES, ExportRow
from server.domain.report_pdf import ReportData
from server.service.context import ServiceContext

EXPORT_PAGE = 1000
SLUG_MAX = 80

_STATUSES_FOR = {
    "all": None,
    "successful": sorted(SUCCESSFUL_STATUSES),
    "failed": sorted(FAILED_STATUSES),
}

_COLUMNS = (
    contacts.c.id,
    contacts.c.name,
    contacts.c.phone,
    contacts.c.status,
    contacts.c.attempts,
    contacts.c.duration_seconds,
    contacts.c.failure_reason,
    contacts.c.last_attempt_at,
    contacts.c.variables,
    contacts.c.consent_at,
    contacts.c.consent_source,
    # The contact's latest reported result (ResultsService).
    attempts.c.disposition,
    attempts.c.answered_by,
    attempts.c.summary,
    attempts.c.extracted_fields,
)
_FROM = contacts.outerjoin(attempts, attempts.c.id == contacts.c.result_attempt_id)


def slug(name: str) -> str:
    """``"January Payment Reminders"`` -> ``january-payment-reminders``
    (ASCII, safe in a Content-Disposition file name; ``batch`` if empty)."""
    text = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return text[:SLUG_MAX].rstrip("-") or "batch"


def export_row(r: Any) -> ExportRow:
    """One contact as exported. ``call_timestamp`` is the start of the
    contact's last attempt (when it was last called); empty if never called."""
    return ExportRow(
        name=r.name,
        phone=r.phone,
        status=r.status,
        attempts=r.attempts,
        duration_seconds=r.duration_seconds,
        failure_reason=r.failure_reason,
        call_timestamp=r.last_attempt_at,
        variables={str(k): "" if v is None else str(v) for k, v in (r.variables or {}).items()},
        disposition=r.disposition or "",
        answered_by=r.answered_by or "",
        summary=r.summary or "",
        extracted={str(f.get("name")): _field_text(f) for f in (r.extracted_fields or [])},
        consent_at=getattr(r, "consent_at", None),
        consent_source=getattr(r, "consent_source", "") or "",
    )


def _field_text(f: dict[str, Any]) -> str:
    value = f.get("value")
    if f.get("type") == "bool":
        return "true" if value else "false"
    if f.get("type") == "number":
        number = float(value)  # type: ignore[arg-type]
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)
    return "" if value is None else str(value)


async def extracted_field_names(ctx: ServiceContext, batch_id: str) -> list[str]:
    """Every extracted field name reported in the batch's contacts' latest
    results, sorted: one export column each."""
    async with ctx.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT DISTINCT f->>'name' AS name FROM contacts c JOIN attempts a ON a.id = c.result_attempt_id, "
                "jsonb_array_elements(a.extracted_fields) f WHERE c.batch_id = :b ORDER BY 1"
            ),
            {"b": batch_id},
        )
        return [r.name for r in rows if r.name]


async def export_pages(
    ctx: ServiceContext, batch_id: str, export_filter: str, page: int | None = None
) -> AsyncIterator[list[ExportRow]]:
    """Pages of export rows in contact id order (= upload order)."""
    page = page or EXPORT_PAGE
    statuses = _STATUSES_FOR[export_filter]
    after = 0
    while True:
        q = select(*_COLUMNS).select_from(_FROM).where(contacts.c.batch_id == batch_id, contacts.c.id > after)
        if statuses is not None:
            q = q.where(contacts.c.status.in_(statuses))
        async with ctx.engine.connect() as conn:
            rows = (await conn.execute(q.order_by(contacts.c.id).limit(page))).all()
        if not rows:
            return
        after = rows[-1].id
        yield [export_row(r) for r in rows]
        if len(rows) < page:
            return


async def attempts_histogram(ctx: ServiceContext, batch_id: str) -> dict[int, int]:
    """Contacts by attempts used, every contact included (0 = never called):
    an index-only scan of ``ix_contacts_batch_attempts``."""
    async with ctx.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(contacts.c.attempts, func.count())
                .where(contacts.c.batch_id == batch_id)
                .group_by(contacts.c.attempts)
            )
        ).all()
    return {int(a): int(n) for a, n in rows}


STATUS_COUNTERS = tuple(s.value for s in ContactStatus)


def report_data(row: Any, histogram: dict[int, int]) -> ReportData:
    """Figures of the PDF from the batch row (maintained counters); rates
    are fractions of the contacts that reached a called-final status, as on
    the overview cards (``convert.stats_msg``)."""
    failed_total = row.n_failed + row.n_invalid_number + row.n_blocked + row.n_carrier_error
    finished = row.n_completed + failed_total
    outcomes: dict[tuple[int, str], int] = {}
    for key, count in (row.outcomes_by_attempt or {}).items():
        number, _, outcome = str(key).partition(":")
        if number.isdigit():
            outcomes[(int(number), outcome)] = int(count)
    return ReportData(
        batch_name=row.display_name,
        batch_id=row.id,
        status=row.status,
        agent_name=row.agent_display_name,
        from_number=row.from_e164,
        created=row.created_at,
        started=row.started_at,
        completed=row.completed_at,
        total=row.total_contacts,
        successful=row.n_completed,
        failed=failed_total,
        cancelled=row.n_cancelled,
        suppressed=row.n_suppressed,
        success_rate=(row.n_completed / finished) if finished else 0.0,
        failure_rate=(failed_total / finished) if finished else 0.0,
        average_duration_seconds=(row.total_duration_seconds / row.connected_calls) if row.connected_calls else 0.0,
        total_duration_seconds=row.total_duration_seconds,
        cost_micros=row.cost_micros,
        attempts_histogram=histogram,
        outcomes_by_attempt=outcomes,
        status_breakdown={s: int(getattr(row, f"n_{s}")) for s in STATUS_COUNTERS},
    )
