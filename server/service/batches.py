"""Batch use cases: validate a CSV, create a batch, read batches and contacts."""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, String, and_, any_, bindparam, func, insert, literal_column, null, or_, select, true, type_coerce
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import NullType

from server.adapters.db import counters
from server.adapters.db.contacts_copy import copy_contacts
from server.adapters.db.reads import read_connection, sql_constant
from server.adapters.db.schema import agents, attempts, batches, contacts, organizations, phone_numbers
from server.domain import batch_rules as rules
from server.domain.auth import Principal
from server.domain.batch_readiness import agent_blocker, number_blocker
from server.domain.batch_rules import BatchStatus
from server.domain.contact_rules import ContactStatus, counter_column
from server.domain.cost import estimate_cost_micros
from server.domain.errors import FieldViolation, InvalidArgument, NotFound, Violations
from server.domain.ids import new_id
from server.domain.paging import decode_token, encode_token, filter_fingerprint, page_size
from server.service.page_keys import page_key
from server.domain.schedule import resolve_schedule
from server.domain.retry import VOICEMAIL_DONE, VOICEMAIL_RETRY_LATER, check_outcome_delays
from server.service import analytics, lifecycle
from server.service.context import ServiceContext
from server.service.organizations import dnc_members

log = logging.getLogger(__name__)
REGION_MAX = 2
CONTACT_PAGE_SIZES = (25, 50, 100)
SEARCH_MAX = 100
STATUS_WORDS = {s.value.replace("_", " "): s.value for s in ContactStatus}


@dataclass(frozen=True)
class WindowInput:
    start: str
    end: str
    weekdays: tuple[int, ...]


@dataclass
class CreateBatchInput:
    request_id: str
    display_name: str
    description: str
    agent_id: str | None  # None: the name was malformed or missing
    from_number_id: str | None
    concurrency_limit: int
    max_attempts: int
    scheduled_start_time: datetime | None
    scheduled_local_time: str
    timezone: str
    csv_content: bytes
    filename: str
    default_region: str
    window_mode: str  # "org" | "none" | "custom"
    window: WindowInput | None
    max_call_seconds: int
    #: Own delays per retryable outcome (word -> seconds); {} = defaults.
    retry_delays: dict[str, list[float]] = field(default_factory=dict)
    voicemail_action: str = "retry_later"  # "retry_later" | "done"


def _check_region(region: str, field: str = "default_region") -> str | None:
    if not region:
        return None
    import phonenumbers

    region = region.upper()
    if len(region) != REGION_MAX or region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidArgument(FieldViolation(field, "an ISO 3166 region code such as US or GB"))
    return region


async def validate_contacts(ctx: ServiceContext, p: Principal, content: bytes, filename: str, region: str) -> tuple[Any, dict[int, str], int]:
    """Returns (report, suppressed row number -> reason, estimated cost micros)."""
    report, suppressed, _ = await _validated(ctx, p, content, filename, region)
    dialable = report.valid_rows - len(suppressed)
    return report, suppressed, estimate_cost_micros(dialable, ctx.prices)


async def _validated(ctx: ServiceContext, p: Principal, content: bytes, filename: str, region: str) -> tuple[Any, dict[int, str], dict[int, Any]]:
    """(report, suppressed row -> reason, row -> consent). Suppressed: on the
    do-not-call list, or (``require_consent``, issue 16) without valid consent."""
    from server.domain.csv_ingest.consent import consent_of_rows

    report = await ctx.validator.validate_async(content, filename, _check_region(region), scope=p.org_id)
    async with ctx.engine.connect() as conn:
        on_list = await dnc_members(conn, p.org_id, [c.phone for c in report.contacts])
        required = bool((await conn.execute(
            select(organizations.c.require_consent).where(organizations.c.id == p.org_id)
        )).scalar())
    consent, missing = consent_of_rows(report, ctx.clock.now(), required=required)
    suppressed: dict[int, str] = {}
    for c in report.contacts:
        if c.phone in on_list:
            suppressed[c.row_number] = "on do-not-call list"
        elif c.row_number in missing:
            suppressed[c.row_number] = missing[c.row_number]
    return report, suppressed, consent


def _check_config(inp: CreateBatchInput, v: Violations) -> None:
    name = inp.display_name.strip()
    if not name:
        v.add("display_name", "required: a descriptive batch name")
    elif len(name) > rules.NAME_MAX:
        v.add("display_name", f"at most {rules.NAME_MAX} characters")
    if len(inp.description) > rules.DESCRIPTION_MAX:
        v.add("description", f"at most {rules.DESCRIPTION_MAX} characters")
    if len(inp.request_id) > rules.REQUEST_ID_MAX:
        v.add("request_id", f"at most {rules.REQUEST_ID_MAX} characters")
    if inp.agent_id is None:
        v.add("agent", "required: agents/<id> of a voice agent")
    if inp.from_number_id is None:
        v.add("from_phone_number", "required: phoneNumbers/<id> of a registered number")
    if not rules.CONCURRENCY_MIN <= inp.concurrency_limit <= rules.CONCURRENCY_MAX:
        v.add("concurrency_limit", f"must be between {rules.CONCURRENCY_MIN} and {rules.CONCURRENCY_MAX}")
    if not rules.ATTEMPTS_MIN <= inp.max_attempts <= rules.ATTEMPTS_MAX:
        v.add("max_attempts", f"must be between {rules.ATTEMPTS_MIN} and {rules.ATTEMPTS_MAX}")
    if not rules.MAX_CALL_SECONDS_MIN <= inp.max_call_seconds <= rules.MAX_CALL_SECONDS_MAX:
        v.add(
            "max_call_duration_seconds",
            f"must be between {rules.MAX_CALL_SECONDS_MIN} and {rules.MAX_CALL_SECONDS_MAX}",
        )
    for outcome, problem in check_outcome_delays(inp.retry_delays):
        v.add(f"retry_policy.outcome_retries[{outcome}]", problem)
    if inp.voicemail_action not in (VOICEMAIL_RETRY_LATER, VOICEMAIL_DONE):
        v.add("voicemail_action", "RETRY_LATER or DONE")


async def _check_references(conn: Any, p: Principal, inp: CreateBatchInput, v: Violations) -> None:
    if inp.agent_id:
        agent = (
            await conn.execute(select(agents).where(agents.c.id == inp.agent_id, agents.c.org_id == p.org_id))
        ).first()
        if agent is None:
            v.add("agent", f"agents/{inp.agent_id} not found in your organization")
        elif (blocker := agent_blocker(agent.active, agent.architecture)) is not None:
            v.add("agent", blocker.message)
    if inp.from_number_id:
        number = (
            await conn.execute(
                select(phone_numbers).where(
                    phone_numbers.c.id == inp.from_number_id,
                    phone_numbers.c.org_id == p.org_id,
                    phone_numbers.c.deleted_at.is_(None),
                )
            )
        ).first()
        if number is None:
            v.add("from_phone_number", f"phoneNumbers/{inp.from_number_id} is not registered in your organization")
        elif (blocker := number_blocker(True, number.trunk_kind is not None)) is not None:
            v.add("from_phone_number", blocker.message)


def _window_columns(inp: CreateBatchInput, v: Violations) -> dict[str, Any]:
    if inp.window_mode != "custom":
        if inp.window is not None and inp.window_mode == "none":
            v.add("calling_window", "set calling_window_mode to CALLING_WINDOW_MODE_CUSTOM to use it")
        return {"window_mode": inp.window_mode}
    if inp.window is None:
        v.add("calling_window", "required when calling_window_mode is CUSTOM")
        return {}
    from server.domain.calling_window import CallingWindow

    try:
        w = CallingWindow.parse(inp.window.start, inp.window.end, inp.window.weekdays)
    except ValueError as exc:
        v.add("calling_window", str(exc))
        return {}
    return {
        "window_mode": "custom",
        "window_start": w.start_text,
        "window_end": w.end_text,
        "window_weekdays": sorted(w.weekdays),
    }


async def _existing_by_request(ctx: ServiceContext, org_id: str, request_id: str) -> str | None:
    if not request_id:
        return None
    async with ctx.engine.connect() as conn:
        return (
            await conn.execute(
                select(batches.c.id).where(batches.c.org_id == org_id, batches.c.request_id == request_id)
            )
        ).scalar()


async def create_batch(ctx: ServiceContext, p: Principal, inp: CreateBatchInput) -> tuple[str, Any, set[int], int]:
    """Returns (batch id, report, suppressed row numbers, estimated cost).
    Idempotent on request_id."""
    p.require_write()
    now = ctx.clock.now()
    v = Violations()
    _check_config(inp, v)
    window_cols = _window_columns(inp, v)
    try:
        scheduled_at, tz = resolve_schedule(inp.scheduled_start_time, inp.scheduled_local_time, inp.timezone, now)
    except InvalidArgument as exc:
        v.items.extend(exc.violations)
        scheduled_at, tz = None, inp.timezone or "UTC"
    region = None
    try:
        region = _check_region(inp.default_region)
    except InvalidArgument as exc:
        v.items.extend(exc.violations)
    async with ctx.engine.connect() as conn:
        await _check_references(conn, p, inp, v)
    v.raise_if_any()

    existing = await _existing_by_request(ctx, p.org_id, inp.request_id)
    report, suppressed, consent = await _validated(ctx, p, inp.csv_content, inp.filename, region or "")
    estimate = estimate_cost_micros(report.valid_rows - len(suppressed), ctx.prices)
    if existing:
        return existing, report, suppressed, estimate

    batch_id = new_id("batch")
    dialable = report.valid_rows - len(suppressed)
    status = BatchStatus.SCHEDULED.value if scheduled_at else BatchStatus.PENDING.value
    # A batch that may start now gets its ready queue filled while Postgres
    # copies the contacts (see _QueueFill); a scheduled one has none until
    # the scheduler starts it (docs/design.md §5, invariant 7).
    fill = _QueueFill(ctx, p.org_id, batch_id, now) if (
        status == BatchStatus.PENDING.value and ctx.redis_state.can_fill_ahead) else None
    try:
        return await _create(ctx, p, inp, batch_id, status, now, scheduled_at, tz, region, window_cols,
                             report, suppressed, consent, estimate, dialable, fill)
    finally:
        if fill is not None:
            await fill.discard_unless_started()


async def _create(ctx: ServiceContext, p: Principal, inp: CreateBatchInput, batch_id: str, status: str,
                  now: datetime, scheduled_at: datetime | None, tz: str, region: str | None,
                  window_cols: dict[str, Any], report: Any, suppressed: dict[int, str], consent: dict[int, Any],
                  estimate: int, dialable: int, fill: _QueueFill | None) -> tuple[str, Any, set[int], int]:
    try:
        async with ctx.engine.begin() as conn:
            await conn.execute(
                insert(batches).values(
                    id=batch_id,
                    org_id=p.org_id,
                    request_id=inp.request_id or None,
                    display_name=inp.display_name.strip(),
                    description=inp.description,
                    status=status,
                    agent_id=inp.agent_id,
                    from_number_id=inp.from_number_id,
                    concurrency_limit=inp.concurrency_limit,
                    max_attempts=inp.max_attempts,
                    max_call_seconds=inp.max_call_seconds,
                    retry_delays={k: [float(d) for d in v] for k, v in inp.retry_delays.items()},
                    voicemail_action=inp.voicemail_action,
                    scheduled_at=scheduled_at,
                    timezone=tz,
                    default_region=region or "",
                    custom_columns=list(report.custom_columns),
                    estimated_cost_micros=estimate,
                    total_contacts=report.valid_rows,
                    created_at=now,
                    updated_at=now,
                    **window_cols,
                )
            )
            await counters.init_shards(conn, batch_id, pending=dialable, suppressed=len(suppressed))
            queued = await _copy_contacts(conn, batch_id, p.org_id, inp.max_attempts, report.contacts, suppressed,
                                          consent, on_queued=fill.start if fill is not None else None)
            # Before the commit: once the batch is visible, the scheduler may
            # activate it, and nothing may be added to its queue after that.
            filled = fill is not None and await fill.wait()
    except IntegrityError:
        # Same request_id raced with another replica: that one won.
        existing = await _existing_by_request(ctx, p.org_id, inp.request_id)
        if existing:
            return existing, report, suppressed, estimate
        raise
    if status == BatchStatus.PENDING.value:
        # The new batch's waiting contacts are exactly the PENDING ones just
        # copied: try_start need not read them back.
        started = await lifecycle.try_start(ctx, p.org_id, batch_id, from_statuses=(BatchStatus.PENDING.value,),
                                            waiting_ids=queued, queue_filled=filled)
        if fill is not None:
            fill.status = started
    return batch_id, report, suppressed, estimate


class _QueueFill:
    """CreateBatch's ready queue, filled in Redis while Postgres copies the
    contacts (the COPY is Postgres-bound; the ZADDs are work of this
    process and of Redis, so they overlap instead of following the commit).

    Safe before the batch exists or runs: nothing claims from a queue whose
    batch has no meta in Redis and is not in its organization's ring, and
    only the activation writes those (claim.lua answers "inactive"). The
    fill is complete before the transaction commits, so no activation (this
    CreateBatch's try_start or the scheduler's) can precede a ZADD of it.
    When the batch does not end up RUNNING (a blocker holds or fails it, it
    was cancelled first, the transaction failed) the queue is deleted unless
    an activation has begun meanwhile (``discard_ready_if_inactive``). After
    a crash between the fill and that point, the queue of a batch that never
    runs stays behind: harmless (never claimed; an activation writes the
    whole queue again), only memory."""

    def __init__(self, ctx: ServiceContext, org_id: str, batch_id: str, now: datetime) -> None:
        self.ctx, self.org_id, self.batch_id, self.due = ctx, org_id, batch_id, now.timestamp()
        self.task: asyncio.Task[None] | None = None
        self.status: str | None = None  # what try_start answered

    def start(self, contact_ids: list[int]) -> None:
        if contact_ids:
            self.task = asyncio.ensure_future(
                self.ctx.redis_state.fill_ready(self.org_id, self.batch_id, contact_ids, self.due))

    async def wait(self) -> bool:
        """Whether the whole queue was written."""
        if self.task is None:
            return False
        try:
            await asyncio.shield(self.task)
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # activation writes the queue instead
            log.warning("ready queue of %s not filled ahead (%s); activation writes it", self.batch_id, exc)
            return False

    async def discard_unless_started(self) -> None:
        if self.task is None or self.status == BatchStatus.RUNNING.value:
            return
        try:
            if not self.task.done():
                await asyncio.wait([self.task])  # never delete before the last ZADD
            if not self.task.cancelled():
                self.task.exception()  # retrieved: logged by wait() if it failed
            await self.ctx.redis_state.discard_ready_if_inactive(self.org_id, self.batch_id)
        except Exception as exc:  # harmless leftover: never claimed, rewritten on activation
            log.warning("ready queue of %s not discarded (%s)", self.batch_id, exc)


async def _copy_contacts(conn: Any, batch_id: str, org_id: str, max_attempts: int, parsed: list[Any],
                         suppressed: dict[int, str], consent: dict[int, Any] | None = None,
                         on_queued: Any = None) -> list[int]:
    """One COPY (server/adapters/db/contacts_copy.py); returns the ids of the
    PENDING contacts, which the ready queue is filled from (``on_queued``
    gets them before the COPY starts)."""
    return await copy_contacts(conn, batch_id, org_id, max_attempts, parsed, suppressed, consent,
                               on_queued=on_queued)


TOTALS = counters.totals_lateral()
BATCH_VIEW = (
    select(
        batches,
        TOTALS,
        agents.c.display_name.label("agent_display_name"),
        phone_numbers.c.e164.label("from_e164"),
        (organizations.c.concurrency_limit - organizations.c.reserved_concurrency).label("org_limit"),
        organizations.c.window_start.label("org_window_start"),
        organizations.c.window_end.label("org_window_end"),
        organizations.c.window_weekdays.label("org_window_weekdays"),
        organizations.c.calling_any_time.label("org_calling_any_time"),
    )
    .join(agents, agents.c.id == batches.c.agent_id)
    .join(phone_numbers, phone_numbers.c.id == batches.c.from_number_id)
    .join(organizations, organizations.c.id == batches.c.org_id)
    .join(TOTALS, true())
)


#: Statements of the hot reads built once, values bound per call: SQLAlchemy
#: keeps a built statement's cache key, where a fresh ``.where()`` is
#: traversed again on every call (0.1 ms for BATCH_VIEW).
_BATCH_BY_ID = BATCH_VIEW.where(batches.c.id == bindparam("p_batch_id"), batches.c.org_id == bindparam("p_org_id"))
#: GetBatch: the batch view and the summary of its queued contacts (the live
#: figures' only query, server/service/analytics.py) in one statement.
_QUEUED = analytics.queued_lateral(batches.c.id, batches)
_BATCH_WITH_QUEUED_BY_ID = _BATCH_BY_ID.join(_QUEUED, true()).add_columns(*_QUEUED.c)


async def get_batch(ctx: ServiceContext, p: Principal, batch_id: str) -> Any:
    async with read_connection(ctx.engine) as conn:
        return await _batch_row(conn, p, batch_id)


async def _batch_row(conn: Any, p: Principal, batch_id: str) -> Any:
    row = (await conn.execute(_BATCH_BY_ID, {"p_batch_id": batch_id, "p_org_id": p.org_id})).first()
    if row is None:
        raise NotFound(f"batches/{batch_id} not found")
    return row


async def get_batch_with_figures(ctx: ServiceContext, p: Principal, batch_id: str) -> tuple[Any, dict[str, Any]]:
    """GetBatch: the batch row and its live figures (server/service/analytics.py):
    one statement on an autocommit connection."""
    async with read_connection(ctx.engine) as conn:
        row = (await conn.execute(_BATCH_WITH_QUEUED_BY_ID, {"p_batch_id": batch_id, "p_org_id": p.org_id})).first()
    if row is None:
        raise NotFound(f"batches/{batch_id} not found")
    return row, await analytics.live_figures(ctx, row)


async def list_batches(ctx: ServiceContext, p: Principal, size: int, token: str, statuses: list[str], search: str) -> tuple[list[Any], str, int]:
    size = page_size(size)
    if len(search) > SEARCH_MAX:
        raise InvalidArgument(FieldViolation("search", f"at most {SEARCH_MAX} characters"))
    fp = filter_fingerprint(kind="batches", statuses=sorted(statuses), search=search)
    pos = decode_token(token, fp, page_key(ctx))
    cond = [batches.c.org_id == p.org_id]
    if statuses:
        cond.append(batches.c.status.in_(statuses))
    if search:
        cond.append(batches.c.display_name.ilike(f"%{_escape_like(search)}%", escape="\\"))
    q = BATCH_VIEW.where(*cond)
    if pos:
        created = datetime.fromisoformat(pos["c"])
        q = q.where(
            or_(batches.c.created_at < created, and_(batches.c.created_at == created, batches.c.id < pos["i"]))
        )
    async with read_connection(ctx.engine) as conn:
        rows = (
            await conn.execute(q.order_by(batches.c.created_at.desc(), batches.c.id.desc()).limit(size + 1))
        ).all()
        total = (await conn.execute(select(func.count()).select_from(batches).where(*cond))).scalar_one()
    nxt = ""
    if len(rows) > size:
        last = rows[size - 1]
        nxt = encode_token({"c": last.created_at.isoformat(), "i": last.id}, fp, page_key(ctx))
    return rows[:size], nxt, total


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass
class ContactFilter:
    statuses: list[str]
    min_attempts: int | None
    max_attempts: int | None
    last_attempt_from: datetime | None
    last_attempt_to: datetime | None
    search: str


def _contact_conditions(batch_id: str, f: ContactFilter) -> list[Any]:
    return [contacts.c.batch_id == batch_id, *_filter_conditions(f)]


def _filter_conditions(f: ContactFilter) -> list[Any]:
    cond: list[Any] = []
    if f.statuses:
        cond.append(contacts.c.status.in_(f.statuses))
    if f.min_attempts is not None:
        cond.append(contacts.c.attempts >= f.min_attempts)
    if f.max_attempts is not None:
        cond.append(contacts.c.attempts <= f.max_attempts)
    if f.last_attempt_from is not None:
        cond.append(contacts.c.last_attempt_at >= f.last_attempt_from)
    if f.last_attempt_to is not None:
        cond.append(contacts.c.last_attempt_at < f.last_attempt_to)
    if f.search:
        term = f.search.strip()
        word = STATUS_WORDS.get(term.lower().replace("_", " "))
        pattern = f"%{_escape_like(term)}%"
        options = [
            contacts.c.phone.like(f"%{_escape_like(term.replace(' ', '').replace('-', ''))}%", escape="\\"),
            contacts.c.name.ilike(pattern, escape="\\"),
        ]
        if word:
            options.append(contacts.c.status == word)
        cond.append(or_(*options))
    return cond


#: A contacts page is one statement: the batch, when the caller's
#: organization owns it (no row: not found), with what its total_size comes
#: from, LEFT JOINed to the page (one row of NULL contact columns when the
#: page is empty). It was two (the batch with every status counter, then the
#: page): a round trip and an execute more per page.
#:
#: The page is the batch's contacts after the last id seen, in (batch_id, id)
#: order, the batch written ``batch_id = ANY(ARRAY[:id])``. With a plain
#: ``batch_id = :id`` the planner may instead walk the primary key in id
#: order and filter on batch_id (it assumes a batch's rows are spread evenly
#: over the ids): 14 ms for the first page of a middle batch of 100,000
#: contacts, and the generic plan of a prepared statement (psycopg prepares
#: one run 5 times) did it for status pages too. The array comparison is no
#: equality the planner can drop from the ordering, so only the (batch_id, id)
#: and (batch_id, status, id) indexes deliver the order, starting at the
#: position (an index condition) and stopping after size + 1 rows.
_IN_BATCH = contacts.c.batch_id == any_(bindparam("p_batch_ids", type_=ARRAY(String)))
_PAGE_ORDER = (contacts.c.batch_id, contacts.c.id)
#: What convert.contact_msg reads of a contact without its attempts, no
#: more (not org_id, current_attempt_id, updated_at, result_attempt_id).
#: ``variables`` is NULL when empty, as most are: psycopg then parses no
#: JSON ('{}' cost 1.6 us a row, a third of the page's decoding), and an
#: empty object and NULL both leave the message's map empty. ``timezones``
#: as psycopg reads it (a list), without SQLAlchemy's per-item ARRAY pass.
_PAGE_COLUMNS = tuple(
    func.nullif(c, literal_column("'{}'::jsonb"), type_=JSONB).label(c.name) if c.name == "variables"
    else type_coerce(c, NullType).label(c.name) if c.name == "timezones"
    else c
    for c in contacts.c
    if c.name not in ("org_id", "current_attempt_id", "updated_at", "result_attempt_id")
)


def _page_query(size: int, conditions: tuple[Any, ...], total: Any, totals: Any = None) -> Any:
    """The statement of a page of ``size`` (see _IN_BATCH): the batch's
    ``total`` (labelled page_total, an expression of batches and ``totals``,
    the summed counters LATERAL, when given) and the page's rows."""
    page = (
        select(*_PAGE_COLUMNS)
        .where(_IN_BATCH, contacts.c.id > bindparam("p_after", type_=BigInteger), *conditions)
        .order_by(*_PAGE_ORDER)
        .limit(sql_constant(size + 1))
        .subquery("page")
    )
    q = select(total.label("page_total"), *page.c).select_from(batches)
    if totals is not None:
        q = q.join(totals, true())
    return (
        q.outerjoin(page, true())
        .where(batches.c.id == bindparam("p_batch_id"), batches.c.org_id == bindparam("p_org_id"))
        .order_by(page.c.id)  # one batch: the page's (batch_id, id) order
    )


_STATUS_VALUES = frozenset(s.value for s in ContactStatus)


@functools.lru_cache(maxsize=512)
def _page_of_statuses(size: int, statuses: tuple[str, ...]) -> Any:
    """The page of no filter (``statuses`` empty) or of a status filter, the
    common ones: built once per size and set of statuses (SQLAlchemy keeps
    its compiled form), the total taken from the counters (reads never count
    rows when the counters know the answer). Other filters build theirs per
    call."""
    if not statuses:
        return _page_query(size, (), batches.c.total_contacts)
    counted = tuple(counter_column(s) for s in statuses if s in _STATUS_VALUES)
    totals = counters.totals_lateral(counted) if counted else None
    total = sum((totals.c[c] for c in counted[1:]), totals.c[counted[0]]) if counted else sql_constant(0)
    return _page_query(size, (contacts.c.status.in_([sql_constant(s) for s in statuses]),), total, totals)


def _only_statuses(f: ContactFilter) -> bool:
    return (not f.search and f.min_attempts is None and f.max_attempts is None
            and f.last_attempt_from is None and f.last_attempt_to is None)


async def list_contacts(ctx: ServiceContext, p: Principal, batch_id: str, size: int, token: str, f: ContactFilter) -> tuple[list[Any], str, int]:
    """The page's rows (the columns of _PAGE_COLUMNS, and page_total), the
    next page's token ("" after the last) and total_size."""
    size = page_size(size, allowed=CONTACT_PAGE_SIZES)
    v = Violations()
    if len(f.search) > SEARCH_MAX:
        v.add("search", f"at most {SEARCH_MAX} characters")
    for name, value in (("min_attempts", f.min_attempts), ("max_attempts", f.max_attempts)):
        if value is not None and not 0 <= value <= rules.ATTEMPTS_MAX:
            v.add(name, f"must be between 0 and {rules.ATTEMPTS_MAX}")
    if f.min_attempts is not None and f.max_attempts is not None and f.min_attempts > f.max_attempts:
        v.add("min_attempts", "must not exceed max_attempts")
    if f.last_attempt_from and f.last_attempt_to and f.last_attempt_from >= f.last_attempt_to:
        v.add("last_attempt_from", "must be before last_attempt_to")
    v.raise_if_any()
    fp = filter_fingerprint(kind="contacts", batch=batch_id, f=f.__dict__)
    pos = decode_token(token, fp, page_key(ctx))
    if _only_statuses(f):
        stmt = _page_of_statuses(size, tuple(sorted(set(f.statuses))))
    else:
        stmt = _page_query(size, tuple(_filter_conditions(f)), null())
    # Keyset (see _IN_BATCH): the position is the last id seen, never an OFFSET.
    params = {"p_batch_id": batch_id, "p_org_id": p.org_id, "p_batch_ids": [batch_id],
              "p_after": int(pos["a"]) if pos else 0}
    # One autocommit connection (server/adapters/db/reads.py): the batch
    # with its page, and only when nothing else knows it the count.
    async with read_connection(ctx.engine) as conn:
        rows = (await conn.execute(stmt, params)).all()
        if not rows:
            raise NotFound(f"batches/{batch_id} not found")
        total = rows[0].page_total
        if rows[0].id is None:
            rows = []  # the batch, no contact of the page
        if total is None and not pos and len(rows) <= size:
            total = len(rows)  # the first page is the whole result: nothing left to count
        if total is None:
            cond = _contact_conditions(batch_id, f)
            total = (await conn.execute(select(func.count()).select_from(contacts).where(*cond))).scalar_one()
    nxt = encode_token({"a": rows[size - 1].id}, fp, page_key(ctx)) if len(rows) > size else ""
    return rows[:size], nxt, total


def contacts_token_after(ctx: ServiceContext, batch_id: str, f: ContactFilter, contact_id: int) -> str:
    """The next_page_token of a ListContacts page that ends at ``contact_id``
    (the servicer ends a page early when its messages near the size limit)."""
    fp = filter_fingerprint(kind="contacts", batch=batch_id, f=f.__dict__)
    return encode_token({"a": contact_id}, fp, page_key(ctx))


async def get_contact(ctx: ServiceContext, p: Principal, batch_id: str, contact_id: int) -> tuple[Any, list[Any]]:
    async with ctx.engine.connect() as conn:
        row = (
            await conn.execute(
                select(contacts).where(
                    contacts.c.id == contact_id, contacts.c.batch_id == batch_id, contacts.c.org_id == p.org_id
                )
            )
        ).first()
        if row is None:
            raise NotFound(f"batches/{batch_id}/contacts/{contact_id} not found")
        tries = (
            await conn.execute(
                select(attempts).where(attempts.c.contact_id == contact_id).order_by(attempts.c.attempt_number)
            )
        ).all()
    return row, tries
