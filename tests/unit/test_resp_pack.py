"""contract.resp.pack_commands packs exactly what redis-py would send."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection

from contract.resp import pack_commands


def redis_py(commands) -> bytes:
    conn = Connection()
    return b"".join(bytes(chunk) for chunk in conn.pack_commands(commands))


def test_same_bytes_as_redis_py() -> None:
    commands = [
        ("EVALSHA", "ab" * 20, 3, "bc:{org_1}:leases", "bc:{org_1}:lease:x", b"raw\r\nbytes", 1_700_000_000_123,
         "-5", 2.5, "ünïcödé", ""),
        ("HGET", "bc:{org_1}:trunk:+14155550100:pace", "until"),
        ("LMOVE", "k", "k", "LEFT", "RIGHT"),
        ("ZADD", "z", 1e15, "m" * 70_000),  # past redis-py's buffer cutoff
    ]
    assert pack_commands(commands) == redis_py(commands)
    assert pack_commands([]) == b""


@pytest.mark.parametrize("bad", [True, None, object(), ["list"]])
def test_refuses_what_redis_py_refuses(bad) -> None:
    with pytest.raises(TypeError):
        pack_commands([("SET", "k", bad)])
