"""Prometheus metrics of a dialer.

Served by ``python -m dialer`` / ``batchcalls dialer`` on
``BATCHCALLS_DIALER_METRICS_PORT`` (default **9102**, 0 = off) at ``/metrics``.

- ``batchcalls_dialer_live_calls{org}``            gauge, calls this dialer has up
- ``batchcalls_dialer_org_slots_in_use{org}``      gauge, leases in the org zset (all dialers)
- ``batchcalls_dialer_org_slots_limit{org}``       gauge, the org's limit
- ``batchcalls_dialer_org_ended_awaiting_outcome{org}`` gauge, leases whose call
  ended (slots already given back) and whose outcome is not yet recorded
- ``batchcalls_dialer_claim_to_dial_seconds``      histogram, claim -> call placed
- ``batchcalls_dialer_claims_total{result}``       counter, ``ok``: contacts
  claimed; ``reserved``: contacts claimed as reservations (grant ahead);
  other results: claim script answers that stopped a claim (``ClaimStop``)
- ``batchcalls_dialer_start_decisions_total{decision}`` counter, StartAttempt answers
- ``batchcalls_dialer_outcomes_total{outcome}``    counter, FinishAttempt outcomes sent
- ``batchcalls_dialer_leases_lost_total``          counter, failed renewals (lease lost)
- ``batchcalls_dialer_leases_reaped_total{result}`` counter, leases released by
  the reaper, by verdict (``dialer.verdicts``)
- ``batchcalls_dialer_trunk_effective_cps{org,trunk}`` gauge, the rate a trunk's
  calls start at (configured × (1 - headroom), lower after carrier push-back)
- ``batchcalls_dialer_trunk_throttled{org,trunk}`` gauge, 1 while the trunk is
  paused by carrier push-back (as this dialer last saw it)
- ``batchcalls_dialer_pace_waits_total{limited_by}`` counter, CPS refusals before
  a call (``trunk``, ``org``, ``throttled``; ``ahead``: the next free cell was
  taken for its instant and the call waited for it)
- ``batchcalls_dialer_pushbacks_total{result}`` counter, carrier push-backs
  (``counted``: a new congestion event; ``same_event``)

Each ``DialerMetrics`` has its own registry, so several dialers can live in
one test process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class DialerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.live_calls = Gauge("batchcalls_dialer_live_calls", "Calls this dialer has up.", ["org"], registry=r)
        self.slots_in_use = Gauge(
            "batchcalls_dialer_org_slots_in_use", "Leases held in the organization (all dialers).", ["org"], registry=r
        )
        self.slots_limit = Gauge("batchcalls_dialer_org_slots_limit", "The organization's call limit.", ["org"], registry=r)
        self.ended_awaiting_outcome = Gauge(
            "batchcalls_dialer_org_ended_awaiting_outcome",
            "Leases whose call ended (slots given back) awaiting their recorded outcome (all dialers).",
            ["org"], registry=r,
        )
        self.claim_to_dial = Histogram(
            "batchcalls_dialer_claim_to_dial_seconds",
            "From a successful claim to the call being placed.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.claims = Counter("batchcalls_dialer_claims_total", "Answers of the claim script.", ["result"], registry=r)
        self.slot_hand_offs = Counter(
            "batchcalls_dialer_slot_hand_offs_total",
            "Where the slot of a call end went: this dialer's reservation (own), the org's oldest waiting "
            "reservation, maybe another dialer's (line), or a claim round (none waiting).",
            ["to"], registry=r)
        self.start_decisions = Counter(
            "batchcalls_dialer_start_decisions_total", "StartAttempt decisions.", ["decision"], registry=r
        )
        self.outcomes = Counter("batchcalls_dialer_outcomes_total", "Outcomes reported.", ["outcome"], registry=r)
        self.leases_lost = Counter("batchcalls_dialer_leases_lost_total", "Failed lease renewals.", registry=r)
        self.reaped = Counter("batchcalls_dialer_leases_reaped_total", "Leases released by the reaper.", ["result"], registry=r)
        self.trunk_effective_cps = Gauge(
            "batchcalls_dialer_trunk_effective_cps", "Calls per second a trunk's calls start at.", ["org", "trunk"],
            registry=r,
        )
        self.trunk_throttled = Gauge(
            "batchcalls_dialer_trunk_throttled", "1 while the trunk is paused by carrier push-back.", ["org", "trunk"],
            registry=r,
        )
        self.pace_waits = Counter("batchcalls_dialer_pace_waits_total", "CPS refusals before a call.", ["limited_by"],
                                  registry=r)
        self.pushbacks = Counter("batchcalls_dialer_pushbacks_total", "Carrier push-backs.", ["result"], registry=r)

    def serve(self, port: int, addr: str = "0.0.0.0"):
        """Start the /metrics HTTP server (a daemon thread). Returns (server, thread)."""
        return start_http_server(port, addr=addr, registry=self.registry)
