"""Real dialers and the simulated carrier around a test stack, and the
invariant checks of docs/design.md §5 read from the carrier's own record."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

import grpc

from batchcalls.v1 import batch_service_pb2 as pb, resources_pb2 as res
from simcarrier.analysis import RecordCheck, check_record
from tests.support.api import stub
from tests.support.helpers import dialer_env

FINAL_STATUSES = {
    res.CONTACT_STATUS_COMPLETED, res.CONTACT_STATUS_FAILED, res.CONTACT_STATUS_INVALID_NUMBER,
    res.CONTACT_STATUS_BLOCKED, res.CONTACT_STATUS_CARRIER_ERROR, res.CONTACT_STATUS_CANCELLED,
    res.CONTACT_STATUS_SUPPRESSED,
}


@dataclass
class Carrier:
    url: str

    def calls(self, batch_id: str | None = None) -> list[dict[str, Any]]:
        q = f"?batch_id={batch_id}" if batch_id else ""
        with urllib.request.urlopen(f"{self.url}/calls{q}", timeout=30) as r:
            return json.loads(r.read())

    def live(self) -> int:
        with urllib.request.urlopen(f"{self.url}/stats", timeout=30) as r:
            return int(json.loads(r.read())["live_calls"])


def start_dialer(stack: Any, carrier: Carrier, name: str, **env: str) -> subprocess.Popen[Any]:
    return stack.spawn(["-m", "dialer"], env=dialer_env(carrier.url, name, **env))


def kill9(proc: subprocess.Popen[Any]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def create(stack: Any, org: Any, numbers: list[str], **kw: Any) -> pb.Batch:
    csv = ("phone,name\n" + "".join(f"{n},Person {i}\n" for i, n in enumerate(numbers))).encode()
    req = pb.CreateBatchRequest(
        request_id=str(uuid.uuid4()), display_name="e2e", agent=org.agent_name,
        from_phone_number=org.phone_number_name, csv_content=csv, filename="e2e.csv",
        calling_window_mode=res.CALLING_WINDOW_MODE_NONE, **kw,
    )
    with stack.channel() as ch:
        return stub(ch).CreateBatch(req, metadata=org.md()).batch


def get(stack: Any, org: Any, name: str) -> pb.Batch:
    with stack.channel() as ch:
        return stub(ch).GetBatch(pb.GetBatchRequest(name=name), metadata=org.md()).batch


def wait_status(stack: Any, org: Any, name: str, statuses: set[int], timeout: float = 90) -> pb.Batch:
    deadline = time.monotonic() + timeout
    while True:
        try:
            b = get(stack, org, name)
            if b.status in statuses:
                return b
        except grpc.RpcError:
            pass  # the server may be restarting
        if time.monotonic() > deadline:
            stuck = [
                (c.contact_id, res.ContactStatus.Name(c.status), c.attempts)
                for c in contacts(stack, org, name)
                if c.status not in FINAL_STATUSES
            ]
            raise AssertionError(
                f"{name} still {res.BatchStatus.Name(b.status)} after {timeout}s; not final: {stuck[:10]}; "
                f"leases: {_lease_dump(stack, org.org_id)}"
            )
        time.sleep(0.1)


def _lease_dump(stack: Any, org_id: str) -> list[dict[str, Any]]:
    from contract import keys

    async def dump() -> list[dict[str, Any]]:
        r = stack.ctx.redis_state.redis
        out = []
        for lease, score in await r.zrange(keys.org_leases(org_id), 0, -1, withscores=True):
            lease_id = lease.decode() if isinstance(lease, bytes) else lease
            info = await r.hgetall(keys.lease_info(org_id, lease_id))
            out.append({"lease": lease_id, "expiry": score, "now": time.time() * 1000,
                        **{(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                           for k, v in info.items() if k not in (b"trunk", "trunk")}})
        return out

    try:
        return stack.run(dump())
    except Exception as exc:  # noqa: BLE001 - diagnostics only
        return [{"error": repr(exc)}]


def contacts(stack: Any, org: Any, name: str) -> list[Any]:
    out: list[Any] = []
    token = ""
    with stack.channel() as ch:
        while True:
            page = stub(ch).ListContacts(pb.ListContactsRequest(parent=name, page_size=100, page_token=token),
                                         metadata=org.md())
            out += page.contacts
            token = page.next_page_token
            if not token:
                return out


def wait_slots_free(stack: Any, org_id: str, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while True:
        used = stack.run(stack.ctx.redis_state.slots_in_use(org_id))
        if used == 0 or time.monotonic() > deadline:
            return used
        time.sleep(0.1)


def wait_ended_drained(stack: Any, org_id: str, timeout: float = 30) -> int:
    """Waits until no lease of the org waits, call over, for its outcome to
    be recorded (the ended zset, see contract.keys.org_ended)."""
    deadline = time.monotonic() + timeout
    while True:
        left = stack.run(stack.ctx.redis_state.ended_awaiting_outcome(org_id))
        if left == 0 or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def assert_invariants(
    stack: Any, org: Any, carrier: Carrier, batches: list[pb.Batch], *, org_limit: int, final: bool = True
) -> RecordCheck:
    """Invariants 1–4 from the callee's side (the carrier's record)."""
    calls = [c for b in batches for c in carrier.calls(b.batch_id)]
    check = check_record(calls)
    assert check.unfinished_calls == 0, "calls still live at the carrier"
    assert not check.overlapping_contacts, f"two calls at once to one contact: {check.overlapping_contacts}"
    assert check.max_concurrent_by_org.get(org.org_id, 0) <= org_limit, check.max_concurrent_by_org
    for b in batches:
        assert check.max_concurrent_by_batch.get(b.batch_id, 0) <= b.concurrency_limit, check.max_concurrent_by_batch
        cs = contacts(stack, org, b.name)
        by_id = {c.contact_id: c for c in cs}
        for contact_id, n in check.calls_per_contact.items():
            if contact_id in by_id:
                assert n <= by_id[contact_id].max_attempts, (contact_id, n)
                assert n == by_id[contact_id].attempts, (contact_id, n, by_id[contact_id].attempts)
        if final:
            waiting = [c for c in cs if c.status not in FINAL_STATUSES]
            assert not waiting, [(c.contact_id, res.ContactStatus.Name(c.status)) for c in waiting]
    assert wait_slots_free(stack, org.org_id) == 0, "slots leaked"
    assert wait_ended_drained(stack, org.org_id) == 0, "ended leases left without a recorded outcome"
    return check
