"""The dialer's client of the server's internal DialerService (gRPC), and the
conversions between provider types and protobuf.

Every call carries ``authorization: Bearer <service token>``. FinishAttempt
is retried with backoff until the server answers, so an outcome is never
lost while the dialer lives; a rejection (stale fencing token, attempt
already closed) ends the retries: Postgres has decided.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import grpc
from batchcalls.v1 import dialer_service_pb2, dialer_service_pb2_grpc, resources_pb2, results_service_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from contract.trunk import DEFAULT_TRUNK_CPS
from dialer.logging import log_event
from dialer.providers.base import CallResult, Outcome, TrunkSettings

log = logging.getLogger("dialer.server_client")

#: gRPC codes meaning "the server has decided against this request": retrying
#: the same request cannot succeed (stale token, attempt closed, unknown id).
REJECTED_CODES = frozenset(
    {
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.INVALID_ARGUMENT,
    }
)



class FinishAnswer(enum.StrEnum):
    """What became of a FinishAttempt."""

    #: Recorded; the response says whether the contact waits for another attempt.
    OK = "ok"
    #: Refused for good (stale fencing token, attempt already closed):
    #: Postgres has decided, the lease can go.
    REJECTED = "rejected"
    #: Not answered (server unavailable, timeout): try again.
    RETRY = "retry"
    #: Not answered, and the caller stopped trying (a dialer shutting down
    #: past its budget): the lease is left for a reaper.
    GAVE_UP = "gave_up"


_OUTCOME_TO_PROTO = {
    Outcome.COMPLETED: resources_pb2.CALL_OUTCOME_COMPLETED,
    Outcome.NO_ANSWER: resources_pb2.CALL_OUTCOME_NO_ANSWER,
    Outcome.BUSY: resources_pb2.CALL_OUTCOME_BUSY,
    Outcome.TIMEOUT: resources_pb2.CALL_OUTCOME_TIMEOUT,
    Outcome.INVALID_NUMBER: resources_pb2.CALL_OUTCOME_INVALID_NUMBER,
    Outcome.BLOCKED: resources_pb2.CALL_OUTCOME_BLOCKED,
    Outcome.CARRIER_ERROR: resources_pb2.CALL_OUTCOME_CARRIER_ERROR,
    Outcome.AGENT_ERROR: resources_pb2.CALL_OUTCOME_AGENT_ERROR,
    Outcome.VOICEMAIL: resources_pb2.CALL_OUTCOME_VOICEMAIL,
}

_KIND = {resources_pb2.TRUNK_KIND_SIMULATED: "simulated", resources_pb2.TRUNK_KIND_SIP: "sip"}
_TRANSPORT = {resources_pb2.SIP_TRANSPORT_UDP: "udp", resources_pb2.SIP_TRANSPORT_TCP: "tcp"}
_CALLER_ID = {
    resources_pb2.CALLER_ID_FORMAT_E164: "e164",
    resources_pb2.CALLER_ID_FORMAT_E164_NO_PLUS: "e164_no_plus",
    resources_pb2.CALLER_ID_FORMAT_NATIONAL: "national",
}
_SIM_WEIGHTS = {
    "completed": "weight_completed",
    "no_answer": "weight_no_answer",
    "busy": "weight_busy",
    "timeout": "weight_timeout",
    "invalid_number": "weight_invalid_number",
    "blocked": "weight_blocked",
    "carrier_error": "weight_carrier_error",
    "agent_error": "weight_agent_error",
    "voicemail": "weight_voicemail",
}


def outcome_to_proto(outcome: Outcome | str) -> int:
    return _OUTCOME_TO_PROTO[Outcome(outcome)]


def requeue_due_ms(resp: Any, now_ms: int) -> int | None:
    """When a FinishAttemptResponse leaves the contact waiting (PENDING /
    QUEUED), the due time (ms) to put it back in the ready queue with ZADD NX
    (the server enqueues it too; NX keeps its score); else None."""
    if resp is None or resp.contact_status not in (resources_pb2.CONTACT_STATUS_PENDING,
                                                   resources_pb2.CONTACT_STATUS_QUEUED):
        return None
    if resp.HasField("next_attempt_time"):
        return resp.next_attempt_time.ToMilliseconds()
    return now_ms


def outcome_name(value: int) -> str:
    return resources_pb2.CallOutcome.Name(value).removeprefix("CALL_OUTCOME_").lower()


def trunk_from_proto(trunk: resources_pb2.OutboundTrunk) -> TrunkSettings:
    """OutboundTrunk -> TrunkSettings. Simulation values that are 0 mean "the
    default" in the API and are left out."""
    sim: dict[str, float] = {}
    if trunk.HasField("simulation"):
        p = trunk.simulation
        for word, attr in _SIM_WEIGHTS.items():
            value = getattr(p, attr)
            if value > 0:
                sim[word] = float(value)
        if p.mean_call_seconds > 0:
            sim["mean_call_seconds"] = float(p.mean_call_seconds)
        if p.ring_seconds > 0:
            sim["ring_seconds"] = float(p.ring_seconds)
    return TrunkSettings(
        kind=_KIND.get(trunk.kind, "unspecified"),
        host=trunk.host,
        port=int(trunk.port),
        transport=_TRANSPORT.get(trunk.transport, "udp"),
        username=trunk.username,
        password=trunk.password,
        caller_id_format=_CALLER_ID.get(trunk.caller_id_format, "e164"),
        simulation=sim,
        calls_per_second=float(trunk.calls_per_second) if trunk.calls_per_second > 0 else DEFAULT_TRUNK_CPS,
    )


def trunk_to_json(trunk: TrunkSettings) -> str:
    return json.dumps(dataclasses.asdict(trunk), separators=(",", ":"), sort_keys=True)


def trunk_from_json(text: str) -> TrunkSettings:
    data: dict[str, Any] = json.loads(text) if text else {}
    fields = {f.name for f in dataclasses.fields(TrunkSettings)}
    data = {k: v for k, v in data.items() if k in fields}
    data.setdefault("kind", "simulated")
    return TrunkSettings(**data)


def _ts(dt: datetime | float | None) -> Timestamp | None:
    if dt is None:
        return None
    ts = Timestamp()
    if isinstance(dt, (int, float)):
        ts.FromNanoseconds(int(dt * 1e9))
    else:
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        ts.FromDatetime(dt.astimezone(UTC))
    return ts


def finish_request(
    *,
    attempt_id: str,
    fencing_token: int,
    outcome: int,
    closed_by: str,
    end_time: datetime | float,
    result: CallResult | None = None,
    detail: str = "",
) -> dialer_service_pb2.FinishAttemptRequest:
    """A FinishAttemptRequest; ``result`` (when the provider gave one)
    supplies answer/end time, duration, SIP code, recording and transcript."""
    req = dialer_service_pb2.FinishAttemptRequest(
        attempt_id=attempt_id,
        fencing_token=int(fencing_token),
        outcome=outcome,
        closed_by=closed_by,
        detail=(detail or (result.detail if result else ""))[:1000],
    )
    if result is not None:
        if result.answer_time is not None:
            req.answer_time.CopyFrom(_ts(result.answer_time))
        req.end_time.CopyFrom(_ts(result.end_time))
        req.duration_seconds = float(result.duration_seconds)
        req.sip_code = int(result.sip_code)
        req.recording_uri = result.recording_uri
        req.transcript = result.transcript
        if result.agent_answer_delay_seconds is not None:
            # At least 1: 0 on the wire means "no agent leg".
            req.agent_answer_delay_ms = max(1, round(result.agent_answer_delay_seconds * 1000))
        req.agent_sip_code = int(result.agent_sip_code)
    else:
        req.end_time.CopyFrom(_ts(end_time))
    return req


class ItemRejected(Exception):
    """One item of a batch call refused by the server (quacks like the
    AioRpcError a single call would have raised: ``code()``, ``details()``)."""

    def __init__(self, error: dialer_service_pb2.ItemError) -> None:
        super().__init__(error.message)
        self._code = _CODES.get(error.code, grpc.StatusCode.UNKNOWN)
        self.reason = error.reason
        self._details = error.message

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


_CODES = {c.value[0]: c for c in grpc.StatusCode}

#: Errors of a whole batch call after which each item is sent on its own:
#: an older server (UNIMPLEMENTED), or one item the server chokes on, which
#: must not hold back the others.
_ONE_BY_ONE_CODES = frozenset({grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})


#: How long past its own deadline a call may stay unanswered before the
#: client gives up on it (``ServerClient._bounded``).
CALL_WATCHDOG_MARGIN_SECONDS = 1.0


#: How long a request of each group commit waits for company (``Coalescer``).
#: The group's latency is the linger plus one round trip; under load the
#: server's cost is per transaction, so larger groups are most of the CPU a
#: call costs the server and Postgres (bench/dispatch.py: 1.8 -> 0.7 ms per
#: call for the server with these lingers). Outcomes of a watched batch skip
#: the linger (``urgent``); answers already wait ``answer_linger_seconds``.
#: Grants ahead are asked for ``GrantAhead.lead_seconds`` before their slot
#: frees, a lead that grows with the grant's latency, linger included.
AHEAD_LINGER_SECONDS = 0.05
ANSWERS_LINGER_SECONDS = 0.1
FINISHES_LINGER_SECONDS = 0.1


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Done callback of an abandoned call: its outcome is nobody's now."""
    if not task.cancelled():
        task.exception()


class Coalescer:
    """Group commit for one kind of request.

    ``submit`` sends at once while fewer than ``max_in_flight`` calls are in
    flight; otherwise the request waits and leaves with every other request
    that arrived meanwhile, in the next call. Idle, a request costs one round
    trip of its own; under load, one round trip and one server transaction
    serve many requests, which is what lets one server keep up with hundreds
    of calls per second. ``send`` takes the requests and returns one result
    per request, an exception instance for an item that failed alone; if it
    raises, every request of that call gets the exception.
    """

    def __init__(
        self,
        send: Callable[[list[Any]], Awaitable[list[Any]]],
        *,
        max_items: int = 200,
        max_in_flight: int = 2,
        linger_seconds: float = 0.0,
    ) -> None:
        self._send = send
        self.max_items = max_items
        self.max_in_flight = max_in_flight
        #: A request that finds nothing pending waits this long for company
        #: before it is sent (requests that waited for a call in flight go at
        #: once when it returns): fewer, larger calls where latency matters
        #: little.
        self.linger_seconds = linger_seconds
        self._timer: asyncio.TimerHandle | None = None
        self._pending: list[tuple[Any, asyncio.Future]] = []
        #: loop time the first of the pending requests arrived
        self._oldest = 0.0
        #: an urgent request is pending: the linger is off for its group
        self._urgent = False
        self._in_flight = 0
        self._tasks: set[asyncio.Task] = set()

    async def submit(self, request: Any, *, urgent: bool = False) -> Any:
        """``urgent``: skip the linger (this request, and whatever waits
        with it, goes as soon as a call may be in flight)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._pending:
            self._oldest = loop.time()
        self._pending.append((request, future))
        if urgent:
            self._urgent = True
        self._pump()
        return await future

    def _linger_over(self) -> None:
        self._timer = None
        self._pump()

    def _pump(self) -> None:
        if self._pending and not self._urgent and self.linger_seconds > 0 and len(self._pending) < self.max_items:
            # The linger holds for every group, also one that gathered
            # while a call was in flight: otherwise, under load, groups
            # shrink to what arrives during one round trip.
            due = self._oldest + self.linger_seconds
            if asyncio.get_running_loop().time() < due:
                if self._timer is None:
                    self._timer = asyncio.get_running_loop().call_at(due, self._linger_over)
                return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending and self._in_flight < self.max_in_flight:
            group, self._pending = self._pending[: self.max_items], self._pending[self.max_items :]
            self._urgent = self._urgent and bool(self._pending)
            group = [(r, f) for r, f in group if not f.done()]  # callers that gave up
            if not group:
                continue
            self._in_flight += 1
            task = asyncio.create_task(self._flush(group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self, group: list[tuple[Any, asyncio.Future]]) -> None:
        try:
            try:
                results = await self._send([r for r, _ in group])
            except Exception as exc:
                results = [exc] * len(group)
            for (_, future), result in zip(group, results):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        finally:
            self._in_flight -= 1
            self._pump()


class ServerClient:
    """Thin async wrapper over DialerServiceStub with the service token."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        service_token: str,
        *,
        rpc_timeout: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
        batch_max_items: int = 200,
        max_in_flight: int = 2,
        answer_linger_seconds: float = 0.25,
    ) -> None:
        self.stub = dialer_service_pb2_grpc.DialerServiceStub(channel)
        #: ResultsService on the same internal listener, same token: the
        #: simulated agent's reports (dialer.agent_results).
        self.results_stub = results_service_pb2_grpc.ResultsServiceStub(channel)
        self._metadata = (("authorization", f"Bearer {service_token}"),)
        self._timeout = rpc_timeout
        self._monotonic = monotonic
        # StartAttempt waits for a server (wait_for_ready, up to the RPC
        # timeout) instead of failing at once while none is connected: when
        # one answers again (the channel reconnects within ~1 s,
        # contract/channels.py) the waiting grants go out at once.
        send_starts = self._sender(self.stub.StartAttempt, self.stub.BatchStartAttempts,
                                   dialer_service_pb2.BatchStartAttemptsRequest, lambda r: list(r.responses),
                                   wait_for_ready=True)
        send_answers = self._sender(self.stub.MarkAnswered, self.stub.BatchMarkAnswered,
                                    dialer_service_pb2.BatchMarkAnsweredRequest,
                                    lambda r: [ItemRejected(e) if e.code else None for e in r.results])
        send_finishes = self._sender(
            self.stub.FinishAttempt, self.stub.BatchFinishAttempts, dialer_service_pb2.BatchFinishAttemptsRequest,
            lambda r: [x.response if x.WhichOneof("result") == "response" else ItemRejected(x.error) for x in r.results],
        )
        self._starts = Coalescer(send_starts, max_items=batch_max_items, max_in_flight=max_in_flight)
        #: Grants ahead (reservations) are not waited for by any free slot:
        #: one call in flight and a short linger, so they travel in groups.
        self._ahead = Coalescer(send_starts, max_items=batch_max_items, max_in_flight=1,
                                linger_seconds=AHEAD_LINGER_SECONDS)
        # Answers and outcomes are off the critical path (the call's slots
        # are freed when it ends, not when its outcome is recorded): one call
        # in flight at a time, so that under load they travel in large groups
        # and cost the server as few transactions as possible.
        self._answers = Coalescer(send_answers, max_items=batch_max_items, max_in_flight=1,
                                  linger_seconds=ANSWERS_LINGER_SECONDS)
        self._finishes = Coalescer(send_finishes, max_items=batch_max_items, max_in_flight=1,
                                   linger_seconds=FINISHES_LINGER_SECONDS)
        #: An answer report waits this long before it is sent, and is dropped
        #: if the call's outcome (which carries the answer time) goes first:
        #: a call shorter than this costs the server no MarkAnswered at all,
        #: a longer one shows CONNECTED this much later (invisible next to
        #: calls of minutes).
        self.answer_linger_seconds = max(0.0, answer_linger_seconds)
        self._lingering: dict[str, asyncio.Task] = {}

    async def _bounded(self, call: Any) -> Any:
        """Await a unary call, but never past its deadline plus a margin.

        The deadline is grpc's to enforce, and it reports it as a completion
        like any other. In the test suite (one process, several event loops
        using grpc.aio) grpcio 1.76 now and then lost a completion: the call
        never returned, not even at its deadline, and a claim waiting on it
        held its lease for good. Here such a call is cancelled and fails as
        DEADLINE_EXCEEDED, which every caller already treats as "not
        answered, try again" (the server's fencing makes a late grant or
        outcome harmless)."""
        # Not asyncio.wait_for: on its timeout it cancels the call and then
        # waits for the cancellation to complete, which a lost completion
        # never does (CI saw a claim stuck 20 s at this await). The call is
        # cancelled and left behind instead.
        task = asyncio.ensure_future(call)
        try:
            done, _ = await asyncio.wait({task}, timeout=self._timeout + CALL_WATCHDOG_MARGIN_SECONDS)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if done:
            return task.result()
        task.add_done_callback(_retrieve)
        task.cancel()
        if hasattr(call, "cancel"):
            call.cancel()
        raise grpc.aio.AioRpcError(
            grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata(),
            details=f"no answer within {self._timeout + CALL_WATCHDOG_MARGIN_SECONDS:g} s (client watchdog)",
        )

    def _sender(
        self, single: Any, batch: Any, batch_request: Any, unpack: Callable[[Any], list[Any]],
        *, wait_for_ready: bool | None = None,
    ) -> Callable[[list[Any]], Awaitable[list[Any]]]:
        """A Coalescer's ``send``: one request goes as the single RPC, more
        as the batch RPC (``unpack`` turns its reply into one result per
        request, an ``ItemRejected`` for a refused item); on UNIMPLEMENTED
        or INTERNAL from the batch RPC each request goes on its own."""
        ready = {} if wait_for_ready is None else {"wait_for_ready": wait_for_ready}

        async def call(request: Any) -> Any:
            return await self._bounded(single(request, metadata=self._metadata, timeout=self._timeout, **ready))

        async def send(requests: list[Any]) -> list[Any]:
            if len(requests) == 1:
                return [await call(requests[0])]
            try:
                reply = await self._bounded(batch(batch_request(requests=requests), metadata=self._metadata,
                                                  timeout=self._timeout, **ready))
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _ONE_BY_ONE_CODES:
                    raise
                return list(await asyncio.gather(*(call(r) for r in requests), return_exceptions=True))
            return unpack(reply)

        return send

    async def start_attempt(
        self,
        *,
        organization_id: str,
        batch_id: str,
        contact_id: str,
        fencing_token: int,
        lease_id: str,
        dialer_id: str,
        provider_call_id: str,
        ahead: bool = False,
    ) -> dialer_service_pb2.StartAttemptResponse:
        """One try; raises grpc.aio.AioRpcError. Coalesced with the other
        claims of the moment into one BatchStartAttempts; ``ahead`` (a
        reservation, no slot waits for it) in larger, less urgent groups."""
        return await (self._ahead if ahead else self._starts).submit(
            dialer_service_pb2.StartAttemptRequest(
                organization_id=organization_id,
                batch_id=batch_id,
                contact_id=contact_id,
                fencing_token=int(fencing_token),
                lease_id=lease_id,
                dialer_id=dialer_id,
                provider_call_id=provider_call_id,
            )
        )

    async def report_call_result(self, req: Any) -> Any:
        """ResultsService.ReportCallResult, one try (raises AioRpcError)."""
        return await self.results_stub.ReportCallResult(req, metadata=self._metadata, timeout=self._timeout)

    async def mark_answered(self, attempt_id: str, fencing_token: int, answer_time: datetime, *, tries: int = 5) -> bool:
        """Best effort (the outcome, sent later, carries the answer time too).
        With a linger (the default) it returns at once and the report goes
        out in the background, unless ``finish`` for the attempt comes first."""
        req = dialer_service_pb2.MarkAnsweredRequest(attempt_id=attempt_id, fencing_token=int(fencing_token))
        req.answer_time.CopyFrom(_ts(answer_time))
        if self.answer_linger_seconds <= 0:
            return await self._deliver_answer(req, tries)
        task = asyncio.create_task(self._deliver_answer(req, tries, linger=self.answer_linger_seconds))
        self._lingering[attempt_id] = task
        task.add_done_callback(lambda t: self._lingering.pop(attempt_id, None) if self._lingering.get(attempt_id) is t else None)
        return True

    def _drop_answer(self, attempt_id: str) -> None:
        task = self._lingering.pop(attempt_id, None)
        if task is not None and not task.done():
            task.cancel()

    async def _deliver_answer(self, req: Any, tries: int, linger: float = 0.0) -> bool:
        if linger:
            await asyncio.sleep(linger)
        delay = 0.1
        for i in range(tries):
            try:
                await self._answers.submit(req)
                return True
            except (grpc.aio.AioRpcError, ItemRejected) as exc:
                if exc.code() in REJECTED_CODES or i == tries - 1:
                    log_event(log, "mark_answered.failed", logging.WARNING, attempt_id=req.attempt_id,
                              code=exc.code().name, error=exc.details())
                    return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        return False

    async def finish_once(self, req: dialer_service_pb2.FinishAttemptRequest, *,
                          urgent: bool = False) -> tuple[FinishAnswer, Any]:
        """One try: (OK, response) | (REJECTED, error) | (RETRY, error).
        ``urgent``: no linger (a watched batch, ``dialer.watched``)."""
        self._drop_answer(req.attempt_id)
        try:
            return FinishAnswer.OK, await self._finishes.submit(req, urgent=urgent)
        except ItemRejected as exc:
            return FinishAnswer.REJECTED, exc
        except grpc.aio.AioRpcError as exc:
            if exc.code() in REJECTED_CODES:
                return FinishAnswer.REJECTED, exc
            return FinishAnswer.RETRY, exc

    async def finish(
        self,
        req: dialer_service_pb2.FinishAttemptRequest,
        *,
        give_up: Callable[[], bool] = lambda: False,
        max_delay: float = 5.0,
        urgent: bool = False,
    ) -> tuple[FinishAnswer, Any]:
        """Retries until the server answers: (OK, FinishAttemptResponse) |
        (REJECTED, error); (GAVE_UP, None) only once ``give_up()`` says so
        (a dialer shutting down past its budget). ``urgent``: no linger."""
        delay = 0.1
        while True:
            status, detail = await self.finish_once(req, urgent=urgent)
            if status is not FinishAnswer.RETRY:
                if status is FinishAnswer.REJECTED:
                    log_event(log, "finish_attempt.rejected", logging.INFO, attempt_id=req.attempt_id,
                              fencing_token=req.fencing_token, code=detail.code().name, error=detail.details())
                return status, detail
            log_event(log, "finish_attempt.retry", logging.WARNING, attempt_id=req.attempt_id,
                      code=detail.code().name, error=detail.details(), retry_in=delay)
            if give_up():
                return FinishAnswer.GAVE_UP, None
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
            if give_up():
                return FinishAnswer.GAVE_UP, None
