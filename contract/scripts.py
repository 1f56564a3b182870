"""The Lua scripts of batchcalls, loaded from ``lua/*.lua``.

Each script lives in its own file with a KEYS/ARGV header comment. They are
registered with redis-py's ``register_script``: the SHA1 is computed once,
calls go out as ``EVALSHA``, and a ``NOSCRIPT`` reply (a restarted or
flushed server, ``SCRIPT FLUSH``, another node) makes redis-py load the
script and retry. Inside a pipeline redis-py loads missing scripts before
executing it.

Compatibility: Redis 6.2 and 7.x (no functions, no 7-only commands). Every
multi-key script touches keys of one organization only (hash tag
``{org_id}``), so they also run on Redis Cluster.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

#: Names of the scripts (file stems in ``lua/``).
SCRIPT_NAMES = (
    "claim",
    "activate",
    "attach",
    "end_call",
    "renew",
    "release",
    "restore_lease",
    "org_marker",
    "fence_floor",
    "ring_add",
    "deactivate",
    "set_if_exists",
    "set_if_unchanged",
    "unlock",
    "pace",
    "pushback",
    "pace_ok",
    "rate_limit",
)


INCLUDE = "-- #include "


def _read(file_name: str) -> str:
    return resources.files(__package__).joinpath("lua", file_name).read_text(encoding="utf-8")


@cache
def source(name: str) -> str:
    """The Lua source of script ``name``, with its ``-- #include lib_….lua``
    lines replaced by those files (a rule two scripts share is written once;
    Redis scripts cannot load code of their own)."""
    if name not in SCRIPT_NAMES:
        raise KeyError(f"unknown Lua script {name!r}")
    lines = []
    for line in _read(f"{name}.lua").splitlines(keepends=True):
        if line.startswith(INCLUDE):
            included = line[len(INCLUDE):].strip()
            if not (included.startswith("lib_") and included.endswith(".lua")):
                raise ValueError(f"{name}.lua includes {included!r}: only lib_*.lua files may be included")
            lines.append(_read(included))
        else:
            lines.append(line)
    return "".join(lines)


class Scripts:
    """The registered scripts of one redis client (``redis.asyncio.Redis`` or
    ``RedisCluster``), as attributes: ``scripts.claim(keys=[...], args=[...])``.

    Pass ``client=pipeline`` to queue a call in a pipeline.
    """

    def __init__(self, redis: Any) -> None:
        self._redis = redis
        for name in SCRIPT_NAMES:
            setattr(self, name, redis.register_script(source(name)))

    # Attribute annotations for type checkers.
    claim: Any
    activate: Any
    attach: Any
    end_call: Any
    renew: Any
    release: Any
    restore_lease: Any
    org_marker: Any
    fence_floor: Any
    ring_add: Any
    deactivate: Any
    set_if_exists: Any
    set_if_unchanged: Any
    unlock: Any
    pace: Any
    pushback: Any
    pace_ok: Any
    rate_limit: Any

    async def load_all(self) -> None:
        """SCRIPT LOAD every script now (optional; EVALSHA loads lazily)."""
        for name in SCRIPT_NAMES:
            script = getattr(self, name)
            script.sha = await self._redis.script_load(script.script)
