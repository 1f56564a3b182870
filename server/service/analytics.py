"""Live figures of a batch that are derived, not stored: the estimated
completion time, contacts waiting for their calling window, retries pending.

Cheap by construction (docs/capacity.md, "Reads"): the counters on the batch row are
maintained, never counted here. The only query is over the batch's QUEUED
contacts (index ``ix_contacts_batch_status`` = (batch_id, status, id)).
GetBatch runs it inside its batch statement (``queued_lateral``: an index
probe that finds nothing when no contact is queued); other callers run it
on its own, skipped when the ``n_queued`` counter says there are none. It
groups due times to the minute, so a batch of 10,000 retries returns a few
hundred rows, not 10,000.

Estimated completion (``server.domain.eta``), by batch status:

* RUNNING: simulated from the counters: ``n_pending`` contacts dialable now,
  the queued contacts at their ``next_attempt_at``, ``n_dialing +
  n_connected`` calls in progress, concurrency ``min(batch limit,
  organization limit)``, and the observed mean call length
  ``total_duration_seconds / connected_calls`` (the seed's 3-minute
  assumption until a call has connected). Future retries are not predicted.
* SCHEDULED: the same simulation started at the scheduled instant (nothing
  has been called yet), so the detail page shows when a scheduled campaign
  should end.
* COMPLETED: ``completed_at`` (the estimate has become the fact).
* PENDING (held back, e.g. waiting for credits), PAUSED, FAILED, CANCELLED:
  none. Such a batch does not progress by itself; an estimate would be a
  guess about when somebody acts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select

from server.adapters.db.reads import read_connection, sql_constant
from server.adapters.db.schema import contacts
from server.domain.compliance import REASON_OUTSIDE_WINDOW
from server.domain.contact_rules import ContactStatus
from server.domain.eta import EtaInputs, estimate_completion
from server.service.context import ServiceContext

ESTIMATED_STATUSES = ("running", "scheduled")


#: Due times are grouped to the minute (the estimate is shown to the minute):
#: 10,000 queued retries come back as a few hundred rows.
DUE_BUCKET = "minute"


def _due_bucket():  # type: ignore[no-untyped-def]
    return func.date_trunc(sql_constant(DUE_BUCKET), contacts.c.next_attempt_at)


def queued_summary_query(batch_id: Any) -> Any:
    """``batch_id``: a value, or a bindparam (the statement queued_summary runs)."""
    due = _due_bucket().label("due")
    return (
        select(
            due,
            func.count().label("n"),
            func.count().filter(contacts.c.wait_reason == sql_constant(REASON_OUTSIDE_WINDOW)).label("window"),
            func.count().filter(contacts.c.attempts > sql_constant(0)).label("retries"),
        )
        .where(contacts.c.batch_id == batch_id, contacts.c.status == sql_constant(ContactStatus.QUEUED.value))
        .group_by(due)
    )


#: Built once (SQLAlchemy keeps its cache key); the batch id bound per call.
_QUEUED_SUMMARY = queued_summary_query(bindparam("p_batch_id"))


async def queued_summary(ctx: ServiceContext, batch_id: str, conn: Any = None) -> tuple[list[datetime], int, int]:
    """(due times of queued contacts, waiting for window, retries pending).
    A queued contact without a due time counts as due now. ``conn``: the
    caller's connection (GetBatch reads the batch row on it), else an
    autocommit one of its own."""
    now = ctx.clock.now()
    if conn is None:
        async with read_connection(ctx.engine) as own:
            rows = (await own.execute(_QUEUED_SUMMARY, {"p_batch_id": batch_id})).all()
    else:
        rows = (await conn.execute(_QUEUED_SUMMARY, {"p_batch_id": batch_id})).all()
    due: list[datetime] = []
    window = retries = 0
    for r in rows:
        due.extend([r.due or now] * int(r.n))
        window += int(r.window)
        retries += int(r.retries)
    return due, window, retries


def queued_lateral(batch_id: Any, outer: Any) -> Any:
    """``queued_summary_query`` of the batch ``batch_id`` (a column of
    ``outer``) as one LATERAL row: the due minutes and their counts as two
    arrays, the window and retry totals. GetBatch reads it with the batch
    view, in the same statement (``queued_from_row``)."""
    per_minute = queued_summary_query(batch_id).correlate(outer).subquery("queued_by_minute")
    return select(
        func.array_agg(per_minute.c.due).label("queued_due"),
        func.array_agg(per_minute.c.n).label("queued_n"),
        func.coalesce(func.sum(per_minute.c.window), 0).label("queued_window"),
        func.coalesce(func.sum(per_minute.c.retries), 0).label("queued_retries"),
    ).lateral("queued")


def queued_from_row(row: Any, now: datetime) -> tuple[list[datetime], int, int]:
    """What ``queued_summary`` returns, from a row joined with ``queued_lateral``."""
    due: list[datetime] = []
    for when, n in zip(row.queued_due or (), row.queued_n or ()):
        due.extend([when or now] * int(n))
    return due, int(row.queued_window), int(row.queued_retries)


def mean_call_seconds(row: Any) -> float | None:
    if row.connected_calls and row.connected_calls > 0:
        return float(row.total_duration_seconds) / row.connected_calls
    return None


def effective_concurrency(row: Any) -> int:
    org_limit = getattr(row, "org_limit", None)
    if org_limit is None:
        return int(row.concurrency_limit)
    return int(min(row.concurrency_limit, org_limit))


def estimate(row: Any, now: datetime, queued_due: list[datetime]) -> datetime | None:
    """The ETA rule of the module docstring, pure given the queued due times."""
    if row.status == "completed":
        return row.completed_at
    if row.status not in ESTIMATED_STATUSES:
        return None
    start = now
    if row.status == "scheduled" and row.scheduled_at is not None and row.scheduled_at > now:
        start = row.scheduled_at
    return estimate_completion(
        EtaInputs(
            now=start,
            pending=int(row.n_pending),
            queued_due=queued_due,
            in_progress=int(row.n_dialing) + int(row.n_connected),
            concurrency=effective_concurrency(row),
            mean_call_seconds=mean_call_seconds(row),
        )
    )


async def live_figures(ctx: ServiceContext, row: Any, conn: Any = None) -> dict[str, Any]:
    """Keyword arguments for ``server.api.convert.batch_msg``: ``eta``,
    ``waiting_for_window``, ``retries_pending``. ``conn``: see queued_summary.
    A row joined with ``queued_lateral`` carries its summary already."""
    now = ctx.clock.now()
    queued_due: list[datetime] = []
    window = retries = 0
    if "queued_n" in row._fields:
        queued_due, window, retries = queued_from_row(row, now)
    elif row.n_queued > 0:
        queued_due, window, retries = await queued_summary(ctx, row.id, conn)
    return {
        "eta": estimate(row, now, queued_due),
        "waiting_for_window": window,
        "retries_pending": retries,
    }
