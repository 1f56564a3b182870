"""Batches end to end over a SIP trunk: real server, real ``python -m dialer``
process, sipp on loopback as the carrier (``tests/sip/scenarios/trunk_uas.xml``:
the dialed number picks the carrier's behaviour, table in ``tests/sip/sipp.py``).

Everything below runs at once, in one module fixture, so the whole module
takes about as long as its slowest call (Timer B, 32 s with the provider's
default T1 = 0.5 s, which the dialer process does not let us scale):

per transport (UDP and TCP), each with its own sipp process so sipp's
counters belong to one run:

- ``outcomes``: every number of the table once, from a caller number whose
  trunk has digest credentials (so 401 and 407 are answered), max_attempts 1,
  max_call_duration_seconds 30 (the API minimum: the "hold" number is hung up
  by our BYE at 30 s), ring timeout 2 s (dialer env), concurrency 20.
- ``retry``: max_attempts 2 from a caller number without credentials:
  retryable outcomes (486, 480, ring timeout -> CANCEL) are dialed twice,
  the others once.
- ``batch_limit``: 10 answered ~1.3 s calls, batch concurrency_limit 2.
- ``org_limit``: two batches of 6 such calls, concurrency_limit 3 each, in an
  organization whose limit the owner lowered to 2 (UpdateOrganization).

For the two limit runs the scenario is copied with the "answered, callee
hangs up after 1 s" branch widened from +14155550100 to +141555530xx, since
a batch holds each number once.

Skipped when sipp is missing, an error under CI=true (``need_binary``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import field_mask_pb2

from batchcalls.v1 import (
    batch_pb2,
    batch_service_pb2 as bpb,
    batch_service_pb2_grpc as bgrpc,
    organization_service_pb2 as org_pb2,
    organization_service_pb2_grpc as org_grpc,
    phone_number_service_pb2 as pn_pb2,
    phone_number_service_pb2_grpc as pn_grpc,
    resources_pb2 as res,
)
from tests.conftest import need_binary
from tests.sip.sipp import NUMBERS, SCENARIOS, SIPP_PASSWORD, SIPP_USERNAME, SippProcess, SippStats, start_sipp
from tests.support.drive import list_all_contacts

pytestmark = [pytest.mark.sip, pytest.mark.slow]

TRANSPORTS = ("udp", "tcp")
RING_TIMEOUT_S = 2.0  # dialer env BATCHCALLS_RING_TIMEOUT_SECONDS
MAX_CALL_S = 30  # the API's minimum max_call_duration_seconds
# sipp keeps the "no response" calls (and the one ignoring our CANCEL) this
# long: longer than Timer B (32 s, last INVITE retransmission at 31.5 s) and
# Timer F (the last CANCEL retransmission), so retransmissions stay in one call.
SILENT_MS = 33_500
BATCH_DEADLINE_S = 80.0

OUTCOME = res.CallOutcome
CS = res.ContactStatus

# Table name -> (contact status, last outcome, sip code) with max_attempts 1.
EXPECTED = {
    "completed": (CS.CONTACT_STATUS_COMPLETED, OUTCOME.CALL_OUTCOME_COMPLETED, 200),
    "hold": (CS.CONTACT_STATUS_COMPLETED, OUTCOME.CALL_OUTCOME_COMPLETED, 200),  # our BYE at max duration
    "auth401": (CS.CONTACT_STATUS_COMPLETED, OUTCOME.CALL_OUTCOME_COMPLETED, 200),
    "auth407": (CS.CONTACT_STATUS_COMPLETED, OUTCOME.CALL_OUTCOME_COMPLETED, 200),
    "ring_forever": (CS.CONTACT_STATUS_FAILED, OUTCOME.CALL_OUTCOME_NO_ANSWER, 487),  # our CANCEL
    "unavailable": (CS.CONTACT_STATUS_FAILED, OUTCOME.CALL_OUTCOME_NO_ANSWER, 480),
    "request_timeout": (CS.CONTACT_STATUS_FAILED, OUTCOME.CALL_OUTCOME_NO_ANSWER, 408),
    "busy": (CS.CONTACT_STATUS_FAILED, OUTCOME.CALL_OUTCOME_BUSY, 486),
    "busy_everywhere": (CS.CONTACT_STATUS_FAILED, OUTCOME.CALL_OUTCOME_BUSY, 600),
    "silent": (CS.CONTACT_STATUS_FAILED, OUTCOME.CALL_OUTCOME_TIMEOUT, 0),  # Timer B
    "ignore_cancel": (CS.CONTACT_STATUS_FAILED, OUTCOME.CALL_OUTCOME_TIMEOUT, 0),  # nothing after CANCEL
    "not_found": (CS.CONTACT_STATUS_INVALID_NUMBER, OUTCOME.CALL_OUTCOME_INVALID_NUMBER, 404),
    "address_incomplete": (CS.CONTACT_STATUS_INVALID_NUMBER, OUTCOME.CALL_OUTCOME_INVALID_NUMBER, 484),
    "does_not_exist": (CS.CONTACT_STATUS_INVALID_NUMBER, OUTCOME.CALL_OUTCOME_INVALID_NUMBER, 604),
    "forbidden": (CS.CONTACT_STATUS_BLOCKED, OUTCOME.CALL_OUTCOME_BLOCKED, 403),
    "decline": (CS.CONTACT_STATUS_BLOCKED, OUTCOME.CALL_OUTCOME_BLOCKED, 603),
    "service_unavailable": (CS.CONTACT_STATUS_CARRIER_ERROR, OUTCOME.CALL_OUTCOME_CARRIER_ERROR, 503),
    "server_error": (CS.CONTACT_STATUS_CARRIER_ERROR, OUTCOME.CALL_OUTCOME_CARRIER_ERROR, 500),
}
assert set(EXPECTED) == set(NUMBERS)

# max_attempts 2, caller number without credentials: name -> (status, outcome, sip codes per attempt).
RETRY_EXPECTED = {
    "busy": (CS.CONTACT_STATUS_FAILED, OUTCOME.CALL_OUTCOME_BUSY, [486, 486]),
    "unavailable": (CS.CONTACT_STATUS_FAILED, OUTCOME.CALL_OUTCOME_NO_ANSWER, [480, 480]),
    "ring_forever": (CS.CONTACT_STATUS_FAILED, OUTCOME.CALL_OUTCOME_NO_ANSWER, [487, 487]),
    "completed": (CS.CONTACT_STATUS_COMPLETED, OUTCOME.CALL_OUTCOME_COMPLETED, [200]),
    "not_found": (CS.CONTACT_STATUS_INVALID_NUMBER, OUTCOME.CALL_OUTCOME_INVALID_NUMBER, [404]),
}

LIMIT_NUMBERS = [f"+141555530{i:02d}" for i in range(20)]  # answered, callee hangs up after ~1 s


# --------------------------------------------------------------------------- set-up


@dataclass
class Run:
    name: str
    transport: str
    sipp: SippProcess
    org: Any
    batch_ids: list[str] = field(default_factory=list)
    caller_e164: str = ""
    stats: SippStats | None = None
    errors: str = ""
    # batch id -> contacts (GetContact, attempt_details included)
    contacts: dict[str, list[batch_pb2.Contact]] = field(default_factory=dict)
    batch_status: dict[str, int] = field(default_factory=dict)

    def by_number(self) -> dict[str, batch_pb2.Contact]:
        return {c.phone_number: c for cs in self.contacts.values() for c in cs}


def _limit_scenario(directory: Path) -> Path:
    """trunk_uas.xml with +141555530xx answered like +14155550100."""
    text = (SCENARIOS / "trunk_uas.xml").read_text()
    old = 'regexp="^INVITE sip:\\+14155550100@"'
    assert old in text, "trunk_uas.xml changed: update _limit_scenario"
    path = directory / "trunk_uas_limits.xml"
    path.write_text(text.replace(old, 'regexp="^INVITE sip:\\+1415555(0100|30[0-9][0-9])@"'))
    return path


def _csv(numbers: list[str]) -> bytes:
    return ("phone,name\n" + "".join(f"{n},Person {i}\n" for i, n in enumerate(numbers))).encode()


def _add_caller(stack: Any, run: Run, *, credentials: bool) -> str:
    org, sipp = run.org, run.sipp
    trunk = res.OutboundTrunk(
        kind=res.TRUNK_KIND_SIP,
        host=sipp.host,
        port=sipp.port,
        transport=res.SIP_TRANSPORT_UDP if sipp.transport == "udp" else res.SIP_TRANSPORT_TCP,
        caller_id_format=res.CALLER_ID_FORMAT_E164,
        calls_per_second=1000.0,  # pacing is tested in tests/integration/test_pacing_dialer.py
    )
    if credentials:
        trunk.username, trunk.password = SIPP_USERNAME, SIPP_PASSWORD
    with stack.channel() as ch:
        number = pn_grpc.PhoneNumberServiceStub(ch).CreatePhoneNumber(
            pn_pb2.CreatePhoneNumberRequest(
                phone_number=res.PhoneNumber(
                    phone_number=f"+12025550{secrets.randbelow(900) + 100:03d}",
                    display_name=f"sip {sipp.transport}",
                    outbound_trunk=trunk,
                )
            ),
            metadata=org.md(),
        ).phone_number
    assert number.outbound_trunk.password_set == credentials and not number.outbound_trunk.password
    run.caller_e164 = number.phone_number
    return number.name


def _create_batch(stack: Any, org: Any, caller: str, numbers: list[str], **fields: Any) -> str:
    with stack.channel() as ch:
        batch = bgrpc.BatchServiceStub(ch).CreateBatch(
            bpb.CreateBatchRequest(
                request_id=str(uuid.uuid4()),
                display_name=f"sip e2e {secrets.token_hex(3)}",
                agent=org.agent_name,
                from_phone_number=caller,
                csv_content=_csv(numbers),
                filename="contacts.csv",
                calling_window_mode=res.CALLING_WINDOW_MODE_NONE,
                max_call_duration_seconds=MAX_CALL_S,
                **fields,
            ),
            metadata=org.md(),
        ).batch
    return batch.batch_id


def _set_org_limit(stack: Any, org: Any, limit: int) -> None:
    with stack.channel() as ch:
        got = org_grpc.OrganizationServiceStub(ch).UpdateOrganization(
            org_pb2.UpdateOrganizationRequest(
                organization=org_pb2.Organization(concurrency_limit=limit),
                update_mask=field_mask_pb2.FieldMask(paths=["concurrency_limit"]),
            ),
            metadata=org.md("owner"),
        ).organization
    assert got.concurrency_limit == limit


def _wait_batches(stack: Any, runs: list[Run], deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    pending = {(r.name, r.transport, b): r for r in runs for b in r.batch_ids}
    with stack.channel() as ch:
        stub = bgrpc.BatchServiceStub(ch)
        while pending:
            for key, run in list(pending.items()):
                batch = stub.GetBatch(bpb.GetBatchRequest(name=f"batches/{key[2]}"), metadata=run.org.md()).batch
                run.batch_status[key[2]] = batch.status
                if batch.status in (res.BATCH_STATUS_COMPLETED, res.BATCH_STATUS_FAILED, res.BATCH_STATUS_CANCELLED):
                    del pending[key]
            if pending and time.monotonic() > deadline:
                left = {k[:2]: res.BatchStatus.Name(r.batch_status.get(k[2], 0)) for k, r in pending.items()}
                raise TimeoutError(f"batches not final after {deadline_s:.0f}s: {left}")
            time.sleep(0.25)


def _collect_contacts(stack: Any, run: Run) -> None:
    with stack.channel() as ch:
        stub = bgrpc.BatchServiceStub(ch)
        for batch_id in run.batch_ids:
            listed = list_all_contacts(stub, run.org, batch_id)
            run.contacts[batch_id] = [
                stub.GetContact(bpb.GetContactRequest(name=c.name), metadata=run.org.md()).contact for c in listed
            ]


@pytest.fixture(scope="module")
def sip_runs(stack: Any) -> Any:
    need_binary("sipp", "SIP trunk end-to-end tests; Debian package sip-tester")
    workdir = Path(tempfile.mkdtemp(prefix="sip-e2e-"))
    limit_scenario = _limit_scenario(workdir)
    log_path = workdir / "dialer.log"
    log_file = open(log_path, "wb")
    runs: list[Run] = []
    dialer = None
    started = time.monotonic()
    try:
        for transport in TRANSPORTS:
            # Every outcome, digest credentials on the trunk.
            sipp = start_sipp("trunk_uas.xml", transport, silent_ms=SILENT_MS)
            run = Run("outcomes", transport, sipp, stack.new_org(concurrency_limit=30))
            runs.append(run)
            caller = _add_caller(stack, run, credentials=True)
            run.batch_ids.append(_create_batch(stack, run.org, caller, list(NUMBERS.values()),
                                               max_attempts=1, concurrency_limit=20))
            # Retries: two INVITEs for retryable outcomes; no credentials.
            sipp = start_sipp("trunk_uas.xml", transport, silent_ms=SILENT_MS)
            run = Run("retry", transport, sipp, stack.new_org(concurrency_limit=10))
            runs.append(run)
            caller = _add_caller(stack, run, credentials=False)
            run.batch_ids.append(_create_batch(stack, run.org, caller, [NUMBERS[n] for n in RETRY_EXPECTED],
                                               max_attempts=2, concurrency_limit=10))
            # Batch limit 2 (org limit 10).
            sipp = start_sipp(str(limit_scenario), transport)
            run = Run("batch_limit", transport, sipp, stack.new_org(concurrency_limit=10))
            runs.append(run)
            caller = _add_caller(stack, run, credentials=False)
            run.batch_ids.append(_create_batch(stack, run.org, caller, LIMIT_NUMBERS[:10],
                                               max_attempts=1, concurrency_limit=2))
            # Org limit 2 (lowered by the owner) under two batches of limit 3.
            sipp = start_sipp(str(limit_scenario), transport)
            run = Run("org_limit", transport, sipp, stack.new_org(concurrency_limit=10))
            runs.append(run)
            _set_org_limit(stack, run.org, 2)
            caller = _add_caller(stack, run, credentials=False)
            for numbers in (LIMIT_NUMBERS[:6], LIMIT_NUMBERS[10:16]):
                run.batch_ids.append(_create_batch(stack, run.org, caller, numbers,
                                                   max_attempts=1, concurrency_limit=3))

        dialer = stack.spawn(
            ["-m", "dialer"],
            env={
                "BATCHCALLS_RING_TIMEOUT_SECONDS": str(RING_TIMEOUT_S),
                "BATCHCALLS_DIALER_METRICS_PORT": "0",
                "BATCHCALLS_DIALER_ID": f"sip-e2e-{os.getpid()}",
                "BATCHCALLS_LOG_LEVEL": "INFO",
            },
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_batches(stack, runs, BATCH_DEADLINE_S)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n--- dialer log (tail) ---\n{_tail(log_path)}") from None
        for run in runs:
            assert run.sipp.wait_idle(15), f"{run.name}/{run.transport}: sipp still has calls"
        for run in runs:
            run.sipp.stop()
            run.stats = run.sipp.stats()
            run.errors = run.sipp.errors()
            _collect_contacts(stack, run)
        elapsed = time.monotonic() - started
        dialer_rc = _stop(dialer)
        print(f"sip e2e: batches final and sipp idle after {elapsed:.1f}s")
        for run in runs:
            st = run.stats
            print(f"  {run.name}/{run.transport}: invites={st.invites} cancels={st.cancels} "
                  f"byes_in={st.byes_received} byes_out={st.byes_sent} peak={st.peak_concurrent} "
                  f"peak_cur={st.peak_current_calls} retrans={st.retransmitted} sent={st.sent}")
        log_file.flush()
        yield {(r.name, r.transport): r for r in runs} | {
            "elapsed": elapsed, "dialer_rc": dialer_rc, "dialer_log": _json_lines(log_path),
        }
    finally:
        if dialer is not None:
            _stop(dialer)
        log_file.close()
        for run in runs:
            run.sipp.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def _stop(proc: subprocess.Popen[Any]) -> int:
    """SIGTERM (the dialer drains, then exits 0), SIGKILL after 15 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _json_lines(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"level": "RAW", "msg": line})
    return out


def _tail(path: Path, n: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def _run(sip_runs: Any, name: str, transport: str) -> Run:
    run = sip_runs[(name, transport)]
    for batch_id, status in run.batch_status.items():
        assert status == res.BATCH_STATUS_COMPLETED, (name, transport, batch_id, res.BatchStatus.Name(status))
    # sipp ended every call it saw as its scenario says; no message it did not expect.
    assert run.stats is not None
    assert run.stats.unexpected == 0 and run.stats.failed_calls == 0, (run.stats, run.errors[:2000])
    assert "Aborting call" not in run.errors and "aborted at" not in run.errors, run.errors[:2000]
    return run


def _check_sipp_calls_match_attempts(run: Run) -> None:
    """One sipp call (Call-ID) per attempt, carrying the attempt's X- headers."""
    st = run.stats
    assert st is not None
    attempts = {}
    for batch_id, contacts in run.contacts.items():
        for c in contacts:
            for a in c.attempt_details:
                attempts[a.provider_call_id] = (batch_id, c, a)
    assert set(st.calls) == set(attempts), (sorted(st.calls), sorted(attempts))
    assert st.total_calls == len(attempts)
    for call_id, (batch_id, c, a) in attempts.items():
        rec = st.calls[call_id]
        assert rec.number == c.phone_number
        assert rec.headers["batch"] == batch_id and rec.headers["contact"] == c.contact_id
        assert rec.headers["attempt"] == str(a.attempt_number)
        assert rec.headers["agent"] == run.org.agent_name.removeprefix("agents/")
        assert rec.headers["from"] == run.caller_e164  # caller_id_format e164


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_outcome_end_to_end(sip_runs: Any, transport: str) -> None:
    run = _run(sip_runs, "outcomes", transport)
    assert len(run.batch_ids) == 1
    contacts = run.by_number()
    assert len(contacts) == len(NUMBERS)
    for name, number in NUMBERS.items():
        status, outcome, code = EXPECTED[name]
        c = contacts[number]
        got = (CS.Name(c.status), OUTCOME.Name(c.last_outcome), [a.sip_code for a in c.attempt_details])
        assert got == (CS.Name(status), OUTCOME.Name(outcome), [code]), name
        assert c.attempts == 1 and c.max_attempts == 1, name
        (a,) = c.attempt_details
        assert a.outcome == outcome and a.attempt_number == 1, name
        if status == CS.CONTACT_STATUS_FAILED:
            assert c.failure_reason == "permanently_failed", (name, c.failure_reason)
        answered = outcome == OUTCOME.CALL_OUTCOME_COMPLETED
        assert a.HasField("answer_time") == answered, name
        if not answered:
            assert a.duration_seconds == 0, name
    # The callee hangs up after ~1 s of talk; "hold" is hung up by us at the
    # max call duration, counted from the first INVITE (talk = 30 s - ring).
    for name in ("completed", "auth401", "auth407"):
        assert 0.7 <= contacts[NUMBERS[name]].attempt_details[0].duration_seconds <= 2.0, name
    hold = contacts[NUMBERS["hold"]].attempt_details[0]
    assert MAX_CALL_S - 1.5 <= hold.duration_seconds <= MAX_CALL_S, hold.duration_seconds
    attempt_s = (hold.end_time.ToDatetime() - hold.start_time.ToDatetime()).total_seconds()
    assert MAX_CALL_S - 0.5 <= attempt_s <= MAX_CALL_S + 2, attempt_s

    _check_sipp_calls_match_attempts(run)
    st = run.stats
    assert st is not None
    n = len(NUMBERS)
    assert st.successful_calls == n
    # INVITEs: one per attempt plus the two authenticated re-INVITEs, nothing else.
    assert st.invites == n + 2, st.received
    assert st.calls[contacts[NUMBERS["auth401"]].attempt_details[0].provider_call_id].auth == ["401"]
    assert st.calls[contacts[NUMBERS["auth407"]].attempt_details[0].provider_call_id].auth[0].startswith("407")
    assert st.sent.get("401") == 1 and st.sent.get("407") == 1
    # One 403, for +14155550403: sipp's verifyauth accepted our 401 digest (a bad one gets 403).
    assert st.sent.get("403") == 1
    # Retransmitted INVITEs only for the silent number over UDP (Timer A until Timer B).
    if transport == "tcp":
        assert st.retransmitted.get("INVITE", 0) == 0 and st.retransmitted.get("CANCEL", 0) == 0
    else:
        assert 4 <= st.retransmitted.get("INVITE", 0) <= 6, st.retransmitted
    # CANCEL: ring timeout for ring_forever (-> 487) and ignore_cancel (nothing back).
    assert st.cancels == 2 and st.sent.get("487") == 1
    assert st.byes_received == 1  # our BYE at max call duration ("hold")
    assert st.byes_sent == 3  # callee hangups: completed, auth401, auth407
    ends = {name: st.calls[contacts[NUMBERS[name]].attempt_details[0].provider_call_id].end for name in NUMBERS}
    assert ends["ring_forever"] == "cancelled" and ends["hold"] == "answered"
    assert ends["silent"] == ends["ignore_cancel"] == "silent"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_retryable_outcomes_are_dialed_again(sip_runs: Any, transport: str) -> None:
    run = _run(sip_runs, "retry", transport)
    contacts = run.by_number()
    for name, (status, outcome, codes) in RETRY_EXPECTED.items():
        c = contacts[NUMBERS[name]]
        got = (CS.Name(c.status), OUTCOME.Name(c.last_outcome), [a.sip_code for a in c.attempt_details])
        assert got == (CS.Name(status), OUTCOME.Name(outcome), codes), name
        assert c.attempts == len(codes) and c.max_attempts == 2, name
        assert [a.attempt_number for a in c.attempt_details] == list(range(1, len(codes) + 1)), name
        assert len({a.provider_call_id for a in c.attempt_details}) == len(codes), name  # a new Call-ID each time
        if len(codes) == 2:
            first, second = c.attempt_details
            # The retry came after the server's delay (0.3 s in the test stack).
            gap = (second.start_time.ToDatetime() - first.end_time.ToDatetime()).total_seconds()
            assert gap >= 0.25, (name, gap)
    _check_sipp_calls_match_attempts(run)
    st = run.stats
    assert st is not None
    n_attempts = sum(len(codes) for _, _, codes in RETRY_EXPECTED.values())
    assert st.invites == n_attempts == 8, st.received
    assert st.total_calls == st.successful_calls == n_attempts
    per_number: dict[str, int] = {}
    for rec in st.calls.values():
        per_number[rec.number] = per_number.get(rec.number, 0) + 1
    assert per_number == {NUMBERS[name]: len(codes) for name, (_, _, codes) in RETRY_EXPECTED.items()}
    assert st.cancels == 2 and st.sent.get("487") == 2  # ring_forever, twice
    assert st.byes_sent == 1 and st.byes_received == 0
    if transport == "tcp":
        assert st.retransmitted.get("INVITE", 0) == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_batch_concurrency_limit_holds_at_the_trunk(sip_runs: Any, transport: str) -> None:
    run = _run(sip_runs, "batch_limit", transport)
    contacts = run.by_number()
    assert len(contacts) == 10
    assert all(c.status == CS.CONTACT_STATUS_COMPLETED for c in contacts.values())
    _check_sipp_calls_match_attempts(run)
    st = run.stats
    assert st is not None
    assert st.invites == st.total_calls == 10 and st.byes_sent == 10
    # Exact peak from sipp's START/END log times; the per-second CurrentCall too.
    assert st.peak_concurrent == 2, st.peak_concurrent
    assert st.peak_current_calls <= 2


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_org_concurrency_limit_holds_across_batches(sip_runs: Any, transport: str) -> None:
    run = _run(sip_runs, "org_limit", transport)
    assert len(run.batch_ids) == 2
    contacts = run.by_number()
    assert len(contacts) == 12
    assert all(c.status == CS.CONTACT_STATUS_COMPLETED for c in contacts.values())
    _check_sipp_calls_match_attempts(run)
    st = run.stats
    assert st is not None
    assert st.invites == st.total_calls == 12
    # Two batches of limit 3 each, org limit 2: never more than 2 calls at the trunk.
    assert st.peak_concurrent == 2, st.peak_concurrent
    assert st.peak_current_calls <= 2
    assert {rec.headers["batch"] for rec in st.calls.values()} == set(run.batch_ids)


def test_dialer_process_ran_clean(sip_runs: Any) -> None:
    """The dialer logged no warning or error, placed and ended every call it
    claimed, and exited 0 on SIGTERM. The whole run stayed well under 90 s."""
    runs = [run for key, run in sip_runs.items() if isinstance(key, tuple)]
    ours = {run.org.org_id for run in runs}
    # The dialer serves every organization of the shared test stack: judge
    # only the lines about ours (and those about no organization).
    log = [e for e in sip_runs["dialer_log"] if e.get("org_id", next(iter(ours))) in ours]
    bad = [e for e in log if e.get("level") not in ("DEBUG", "INFO")]
    assert not bad, bad[:20]
    events = [e.get("msg") for e in log]
    n_attempts = sum(len(c.attempt_details) for run in runs for cs in run.contacts.values() for c in cs)
    assert events.count("call.placed") == events.count("call.ended") == n_attempts
    assert "dialer.stopped" in events and sip_runs["dialer_rc"] == 0
    assert sip_runs["elapsed"] < 75, sip_runs["elapsed"]
