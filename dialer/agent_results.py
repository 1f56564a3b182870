"""The voice agent of a call, as the dialer wires it.

* :func:`agent_from_proto`: the batch agent's ``AgentSipConnection`` (from
  StartAttempt, password in clear: internal only) as the ``AgentSettings``
  the SIP provider INVITEs when the callee answers.
* :class:`SimulatedAgentReports`: the simulated trunk's built-in agent
  reports its result through ``ResultsService.ReportCallResult`` on the
  server's internal listener (service token), the same use case a real agent
  runtime reaches with a reporter key, so the demo exercises that path. The
  simulated carrier gives no disposition, so one is derived,
  deterministically, from the call's outcome (:func:`simulated_result`).

The reports stay off the hot path: each is sent in the background after the
call's FinishAttempt was answered (so it attaches to a closed attempt, as a
late report does), at most ``max_in_flight`` at a time and ``max_backlog``
waiting; a failure is logged at DEBUG and dropped (a report is idempotent
and a lost simulated one costs only the demo's result). Turned off with
``BATCHCALLS_SIMULATED_AGENT_REPORTS=0``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from batchcalls.v1 import batch_pb2, resources_pb2, results_service_pb2

from contract.agent import AgentSettings
from dialer.providers.base import CallResult

__all__ = ["SIMULATED_SUMMARY", "SimulatedAgentReports", "agent_from_proto", "simulated_result"]

log = logging.getLogger("dialer.agent_results")

#: The summary the simulated agent reports for a completed call.
SIMULATED_SUMMARY = "simulated agent: call completed"


def agent_from_proto(conn: resources_pb2.AgentSipConnection) -> AgentSettings:
    """AgentSipConnection (URI parts filled by the server) -> AgentSettings;
    empty parts take the URI defaults (sip, udp, 5060 / 5061 for sips)."""
    scheme = conn.scheme or "sip"
    transport = conn.transport or ("tls" if scheme == "sips" else "udp")
    return AgentSettings(
        host=conn.host,
        port=int(conn.port) or (5061 if scheme == "sips" else 5060),
        user=conn.user,
        scheme=scheme,
        transport=transport,
        username=conn.username,
        password=conn.password,
        header_fields=tuple(conn.header_fields),
    )


def simulated_result(result: CallResult | None) -> batch_pb2.CallResult:
    """What the simulated agent concluded about a completed call: COMPLETED,
    answered by a human, a one-line summary, and the carrier's transcript and
    recording when the batch asked for them."""
    msg = batch_pb2.CallResult(
        disposition=batch_pb2.CALL_DISPOSITION_COMPLETED,
        answered_by=batch_pb2.ANSWERED_BY_HUMAN,
        summary=SIMULATED_SUMMARY,
    )
    if result is not None:
        msg.transcript = result.transcript[:100_000]
        if result.recording_uri.startswith(("http://", "https://")):
            msg.recording_uri = result.recording_uri[:2000]
    return msg


class SimulatedAgentReports:
    """Fire-and-forget ReportCallResult for the simulated agent's calls."""

    def __init__(
        self,
        send: Callable[[results_service_pb2.ReportCallResultRequest], Awaitable[Any]],
        *,
        max_in_flight: int = 8,
        max_backlog: int = 2000,
    ) -> None:
        self._send = send
        self.max_in_flight = max_in_flight
        self.max_backlog = max_backlog
        self._slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task] = set()
        #: Reports sent and answered / dropped (failed or over the backlog).
        self.sent = 0
        self.dropped = 0

    def after_call(self, attempt_id: str, outcome: int, result: CallResult | None) -> bool:
        """Queue the report of a finished simulated call; only an answered
        call that completed has one. True when queued."""
        if outcome != resources_pb2.CALL_OUTCOME_COMPLETED or not attempt_id:
            return False
        if len(self._tasks) >= self.max_backlog:
            self.dropped += 1
            log.debug("simulated agent report dropped (backlog full): attempt_id=%s", attempt_id)
            return False
        req = results_service_pb2.ReportCallResultRequest(attempt_id=attempt_id, result=simulated_result(result))
        task = asyncio.create_task(self._deliver(req), name=f"agent-report-{attempt_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _deliver(self, req: results_service_pb2.ReportCallResultRequest) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_in_flight)
        async with self._slots:
            try:
                await self._send(req)
                self.sent += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - idempotent, best effort: never the call's business
                self.dropped += 1
                code = getattr(exc, "code", None)
                log.debug("simulated agent report failed: attempt_id=%s code=%s error=%r", req.attempt_id,
                          code().name if callable(code) else "", exc)

    async def drain(self, timeout: float = 1.0) -> None:
        """Wait up to ``timeout`` for the queued reports, then drop the rest."""
        tasks = set(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
