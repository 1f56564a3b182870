"""Provider for the simulated carrier (``python -m simcarrier``).

The call lives in the carrier process, not here: ``place_call`` POSTs the call
(the carrier answers at once) and then long-polls ``GET /calls/{id}/wait``
until it ends, so a dialer that dies leaves a call that still ends on the
carrier's own timers, and a recovering dialer learns the outcome through
``call_status``. Cancelling ``place_call`` hangs up with ``DELETE``.

HTTP runs on a small keep-alive client written on ``asyncio.open_connection``:
the dialer holds one long-poll per live call, hundreds at once, and neither a
thread per request nor a new TCP connection per request would keep up with
200 calls/s. The standard library has no async HTTP client, and the project
takes no third-party one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlsplit

from dialer.providers.base import (
    AnswerCallback,
    CallRequest,
    CallResult,
    CallState,
    CallStatus,
    Outcome,
    TrunkSettings,
)

log = logging.getLogger("dialer.providers.simulated")

# Real seconds a long-poll may hang before the carrier answers "no change".
POLL_SECONDS = 20.0
# Read timeout margin on top of the poll.
POLL_MARGIN_SECONDS = 10.0
REQUEST_TIMEOUT_SECONDS = 10.0
# How long transient carrier errors are retried before a call is given up.
RETRY_BUDGET_SECONDS = 15.0
HANGUP_TIMEOUT_SECONDS = 5.0


class SimulatedProviderError(Exception):
    """The carrier could not be reached, or lost track of a call."""


class _FinalError(SimulatedProviderError):
    """A 4xx answer: retrying would not help."""


class _HttpResponse:
    __slots__ = ("status", "body")

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class AsyncHttpClient:
    """Minimal HTTP/1.1 client with a keep-alive connection pool.

    One request per connection at a time; idle connections are reused LIFO.
    A connection interrupted mid-request (error, timeout, cancellation) is
    closed rather than returned, since its stream position is unknown.
    """

    def __init__(self, base_url: str, max_idle: int = 512) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"expected http://host:port, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.max_idle = max_idle
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    async def request(self, method: str, path: str, payload: Any = None, timeout: float = REQUEST_TIMEOUT_SECONDS) -> _HttpResponse:
        """Sends one request; retries once on a fresh connection if a reused one was stale."""
        if self._closed:
            raise SimulatedProviderError("provider is closed")
        body = json.dumps(payload, separators=(",", ":")).encode() if payload is not None else b""
        head = (
            f"{method} {self.prefix}{path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # Pooled streams belong to the loop that opened them (tests run
            # several asyncio.run() calls against one provider).
            self._idle = []
            self._loop = loop
        for attempt in (0, 1):
            reused = bool(self._idle)
            reader, writer = self._idle.pop() if reused else await self._connect(timeout)
            try:
                async with asyncio.timeout(timeout):
                    writer.write(head + body)
                    response, keep = await self._read_response(reader)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                writer.close()
                if reused and attempt == 0:
                    # The server closed an idle connection under us (likely a
                    # carrier restart): the other idle ones are as stale.
                    idle, self._idle = self._idle, []
                    for _, stale in idle:
                        stale.close()
                    continue
                raise SimulatedProviderError(f"{method} {path}: {exc!r}") from exc
            except BaseException:
                writer.close()
                raise
            if keep and not self._closed and len(self._idle) < self.max_idle:
                self._idle.append((reader, writer))
            else:
                writer.close()
            return response
        raise AssertionError("unreachable")

    async def _connect(self, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        except OSError as exc:
            raise SimulatedProviderError(f"cannot connect to carrier at {self.host}:{self.port}: {exc}") from exc

    @staticmethod
    async def _read_response(reader: asyncio.StreamReader) -> tuple[_HttpResponse, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            raise ConnectionError(f"malformed status line {lines[0]!r}") from None
        length = 0
        keep = True
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "connection" and value.strip().lower() == "close":
                keep = False
        body = await reader.readexactly(length) if length else b""
        return _HttpResponse(status, body), keep

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()
        for _, writer in idle:
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass


def _dt(value: Any) -> datetime | None:
    return datetime.fromtimestamp(float(value), tz=timezone.utc) if value is not None else None


def result_from_json(call: dict[str, Any]) -> CallResult:
    """Converts the carrier's JSON for an ended call into a CallResult."""
    try:
        outcome = Outcome(call.get("outcome") or "carrier_error")
    except ValueError:
        outcome = Outcome.CARRIER_ERROR
    start = _dt(call.get("start")) or datetime.now(timezone.utc)
    return CallResult(
        outcome=outcome,
        start_time=start,
        end_time=_dt(call.get("end")) or start,
        answer_time=_dt(call.get("answer")),
        duration_seconds=float(call.get("duration_seconds") or 0.0),
        sip_code=int(call.get("sip_code") or 0),
        recording_uri=call.get("recording_uri") or "",
        transcript=call.get("transcript") or "",
        detail=call.get("detail") or "",
    )


class SimulatedProvider:
    """TelephonyProvider for trunks of kind ``simulated``."""

    #: The carrier records every call it receives (and a hang-up that
    #: arrives before its call), so "unknown" means never placed.
    authoritative_status = True

    def __init__(self, base_url: str, *, retry_budget_seconds: float = RETRY_BUDGET_SECONDS) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry_budget_seconds = retry_budget_seconds
        self._http = AsyncHttpClient(self.base_url)

    async def place_call(self, request: CallRequest, on_answer: AnswerCallback) -> CallResult:
        """Places the call at the carrier and follows it until it ends.

        Any exit other than the call ending (cancellation, carrier errors,
        ``on_answer`` raising) hangs the call up first, so it never stays
        live at the carrier behind the dialer's back.
        """
        call_id = request.provider_call_id
        payload = {
            "call_id": call_id,
            "to": request.to_number,
            "from": request.from_number,
            "org_id": request.organization_id,
            "batch_id": request.batch_id,
            "contact_id": request.contact_id,
            "agent_id": request.agent_id,
            "attempt": request.attempt_number,
            "ring_timeout_seconds": request.ring_timeout_seconds,
            "max_call_duration_seconds": request.max_call_duration_seconds,
            "simulation": dict(request.trunk.simulation),
            "variables": dict(request.variables),
            "recording_enabled": request.recording_enabled,
            "transcript_enabled": request.transcript_enabled,
        }
        answered = False
        ended = False
        try:
            # POST is idempotent on call_id, so retrying it is safe.
            # ?wait: the carrier answers once ringing is over, so a call
            # costs two HTTP exchanges (place, wait for the end), not three.
            call = await self._with_retries("POST", f"/calls?wait={POLL_SECONDS:g}", payload, expect=(200, 202),
                                            timeout=POLL_SECONDS + POLL_MARGIN_SECONDS)
            while True:
                state = call.get("state")
                if not answered and call.get("answer") is not None:
                    answered = True
                    answer_time = _dt(call["answer"])
                    assert answer_time is not None
                    await on_answer(answer_time)
                if state == "ended":
                    ended = True
                    return result_from_json(call)
                if state not in ("ringing", "in_progress"):
                    raise SimulatedProviderError(f"carrier reports call {call_id} in state {state!r}")
                call = await self._with_retries(
                    "GET",
                    f"/calls/{quote(call_id, safe='')}/wait?after={state}&timeout={POLL_SECONDS:g}",
                    None,
                    expect=(200,),
                    timeout=POLL_SECONDS + POLL_MARGIN_SECONDS,
                )
        except BaseException:
            if not ended:
                await self._hang_up(call_id)
            raise

    async def _with_retries(
        self, method: str, path: str, payload: Any, expect: tuple[int, ...], timeout: float = REQUEST_TIMEOUT_SECONDS
    ) -> dict[str, Any]:
        """Retries transport errors and 5xx for a while; 4xx is final."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_budget_seconds
        delay = 0.05
        while True:
            try:
                response = await self._http.request(method, path, payload, timeout=timeout)
                if response.status in expect:
                    return response.json()
                if response.status < 500:
                    raise _FinalError(f"{method} {path} -> {response.status} {response.body[:200]!r}")
                problem: str = f"HTTP {response.status}"
            except _FinalError:
                raise
            except (SimulatedProviderError, TimeoutError) as exc:
                problem = repr(exc)
            if loop.time() + delay > deadline:
                raise SimulatedProviderError(f"{method} {path}: carrier unavailable ({problem})")
            log.warning("carrier %s %s failed (%s); retrying in %.2fs", method, path, problem, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _hang_up(self, call_id: str) -> None:
        """DELETEs the call, shielded so a second cancel cannot skip it."""

        async def attempt() -> None:
            path = f"/calls/{quote(call_id, safe='')}"
            for _ in range(3):
                try:
                    response = await self._http.request("DELETE", path, None, timeout=HANGUP_TIMEOUT_SECONDS)
                    if response.status in (200, 404):  # 404: never placed, and now it never will be
                        return
                except (SimulatedProviderError, TimeoutError) as exc:
                    log.warning("hang-up of %s failed: %r", call_id, exc)
                await asyncio.sleep(0.1)
            log.error("could not hang up call %s; it ends on the carrier's own timers", call_id)

        task = asyncio.ensure_future(attempt())
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            # Cancelled again while hanging up: the hang-up task goes on.
            pass
        except Exception:  # never mask the original exception
            log.exception("hang-up of %s failed", call_id)

    async def call_status(self, provider_call_id: str, trunk: TrunkSettings) -> CallStatus:
        """What the carrier knows of a call; UNKNOWN if it never saw it.

        Raises SimulatedProviderError when the carrier cannot be reached:
        "unreachable" must not be mistaken for "the call is over".
        """
        response = await self._http.request("GET", f"/calls/{quote(provider_call_id, safe='')}")
        if response.status == 404:
            return CallStatus(CallState.UNKNOWN)
        if response.status != 200:
            raise SimulatedProviderError(f"status of {provider_call_id}: HTTP {response.status}")
        call = response.json()
        state = CallState(call.get("state", "unknown"))
        if state is CallState.ENDED:
            return CallStatus(state, result_from_json(call))
        return CallStatus(state)

    async def stats(self) -> dict[str, Any]:
        """The carrier's live/max-live counters (tests and benchmarks)."""
        return (await self._with_retries("GET", "/stats", None, expect=(200,)))

    async def calls(self, batch_id: str | None = None) -> list[dict[str, Any]]:
        """Every call the carrier received (optionally one batch's)."""
        path = "/calls" + (f"?batch_id={quote(batch_id, safe='')}" if batch_id else "")
        return await self._with_retries("GET", path, None, expect=(200,), timeout=60.0)

    async def reset(self) -> None:
        """Ends live calls and forgets everything at the carrier."""
        await self._with_retries("POST", "/reset", {}, expect=(200,))

    async def close(self) -> None:
        await self._http.close()
