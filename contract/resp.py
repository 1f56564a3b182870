"""Commands in the Redis protocol (RESP2 request encoding), packed in one go.

redis-py's ``Connection.pack_commands`` re-joins a growing buffer for every
argument and runs each through its ``Encoder``: in the dialer, whose
``ScriptBatcher`` sends some eight script calls and commands per call, it
was the largest single piece of the Redis client's Python work. This packs
a whole pipeline with one ``join``, encoding arguments as redis-py does:
bytes as they are, str as UTF-8, int and float by ``repr``; bool and other
types are refused (redis-py refuses them too).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["pack_commands"]


def _arg(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool) or not isinstance(value, (int, float, bytearray, memoryview)):
        raise TypeError(f"cannot send {type(value).__name__} to Redis: convert to bytes, str, int or float first")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return repr(value).encode()


def pack_commands(commands: Iterable[Sequence[Any]]) -> bytes:
    """``*<n>\\r\\n$<len>\\r\\n<arg>\\r\\n...`` for every command, concatenated."""
    parts: list[bytes] = []
    for command in commands:
        parts.append(b"*%d\r\n" % len(command))
        for value in command:
            raw = _arg(value)
            parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)
