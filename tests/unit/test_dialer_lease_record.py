"""contract.lease: LEASE_FIELDS names every field the Lua scripts write."""

from __future__ import annotations

import re
from pathlib import Path

from contract.lease import LEASE_FIELDS, LeaseRecord

LUA = Path(__file__).resolve().parents[2] / "contract" / "lua"


def hset_fields(text: str) -> set[str]:
    """Field names of every HSET in a Lua script: the quoted words in the
    field positions of ``redis.call('HSET', key, 'field', value, ...)``."""
    fields: set[str] = set()
    for call in re.finditer(r"redis\.call\('HSET',\s*([^)]*)\)", text, re.DOTALL):
        args = [a.strip() for a in call.group(1).split(",")]
        fields.update(a.strip("'") for a in args[1::2] if a.startswith("'"))
    return fields


def test_lease_fields_name_every_field_a_lease_script_writes() -> None:
    lease_scripts = ["claim.lua", "attach.lua", "lib_activate.lua", "end_call.lua"]
    written = set().union(*(hset_fields((LUA / name).read_text()) for name in lease_scripts))
    assert written == set(LEASE_FIELDS) - {"restored"}
    assert len(LEASE_FIELDS) == len(set(LEASE_FIELDS))


def test_the_hset_parser_reads_claim_lua() -> None:
    assert hset_fields((LUA / "claim.lua").read_text()) == set(LEASE_FIELDS[:8])


def test_a_lease_record_reads_its_fields() -> None:
    rec = LeaseRecord("o", "l", 5, {"batch": "b", "token": "3", "claimed_ms": "10", "ended_ms": "20"})
    assert (rec.batch_id, rec.fencing_token, rec.started_ms, rec.ended_ms, rec.attempt_id) == ("b", 3, 10, 20, "")


def test_the_servers_restored_lease_writes_only_lease_fields() -> None:
    from server.adapters.redis.state import InflightLease, RedisState

    lease = InflightLease(lease_id="l", batch_id="b", contact_id="c", attempt_id="a", fencing_token=1,
                          dialer_id="d", provider_call_id="p", started_at=1.0, max_call_seconds=60, trunk_json="{}")
    restored = RedisState._lease_fields(lease)
    assert set(restored[0::2]) <= set(LEASE_FIELDS)
