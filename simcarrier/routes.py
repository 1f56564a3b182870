"""The carrier's HTTP API: aiohttp handlers over a :class:`~simcarrier.carrier.Carrier`.

HTTP API (JSON bodies, HTTP/1.1 keep-alive)::

    POST   /calls                 place a call -> 202 + call (200 + existing call if the id is known);
                                  ?wait=<real seconds>: answer once the call is past ringing
                                  (or at that timeout), saving the first long-poll;
                                  ?follow=<real seconds>: answer with the call's states as they
                                  come (NDJSON, one call object a line, chunked): once past
                                  ringing, then once ended; the body ends after the ended line
                                  or at that timeout (then long-poll as usual). One request
                                  follows a whole call
    GET    /calls                 every call received (?batch_id=, ?org_id=, ?contact_id=)
    GET    /calls/{id}            status of one call (404 when unknown)
    GET    /calls/{id}/wait       long-poll: ?after=<state>&timeout=<real seconds>; returns
                                  as soon as the state is past ``after`` (or at the timeout)
    DELETE /calls/{id}            hang up (before answer: no_answer "cancelled by caller";
                                  after answer: completed with the talk so far). On an
                                  unknown id: 404, and a later POST of that id places
                                  nothing (answers an ended no_answer "cancelled before placed")
    POST   /pushback              {"seconds", "retry_after"?, "status"?, "reason"?}: refuse every new
                                  call for that long (carrier push-back). Refusals (also over
                                  ``cps_limit`` per caller number) answer 503 + Retry-After and
                                  are recorded with ``"refused": true``
    GET    /stats                 live and maximum live calls per org, batch and number
    POST   /reset                 end live calls, forget everything, truncate the record file
    GET    /healthz               liveness and the time scale

Every answer, errors included, is a JSON body (a followed call's is NDJSON): errors are ``{"error": ...}``
with 400 (bad body or parameter), 404 (unknown path or call), 405 (a method
``/calls`` or a known call does not take) or 413 (body over 256 KiB).

Times in call JSON are wall-clock epoch seconds (floats); ``duration_seconds``
is in *simulated* seconds of talk (a 3-minute call at time scale 0.001 lasts
180 ms but reports 180 s), because that is what billing and analytics see.
Query parameters: the last value of a repeated key counts, and an empty value
counts as absent.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from simcarrier.calls import STATE_RANK, cancelled_before_placed
from simcarrier.carrier import Carrier, number_or

log = logging.getLogger("simcarrier")

MAX_BODY_BYTES = 256 * 1024
#: Bounds of a long-poll (``?wait=`` and ``?timeout=``), in real seconds.
MAX_WAIT_SECONDS = 120.0
DEFAULT_WAIT_SECONDS = 25.0
MAX_CALL_ID_LENGTH = 256

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
NDJSON = "application/x-ndjson"


class _LineStream(web.StreamResponse):
    """A chunked answer whose headers leave with its first line."""

    _send_headers_immediately = False


def _line(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode() + b"\n"


def json_response(status: int, payload: Any) -> web.Response:
    """A compact JSON answer (no indentation: the dialer parses hundreds per second)."""
    return web.Response(status=status, body=json.dumps(payload, separators=(",", ":")).encode(),
                        content_type="application/json")


def error_response(status: int, message: str) -> web.Response:
    return json_response(status, {"error": message})


def query_params(request: web.Request) -> dict[str, str]:
    """Query parameters, last value of a key winning, empty values left out."""
    return {key: value for key, value in request.query.items() if value}


def clamp_wait(raw: str | None, default: float) -> float:
    """A long-poll time from the query, within ``[0, MAX_WAIT_SECONDS]``."""
    return min(max(number_or(raw, default), 0.0), MAX_WAIT_SECONDS)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turns aiohttp's own errors (no route, wrong method, body too large) and bugs into JSON.

    A method that a path other than ``/calls`` does not take answers 404
    like an unknown path; only ``/calls`` and a known call answer 405.
    """
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed:
        if request.path == "/calls":
            return error_response(405, f"{request.method} not allowed on /calls")
        return error_response(404, "no such resource")
    except web.HTTPNotFound:
        return error_response(404, "no such resource")
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, "body too large")
    except web.HTTPException as exc:
        return error_response(exc.status, exc.reason)
    except Exception:  # a bug must not kill the carrier
        log.exception("request %s %s failed", request.method, request.path_qs)
        return error_response(500, "internal error")


class CarrierRoutes:
    """The handlers; each reads the request, calls the carrier, answers JSON."""

    def __init__(self, carrier: Carrier) -> None:
        self.carrier = carrier

    async def place_call(self, request: web.Request) -> web.Response:
        """POST /calls[?wait=<real seconds>]."""
        try:
            payload = json.loads(await request.read() or b"{}")
        except ValueError:
            return error_response(400, "body is not JSON")
        if not isinstance(payload, dict):
            return error_response(400, "body must be a JSON object")
        call_id = payload.get("call_id")
        if not isinstance(call_id, str) or not call_id or len(call_id) > MAX_CALL_ID_LENGTH:
            return error_response(400, f"call_id must be a non-empty string of at most {MAX_CALL_ID_LENGTH} characters")
        if not isinstance(payload.get("to"), str):
            return error_response(400, "to must be an E.164 number")
        refused = self.carrier.refusal(payload)
        if refused is not None:
            # Carrier push-back: 503 (+ Retry-After), as a trunk over its CPS answers.
            headers = {} if refused["retry_after"] is None else {"Retry-After": f"{refused['retry_after']:g}"}
            response = json_response(refused["sip_code"], {"error": refused["detail"], **refused})
            response.headers.update(headers)
            return response
        call, created = self.carrier.place(payload)
        if call is None:
            return json_response(200, cancelled_before_placed(call_id))
        query = query_params(request)
        if "follow" in query:
            return await self.follow(request, call, 202 if created else 200, clamp_wait(query["follow"], 0.0))
        if "wait" in query:
            await self.carrier.wait(call, "ringing", clamp_wait(query["wait"], 0.0))
        return json_response(202 if created else 200, call.status())

    async def follow(self, request: web.Request, call: Any, status: int, seconds: float) -> web.StreamResponse:
        """The body of ``POST /calls?follow``: a line once the call is past
        ringing, a last one once it ended (or at the timeout). The headers
        leave with the first line and the last line with the body's end, so
        a call costs the carrier two writes on one request."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        response = _LineStream(status=status, headers={"Content-Type": NDJSON})
        await response.prepare(request)
        await self.carrier.wait(call, "ringing", max(0.0, deadline - loop.time()))
        if call.state != "ended":
            await response.write(_line(call.status()))
            await self.carrier.wait(call, call.state, max(0.0, deadline - loop.time()))
        await response.write_eof(_line(call.status()))
        return response

    async def list_calls(self, request: web.Request) -> web.Response:
        """GET /calls[?batch_id=&org_id=&contact_id=]."""
        return json_response(200, self.carrier.list_calls(query_params(request)))

    async def one_call(self, request: web.Request) -> web.Response:
        """GET or DELETE /calls/{id}; any method on an unknown id answers 404."""
        call_id = request.match_info["call_id"]
        call = self.carrier.calls.get(call_id)
        if call is None:
            if request.method == "DELETE":
                self.carrier.forget_before_placed(call_id)
                return json_response(404, {"call_id": call_id, "state": "unknown", "error": "unknown call"})
            return error_response(404, "unknown call")
        if request.method == "GET":
            return json_response(200, call.status())
        if request.method == "DELETE":
            self.carrier.hang_up(call)
            return json_response(200, call.status())
        return error_response(405, f"{request.method} not allowed on a call")

    async def wait_for_call(self, request: web.Request) -> web.Response:
        """GET /calls/{id}/wait?after=<state>&timeout=<real seconds>."""
        call = self.carrier.calls.get(request.match_info["call_id"])
        if call is None:
            return error_response(404, "unknown call")
        query = query_params(request)
        after = query.get("after", "unknown")
        if after not in STATE_RANK:
            return error_response(400, f"after must be one of {sorted(STATE_RANK)}")
        await self.carrier.wait(call, after, clamp_wait(query.get("timeout"), DEFAULT_WAIT_SECONDS))
        return json_response(200, call.status())

    async def pushback(self, request: web.Request) -> web.Response:
        """POST /pushback {"seconds", "status"?, "reason"?, "retry_after"?}: refuse every new call for a while."""
        try:
            body = json.loads(await request.read() or b"{}")
            seconds = float(body.get("seconds", 0))
            status = int(body.get("status", 503))
            retry_after = body.get("retry_after", 2.0)
            retry_after = None if retry_after is None else float(retry_after)
        except (ValueError, TypeError, AttributeError):
            return error_response(400, "expected {seconds, status?, reason?, retry_after?}")
        until = self.carrier.set_pushback(seconds, status=status, reason=str(body.get("reason", "Service Unavailable")),
                                          retry_after=retry_after)
        return json_response(200, {"until": until})

    async def stats(self, request: web.Request) -> web.Response:
        return json_response(200, self.carrier.stats())

    async def reset(self, request: web.Request) -> web.Response:
        self.carrier.reset()
        return json_response(200, {"ok": True})

    async def healthz(self, request: web.Request) -> web.Response:
        return json_response(200, {"ok": True, "time_scale": self.carrier.time_scale,
                                   "live_calls": self.carrier.live_calls})


def build_app(carrier: Carrier) -> web.Application:
    """The aiohttp application serving ``carrier``."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[json_errors])
    routes = CarrierRoutes(carrier)
    app.router.add_post("/calls", routes.place_call)
    app.router.add_get("/calls", routes.list_calls, allow_head=False)
    app.router.add_route("*", "/calls/{call_id}", routes.one_call)
    app.router.add_get("/calls/{call_id}/wait", routes.wait_for_call, allow_head=False)
    app.router.add_get("/stats", routes.stats, allow_head=False)
    app.router.add_post("/pushback", routes.pushback)
    app.router.add_post("/reset", routes.reset)
    app.router.add_get("/healthz", routes.healthz, allow_head=False)
    return app
