"""Provider for the simulated carrier (``python -m simcarrier``).

The call lives in the carrier process, not here: ``place_call`` POSTs the call
with ``?follow`` (the carrier streams its states on that one request: once
ringing is over, then once it ended) and long-polls ``GET /calls/{id}/wait``
only if that stream ends before the call, so a dialer that dies leaves a call
that still ends on the carrier's own timers, and a recovering dialer learns
the outcome through ``call_status`` (docs/design.md §5–6). Cancelling
``place_call`` hangs up with ``DELETE``. The HTTP API is documented in
:mod:`simcarrier.routes`.

HTTP runs on one ``aiohttp.ClientSession`` per provider, with a keep-alive
connection pool as large as the calls a dialer holds at once: every live
call keeps one long-poll open, and a new TCP connection per request would
not keep up with hundreds of calls per second.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from yarl import URL

from dialer.providers.base import (
    AnswerCallback,
    CallRequest,
    CallResult,
    CallState,
    CallStatus,
    Outcome,
    TrunkSettings,
)
from dialer.settings import DialerSettings

log = logging.getLogger("dialer.providers.simulated")

# Real seconds a long-poll may hang before the carrier answers "no change".
POLL_SECONDS = 20.0
# Read timeout margin on top of the poll.
POLL_MARGIN_SECONDS = 10.0
REQUEST_TIMEOUT_SECONDS = 10.0
# How long transient carrier errors are retried before a call is given up.
RETRY_BUDGET_SECONDS = 15.0
HANGUP_TIMEOUT_SECONDS = 5.0
#: Connections beyond one per live call: hang-ups, status queries of the
#: reaper and recovery, stats.
SPARE_CONNECTIONS = 64
DEFAULT_MAX_CONNECTIONS = DialerSettings.max_live_calls + SPARE_CONNECTIONS
#: Seconds an idle pooled connection is kept (the carrier keeps it 75 s).
KEEPALIVE_SECONDS = 30.0
_JSON_HEADERS = {"Content-Type": "application/json"}
#: A followed call's answer (``POST /calls?follow``): a call object a line.
NDJSON = "application/x-ndjson"


#: ``_with_retries``'s answer for a request followed line by line.
_FOLLOWED = object()


class SimulatedProviderError(Exception):
    """The carrier could not be reached, or lost track of a call."""


class _FinalError(SimulatedProviderError):
    """A 4xx answer: retrying would not help."""


class _Refused(Exception):
    """The carrier refused a new call (push-back: 503/429 with ``"refused"``)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"refused {status}")
        self.status = status
        self.body = body


class _HttpResponse:
    """Status and body of one carrier answer, read in full."""

    __slots__ = ("body", "status")

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class CarrierHttpClient:
    """The carrier's JSON-over-HTTP API on a pooled ``aiohttp.ClientSession``.

    The session is created on first use, inside the running event loop (a
    provider is built before the dialer's loop runs), and replaced if a later
    request runs on another loop (a provider used across ``asyncio.run()``
    calls). A request on a pooled connection that the carrier
    closed meanwhile (a carrier restart) is sent once more on a fresh one;
    aiohttp does that for GET and DELETE, this class for POST, which the
    carrier treats as idempotent on ``call_id``.
    """

    def __init__(self, base_url: str, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"expected http://host:port, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _session_for_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or loop is not self._loop:
            # A session of a finished loop cannot be closed from this one;
            # its sockets went with that loop.
            connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0,
                                             keepalive_timeout=KEEPALIVE_SECONDS)
            self._session = aiohttp.ClientSession(connector=connector, headers=_JSON_HEADERS,
                                                  cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
                                                  skip_auto_headers=("User-Agent",))
            self._loop = loop
        return self._session

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = self._timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return timeout

    async def request(self, method: str, path: str, payload: Any = None,
                      timeout: float = REQUEST_TIMEOUT_SECONDS) -> _HttpResponse:
        """Sends one request and reads the whole answer.

        Raises SimulatedProviderError when the carrier cannot be reached and
        TimeoutError when it does not answer within ``timeout`` seconds.
        """
        response = await self._exchange(method, path, payload, timeout, None)
        assert response is not None  # only a followed answer is None
        return response

    async def follow(self, path: str, payload: Any, on_line: Callable[[dict[str, Any]], Awaitable[None]],
                     timeout: float) -> _HttpResponse | None:
        """POST ``payload`` to ``path`` (a ``?follow`` request) and hand each
        NDJSON line of a 2xx answer to ``on_line`` as it arrives. None: the
        answer was followed to its end (or cut after its first line: the
        caller carries on from the last line it saw). Else the answer, read
        in full (an error, a refusal, a carrier without ``?follow``).

        Raises like ``request`` when no line arrived."""
        return await self._exchange("POST", path, payload, timeout, on_line)

    async def _exchange(self, method: str, path: str, payload: Any, timeout: float,
                        on_line: Callable[[dict[str, Any]], Awaitable[None]] | None) -> _HttpResponse | None:
        """``request`` (``on_line`` None) and ``follow``: one request, a
        stale pooled connection retried once for a POST (idempotent on the
        call id), errors mapped to SimulatedProviderError / TimeoutError."""
        if self._closed:
            raise SimulatedProviderError("provider is closed")
        session = self._session_for_loop()
        body = json.dumps(payload, separators=(",", ":")).encode() if payload is not None else None
        # Paths are built already quoted (call ids through quote()): no re-encoding.
        url = URL(self.base_url + path, encoded=True)
        lines = 0
        for attempt in (0, 1):
            try:
                async with session.request(method, url, data=body, timeout=self._timeout(timeout)) as response:
                    if on_line is None or response.status // 100 != 2 or response.content_type != NDJSON:
                        return _HttpResponse(response.status, await response.read())
                    while raw := await response.content.readline():
                        try:
                            line = json.loads(raw)
                        except ValueError as exc:
                            raise SimulatedProviderError(
                                f"{method} {path}: not a JSON line: {raw[:200]!r}") from exc
                        lines += 1
                        await on_line(line)
                    return None
            except (aiohttp.ClientError, TimeoutError) as exc:
                if lines:
                    log.info("following %s cut after %d lines: %r", path, lines, exc)
                    return None
                if (isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)) and method == "POST"
                        and attempt == 0 and not isinstance(exc, aiohttp.ClientConnectorError)):
                    continue  # a stale pooled connection: once more on a fresh one
                if isinstance(exc, TimeoutError):
                    raise TimeoutError(f"{method} {path}: no answer within {timeout:g}s") from exc
                raise SimulatedProviderError(f"{method} {path}: {exc!r}") from exc
        raise AssertionError("unreachable")

    async def close(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._loop is asyncio.get_running_loop():
            await session.close()


def _dt(value: Any) -> datetime | None:
    return datetime.fromtimestamp(float(value), tz=UTC) if value is not None else None


def result_from_json(call: dict[str, Any]) -> CallResult:
    """Converts the carrier's JSON for an ended call into a CallResult."""
    try:
        outcome = Outcome(call.get("outcome") or "carrier_error")
    except ValueError:
        outcome = Outcome.CARRIER_ERROR
    if call.get("answered_by") == "machine" and call.get("answer") is not None and outcome is not Outcome.AGENT_ERROR:
        outcome = Outcome.VOICEMAIL  # answering-machine detection: not a pickup
    start = _dt(call.get("start")) or datetime.now(UTC)
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

    def __init__(self, base_url: str, *, retry_budget_seconds: float = RETRY_BUDGET_SECONDS,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry_budget_seconds = retry_budget_seconds
        self._http = CarrierHttpClient(self.base_url, max_connections)
        # Hang-ups still running; close() lets them finish before it closes the pool.
        self._hang_ups: set[asyncio.Future[None]] = set()

    @classmethod
    def for_settings(cls, settings: Any) -> SimulatedProvider:
        """The provider a dialer uses: the carrier URL and a pool for its ``max_live_calls``."""
        max_live_calls = getattr(settings, "max_live_calls", DialerSettings.max_live_calls)
        return cls(settings.simcarrier_url, max_connections=max_live_calls + SPARE_CONNECTIONS)

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
        last: list[dict[str, Any]] = []

        async def on_line(line: dict[str, Any]) -> None:
            nonlocal answered
            last[:] = [line]
            if not answered and line.get("answer") is not None:
                answered = True
                answer_time = _dt(line["answer"])
                assert answer_time is not None
                await on_answer(answer_time)

        try:
            # POST is idempotent on call_id, so retrying it is safe.
            # ?follow: the carrier streams the call's states on this one
            # request (past ringing, then ended), so a call costs one HTTP
            # exchange; a call still live when the stream ends (its timeout,
            # a cut connection) is long-polled from its last state.
            try:
                got = await self._with_retries("POST", f"/calls?follow={POLL_SECONDS:g}", payload, expect=(200, 202),
                                               timeout=POLL_SECONDS + POLL_MARGIN_SECONDS, refusals=True,
                                               on_line=on_line)
                call = last[0] if got is _FOLLOWED else got
                if call is None:
                    raise SimulatedProviderError(f"carrier answered no state for call {call_id}")
            except _Refused as refused:
                # Never placed: nothing to hang up. The dialer classifies it.
                ended = True
                now = datetime.now(UTC)
                retry_after = refused.body.get("retry_after")
                return CallResult(
                    outcome=Outcome.CARRIER_ERROR, start_time=now, end_time=now, sip_code=refused.status,
                    detail=f"refused by the carrier: {refused.status} {refused.body.get('detail', '')}".strip(),
                    refused=True, reason=str(refused.body.get("detail") or ""),
                    retry_after=None if retry_after is None else f"{float(retry_after):g}",
                )
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
        self, method: str, path: str, payload: Any, expect: tuple[int, ...], timeout: float = REQUEST_TIMEOUT_SECONDS,
        refusals: bool = False, on_line: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> Any:
        """Retries transport errors and 5xx for a while; 4xx is final.
        ``refusals``: a 503/429 marked ``"refused"`` (carrier push-back)
        raises ``_Refused`` at once instead. ``on_line``: a POST whose
        NDJSON answer goes to it line by line (``CarrierHttpClient.follow``);
        returns ``_FOLLOWED`` once followed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_budget_seconds
        delay = 0.05
        while True:
            try:
                if on_line is not None:
                    followed = await self._http.follow(path, payload, on_line, timeout)
                    if followed is None:
                        return _FOLLOWED
                    response = followed
                else:
                    response = await self._http.request(method, path, payload, timeout=timeout)
                if response.status in expect:
                    return response.json()
                if refusals and response.status in (429, 503):
                    body = response.json() if response.body else None
                    if isinstance(body, dict) and body.get("refused"):
                        raise _Refused(response.status, body)
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
        self._hang_ups.add(task)
        task.add_done_callback(self._hang_ups.discard)
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
        """Closes the connection pool once running hang-ups are done (at most HANGUP_TIMEOUT_SECONDS)."""
        if self._hang_ups:
            await asyncio.wait(list(self._hang_ups), timeout=HANGUP_TIMEOUT_SECONDS)
        await self._http.close()
