"""The simulated carrier: call state on real timers, behind a tiny HTTP/1.1 JSON API.

Why a process of its own with an HTTP API: real calls outlive the dialer that
placed them, so the carrier must keep ringing, talking and hanging up on its
own timers when a dialer is killed, and must answer a recovering dialer's
"how did call X end?" (docs/design.md §5–6). It is also the ground truth for tests
and benchmarks: it records every call it receives, with wall-clock start,
answer and end, and tracks live calls per organization, batch and number at
the exact instants calls start and end.

HTTP API (JSON bodies, HTTP/1.1 keep-alive)::

    POST   /calls                 place a call -> 202 + call (200 + existing call if the id is known);
                                  ?wait=<real seconds>: answer once the call is past ringing
                                  (or at that timeout), saving the first long-poll
    GET    /calls                 every call received (?batch_id=, ?org_id=, ?contact_id=)
    GET    /calls/{id}            status of one call (404 when unknown)
    GET    /calls/{id}/wait       long-poll: ?after=<state>&timeout=<real seconds>; returns
                                  as soon as the state is past ``after`` (or at the timeout)
    DELETE /calls/{id}            hang up (before answer: no_answer "cancelled by caller";
                                  after answer: completed with the talk so far). On an
                                  unknown id: 404, and a later POST of that id places
                                  nothing (answers an ended no_answer "cancelled before placed")
    GET    /stats                 live and maximum live calls per org, batch and number
    POST   /reset                 end live calls, forget everything, truncate the record file
    GET    /healthz               liveness and the time scale

Times in call JSON are wall-clock epoch seconds (floats); ``duration_seconds``
is in *simulated* seconds of talk (a 3-minute call at time scale 0.001 lasts
180 ms but reports 180 s), because that is what billing and analytics see.

Server written on ``asyncio.start_server`` rather than ``http.server``: the
dialer keeps one long-poll open per live call, hundreds at once, and a thread
per connection would cost far more than a coroutine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from simcarrier.model import CallPlan, SimulationProfile, plan_call

log = logging.getLogger("simcarrier")

STATE_RANK = {"unknown": 0, "ringing": 1, "in_progress": 2, "ended": 3}
MAX_BODY_BYTES = 256 * 1024
MAX_HEADER_BYTES = 64 * 1024
MAX_WAIT_SECONDS = 120.0
DEFAULT_WAIT_SECONDS = 25.0
RECORDING_URI = "https://recordings.sim.batchcalls.invalid/{call_id}.wav"


@dataclass(eq=False)
class Call:
    """One call at the carrier; lives on after the placing dialer dies."""

    call_id: str
    org_id: str
    batch_id: str
    contact_id: str
    agent_id: str
    to: str
    from_: str
    attempt: int
    ring_timeout: float
    max_duration: float
    plan: CallPlan
    start: float  # wall clock
    start_mono: float  # loop clock
    recording: bool = False
    transcript_enabled: bool = False
    variables: dict[str, str] = field(default_factory=dict)
    state: str = "ringing"
    answer: float | None = None
    answer_mono: float | None = None
    end: float | None = None
    outcome: str | None = None
    detail: str = ""
    sip_code: int = 0
    duration_seconds: float = 0.0
    recording_uri: str = ""
    transcript: str = ""
    duplicate_posts: int = 0
    hung_up_by_caller: bool = False
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The ground-truth record (no transcript: it would bloat lists)."""
        return {
            "call_id": self.call_id,
            "org_id": self.org_id,
            "batch_id": self.batch_id,
            "contact_id": self.contact_id,
            "agent_id": self.agent_id,
            "to": self.to,
            "from": self.from_,
            "attempt": self.attempt,
            "start": self.start,
            "answer": self.answer,
            "end": self.end,
            "state": self.state,
            "outcome": self.outcome,
            "detail": self.detail,
            "sip_code": self.sip_code,
            "duration_seconds": self.duration_seconds,
            "behaviour": self.plan.behaviour,
            "hung_up_by_caller": self.hung_up_by_caller,
            "duplicate_posts": self.duplicate_posts,
        }

    def status(self) -> dict[str, Any]:
        """What GET /calls/{id} answers: the record plus recording and transcript."""
        data = self.record()
        data["recording_uri"] = self.recording_uri
        data["transcript"] = self.transcript
        return data

    def notify(self) -> None:
        waiters, self.waiters = self.waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)


def fake_transcript(call: Call) -> str:
    """A short plausible dialogue using the contact's variables when given."""
    v = call.variables
    name = v.get("first_name") or v.get("name") or v.get("customer_name") or "there"
    topic = v.get("topic") or v.get("reason") or v.get("appointment_date") or "your recent request"
    if call.outcome == "agent_error":
        return f"Agent: Hello {name}, this is an automated call about {topic}.\n[agent error: call dropped]"
    return (
        f"Agent: Hi {name}, I'm calling about {topic}. Do you have a minute?\n"
        "Callee: Sure, go ahead.\n"
        "Agent: Thanks! I've noted everything. Have a great day."
    )


class Carrier:
    """Call registry and timers; everything runs on one event loop."""

    def __init__(self, time_scale: float = 1.0, seed: int | str = 0, record_file: str | None = None) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.time_scale = time_scale
        self.seed = seed
        self.record_path = record_file
        self._record_fh = open(record_file, "a", encoding="utf-8") if record_file else None
        self._reset_state()

    def _reset_state(self) -> None:
        self.calls: dict[str, Call] = {}
        self.calls_to_number: dict[str, int] = defaultdict(int)
        self.live_calls = 0
        self.live_by_org: dict[str, int] = defaultdict(int)
        self.live_by_batch: dict[str, int] = defaultdict(int)
        self.live_by_number: dict[str, int] = defaultdict(int)
        self.max_live_calls = 0
        self.max_live_by_org: dict[str, int] = {}
        self.max_live_by_batch: dict[str, int] = {}
        self.max_live_by_number: dict[str, int] = {}
        self.duplicate_posts = 0
        # DELETE of an unknown call id: a POST racing behind it must not ring.
        self.cancelled_before_placed: set[str] = set()

    # -- record file ---------------------------------------------------------

    def _write(self, call: Call) -> None:
        if self._record_fh is None:
            return
        self._record_fh.write(json.dumps(call.record(), separators=(",", ":")) + "\n")
        self._record_fh.flush()  # so a reader (or a kill -9) sees every call

    def close(self) -> None:
        if self._record_fh is not None:
            self._record_fh.close()
            self._record_fh = None

    # -- calls ---------------------------------------------------------------

    def place(self, payload: dict[str, Any]) -> tuple[Call | None, bool]:
        """Places a call, or returns the existing one for a known call id.

        Returns (None, False) when the caller hung up this call id before the
        POST arrived (a CANCEL overtaking its INVITE): nothing is placed.
        """
        call_id = payload["call_id"]
        if call_id in self.cancelled_before_placed:
            return None, False
        existing = self.calls.get(call_id)
        if existing is not None:
            existing.duplicate_posts += 1
            self.duplicate_posts += 1
            log.warning("duplicate POST for call %s (state %s)", call_id, existing.state)
            self._write(existing)
            return existing, False

        loop = asyncio.get_running_loop()
        to = str(payload.get("to", ""))
        self.calls_to_number[to] += 1
        ring_timeout = _num(payload.get("ring_timeout_seconds"), 30.0)
        max_duration = _num(payload.get("max_call_duration_seconds"), 600.0)
        plan = plan_call(
            call_id=call_id,
            to_number=to,
            profile=SimulationProfile.from_mapping(payload.get("simulation")),
            ring_timeout=ring_timeout,
            max_call_duration=max_duration,
            nth_call_to_number=self.calls_to_number[to],
            seed=self.seed,
        )
        variables = payload.get("variables") or {}
        call = Call(
            call_id=call_id,
            org_id=str(payload.get("org_id", "")),
            batch_id=str(payload.get("batch_id", "")),
            contact_id=str(payload.get("contact_id", "")),
            agent_id=str(payload.get("agent_id", "")),
            to=to,
            from_=str(payload.get("from", "")),
            attempt=int(_num(payload.get("attempt"), 1)),
            ring_timeout=ring_timeout,
            max_duration=max_duration,
            plan=plan,
            start=time.time(),
            start_mono=loop.time(),
            recording=bool(payload.get("recording_enabled")),
            transcript_enabled=bool(payload.get("transcript_enabled")),
            variables={str(k): str(v) for k, v in variables.items()} if isinstance(variables, dict) else {},
        )
        self.calls[call_id] = call
        self._count_live(call, +1)
        scale = self.time_scale
        if plan.answer_after is not None:
            call.timers.append(loop.call_at(call.start_mono + plan.answer_after * scale, self._answer, call))
        call.timers.append(loop.call_at(call.start_mono + plan.end_after * scale, self._end_naturally, call))
        self._write(call)
        return call, True

    def _count_live(self, call: Call, delta: int) -> None:
        self.live_calls += delta
        self.live_by_org[call.org_id] += delta
        self.live_by_batch[call.batch_id] += delta
        self.live_by_number[call.to] += delta
        if delta > 0:
            self.max_live_calls = max(self.max_live_calls, self.live_calls)
            _bump(self.max_live_by_org, call.org_id, self.live_by_org[call.org_id])
            _bump(self.max_live_by_batch, call.batch_id, self.live_by_batch[call.batch_id])
            _bump(self.max_live_by_number, call.to, self.live_by_number[call.to])
        else:
            # Drop zero entries so long runs with many numbers stay small.
            for table, key in ((self.live_by_org, call.org_id), (self.live_by_batch, call.batch_id), (self.live_by_number, call.to)):
                if table[key] <= 0:
                    del table[key]

    def _answer(self, call: Call) -> None:
        if call.state != "ringing":
            return
        call.state = "in_progress"
        call.answer = time.time()
        call.answer_mono = asyncio.get_running_loop().time()
        call.notify()

    def _end_naturally(self, call: Call) -> None:
        plan = call.plan
        self._finish(call, plan.outcome, plan.detail, plan.sip_code, plan.talk_seconds)

    def _finish(self, call: Call, outcome: str, detail: str, sip_code: int, talk: float) -> None:
        if call.state == "ended":
            return
        for handle in call.timers:
            handle.cancel()
        call.timers.clear()
        if call.answer is None and call.plan.answer_after is not None and outcome in ("completed", "agent_error"):
            # Should not happen (answer timer fires first), but never report a
            # talk without an answer instant.
            self._answer(call)
        call.state = "ended"
        call.end = time.time()
        call.outcome = outcome
        call.detail = detail
        call.sip_code = sip_code
        call.duration_seconds = round(talk, 3) if call.answer is not None else 0.0
        if call.answer is not None:
            if call.recording:
                call.recording_uri = RECORDING_URI.format(call_id=call.call_id)
            if call.transcript_enabled:
                call.transcript = fake_transcript(call)
        self._count_live(call, -1)
        self._write(call)
        call.notify()

    def hang_up(self, call: Call) -> None:
        """The caller hangs up (CANCEL before answer, BYE after)."""
        if call.state == "ended":
            return
        call.hung_up_by_caller = True
        if call.answer_mono is None:
            self._finish(call, "no_answer", "cancelled by caller", 487, 0.0)
        else:
            talk = (asyncio.get_running_loop().time() - call.answer_mono) / self.time_scale
            self._finish(call, "completed", "hung up by caller", 200, min(talk, call.max_duration))

    async def wait(self, call: Call, after: str, timeout: float) -> None:
        """Returns when the call's state is past ``after`` or at the timeout."""
        if STATE_RANK[call.state] > STATE_RANK.get(after, 0):
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        call.waiters.append(fut)
        handle = loop.call_later(timeout, _resolve, fut)
        try:
            await fut
        finally:
            handle.cancel()
            if fut in call.waiters:
                call.waiters.remove(fut)

    def reset(self) -> None:
        """Ends live calls (carrier_error), forgets everything, truncates the record."""
        for call in list(self.calls.values()):
            if call.state != "ended":
                self._finish(call, "carrier_error", "carrier reset", 503, 0.0)
        self._reset_state()
        if self._record_fh is not None:
            self._record_fh.seek(0)
            self._record_fh.truncate()
            self._record_fh.flush()

    def list_calls(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        out = []
        for call in self.calls.values():
            if "batch_id" in filters and call.batch_id != filters["batch_id"]:
                continue
            if "org_id" in filters and call.org_id != filters["org_id"]:
                continue
            if "contact_id" in filters and call.contact_id != filters["contact_id"]:
                continue
            out.append(call.record())
        return out

    def stats(self) -> dict[str, Any]:
        return {
            "live_calls": self.live_calls,
            "max_live_calls": self.max_live_calls,
            "live_by_org": dict(self.live_by_org),
            "live_by_batch": dict(self.live_by_batch),
            "max_live_calls_by_org": dict(self.max_live_by_org),
            "max_live_by_batch": dict(self.max_live_by_batch),
            "max_live_by_number": dict(self.max_live_by_number),
            "max_live_any_number": max(self.max_live_by_number.values(), default=0),
            "total_calls": len(self.calls),
            "duplicate_posts": self.duplicate_posts,
            "time_scale": self.time_scale,
        }


def _cancelled_before_placed(call_id: str) -> dict[str, Any]:
    """Answer to a POST whose call id was hung up before it arrived."""
    now = time.time()
    return {"call_id": call_id, "state": "ended", "outcome": "no_answer", "detail": "cancelled before placed",
            "sip_code": 487, "start": now, "answer": None, "end": now, "duration_seconds": 0.0,
            "recording_uri": "", "transcript": ""}


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _bump(table: dict[str, int], key: str, value: int) -> None:
    if value > table.get(key, 0):
        table[key] = value


def _num(value: Any, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):
        return default


# -- HTTP ---------------------------------------------------------------------


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            411: "Length Required", 413: "Payload Too Large", 500: "Internal Server Error"}


class CarrierHttpServer:
    """Minimal HTTP/1.1 server (keep-alive, Content-Length bodies only)."""

    def __init__(self, carrier: Carrier) -> None:
        self.carrier = carrier
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(
            self._handle, host, port, limit=MAX_HEADER_BYTES, backlog=4096, reuse_address=True
        )
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._connections):
                writer.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                except asyncio.CancelledError:
                    # Shutdown cancels idle keep-alive connections: end quietly
                    # (a cancelled start_server handler is logged as an error).
                    return
                keep_alive = False  # until the body is read, the stream is in an unknown place
                try:
                    method, target, version, headers = _parse_head(head)
                    body = await _read_body(reader, headers)
                    keep_alive = _keep_alive(version, headers)
                    status, payload = await self._route(method, target, body)
                except HttpError as exc:
                    status, payload = exc.status, {"error": exc.message}
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except Exception:  # a bug must not kill the carrier
                    log.exception("request failed")
                    status, payload = 500, {"error": "internal error"}
                data = json.dumps(payload, separators=(",", ":")).encode()
                writer.write(
                    b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
                    % (status, _REASONS.get(status, "").encode(), len(data),
                       b"" if keep_alive else b"Connection: close\r\n")
                    + data
                )
                try:
                    await writer.drain()
                except ConnectionError:
                    return
                if not keep_alive:
                    return
        finally:
            self._connections.discard(writer)
            writer.close()

    async def _route(self, method: str, target: str, body: bytes) -> tuple[int, Any]:
        parts = urlsplit(target)
        path = [unquote(p) for p in parts.path.split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        carrier = self.carrier

        if path == ["calls"]:
            if method == "POST":
                payload = _json_body(body)
                call_id = payload.get("call_id")
                if not isinstance(call_id, str) or not call_id or len(call_id) > 256:
                    raise HttpError(400, "call_id must be a non-empty string of at most 256 characters")
                if not isinstance(payload.get("to"), str):
                    raise HttpError(400, "to must be an E.164 number")
                call, created = carrier.place(payload)
                if call is None:
                    return 200, _cancelled_before_placed(call_id)
                if "wait" in query:
                    timeout = min(max(_num(query.get("wait"), 0.0), 0.0), MAX_WAIT_SECONDS)
                    await carrier.wait(call, "ringing", timeout)
                return (202 if created else 200), call.status()
            if method == "GET":
                return 200, carrier.list_calls(query)
            raise HttpError(405, f"{method} not allowed on /calls")
        if len(path) in (2, 3) and path[0] == "calls":
            call = carrier.calls.get(path[1])
            if len(path) == 3:
                if path[2] != "wait" or method != "GET":
                    raise HttpError(404, "no such resource")
                if call is None:
                    raise HttpError(404, "unknown call")
                timeout = min(max(_num(query.get("timeout"), DEFAULT_WAIT_SECONDS), 0.0), MAX_WAIT_SECONDS)
                after = query.get("after", "unknown")
                if after not in STATE_RANK:
                    raise HttpError(400, f"after must be one of {sorted(STATE_RANK)}")
                await carrier.wait(call, after, timeout)
                return 200, call.status()
            if call is None:
                if method == "DELETE":
                    carrier.cancelled_before_placed.add(path[1])
                    return 404, {"call_id": path[1], "state": "unknown", "error": "unknown call"}
                raise HttpError(404, "unknown call")
            if method == "GET":
                return 200, call.status()
            if method == "DELETE":
                carrier.hang_up(call)
                return 200, call.status()
            raise HttpError(405, f"{method} not allowed on a call")
        if path == ["stats"] and method == "GET":
            return 200, carrier.stats()
        if path == ["reset"] and method == "POST":
            carrier.reset()
            return 200, {"ok": True}
        if path == ["healthz"] and method == "GET":
            return 200, {"ok": True, "time_scale": carrier.time_scale, "live_calls": carrier.live_calls}
        raise HttpError(404, "no such resource")


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
    except ValueError:
        raise HttpError(400, "malformed request line") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method.upper(), target, version, headers


def _keep_alive(version: str, headers: dict[str, str]) -> bool:
    conn = headers.get("connection", "").lower()
    if version == "HTTP/1.0":
        return conn == "keep-alive"
    return conn != "close"


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "transfer-encoding" in headers:
        raise HttpError(411, "chunked bodies are not supported; send Content-Length")
    try:
        length = int(headers.get("content-length", "0") or 0)
    except ValueError:
        raise HttpError(400, "bad Content-Length") from None
    if length < 0:
        raise HttpError(400, "bad Content-Length")
    if length > MAX_BODY_BYTES:
        raise HttpError(413, "body too large")
    return await reader.readexactly(length) if length else b""


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        raise HttpError(400, "body is not JSON") from None
    if not isinstance(payload, dict):
        raise HttpError(400, "body must be a JSON object")
    return payload


async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    time_scale: float = 1.0,
    seed: int | str = 0,
    record_file: str | None = None,
    on_ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Runs the carrier until ``stop`` is set (or forever)."""
    carrier = Carrier(time_scale=time_scale, seed=seed, record_file=record_file)
    server = CarrierHttpServer(carrier)
    bound = await server.start(host, port)
    url = f"http://{host}:{bound}"
    log.info("simulated carrier listening on %s (time scale %s, seed %s)", url, time_scale, seed)
    if on_ready is not None:
        on_ready(url)
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        await server.stop()
        carrier.close()
