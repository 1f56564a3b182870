"""end_call.lua names three keys its caller cannot pass (those of another
dialer's waiting reservation): it derives them from the org prefix of its
KEYS[1]. They must be exactly the names contract.keys gives, or the hand-off
would read empty hashes and skip every waiting reservation."""

from __future__ import annotations

from contract import keys
from contract.scripts import source


def derive(org_leases_key: str, lease: str, batch: str) -> tuple[str, str, str]:
    """What end_call.lua computes, in Python (same string operations)."""
    prefix = org_leases_key[: len(org_leases_key) - len("leases")]
    return prefix + "lease:" + lease, prefix + "batch:" + batch + ":meta", prefix + "batch:" + batch + ":leases"


def test_derived_names_are_those_of_contract_keys():
    org, lease, batch = "org_0123456789", "0f0e0d0c0b0a", "bat_42"
    info, meta, batch_leases = derive(keys.org_leases(org), lease, batch)
    assert info == keys.lease_info(org, lease)
    assert meta == keys.batch_meta(org, batch)
    assert batch_leases == keys.batch_leases(org, batch)


def test_end_call_lua_derives_them_the_same_way():
    lua = source("end_call")
    assert "string.sub(KEYS[1], 1, #KEYS[1] - #'leases')" in lua
    assert "org_prefix .. 'lease:' .. lease" in lua
    assert "org_prefix .. 'batch:' .. batch .. ':meta'" in lua
    assert "org_prefix .. 'batch:' .. batch .. ':leases'" in lua
