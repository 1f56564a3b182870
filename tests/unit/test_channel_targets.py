"""Several server addresses in one channel (contract/channels.py): the
target rule, and a real channel failing over between two gRPC servers and
reconnecting within about a second of a server answering again."""

from __future__ import annotations

import asyncio
import json
import time

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from contract.channels import (
    ChannelConfigError,
    ClientTLS,
    channel_args,
    open_aio_channel,
    resolve_target,
)
from tests.support.helpers import free_port


def test_targets():
    assert resolve_target("127.0.0.1:50052").target == "127.0.0.1:50052"
    assert not resolve_target("server:50052").balanced
    t = resolve_target(" 127.0.0.1:5001, 10.0.0.2:5002 ")
    assert t.target == "ipv4:127.0.0.1:5001,10.0.0.2:5002" and t.balanced and t.tls_name == "127.0.0.1"
    assert resolve_target("[::1]:5001,[::2]:5002").target == "ipv6:[::1]:5001,[::2]:5002"
    assert resolve_target("dns:///servers:50052").balanced
    assert resolve_target("ipv4:127.0.0.1:1,127.0.0.1:2").balanced
    assert not resolve_target("unix:///tmp/s.sock").balanced
    for bad in ("server-1:50052,server-2:50052", "127.0.0.1:1,[::1]:2", "127.0.0.1:1,", "127.0.0.1,127.0.0.2", ""):
        with pytest.raises(ChannelConfigError):
            resolve_target(bad)


def test_channel_args():
    target, opts = channel_args("127.0.0.1:1,127.0.0.1:2", [("grpc.max_reconnect_backoff_ms", 300)], tls=ClientTLS())
    o = dict(opts)
    assert target == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert json.loads(o["grpc.service_config"]) == {"loadBalancingConfig": [{"round_robin": {}}]}
    assert o["grpc.initial_reconnect_backoff_ms"] == 100 and o["grpc.max_reconnect_backoff_ms"] == 300
    _, opts = channel_args("127.0.0.1:1", tls=ClientTLS())
    assert "grpc.service_config" not in dict(opts) and dict(opts)["grpc.max_reconnect_backoff_ms"] == 250
    # TLS: a list is checked against BATCHCALLS_TLS_SERVER_NAME, else its first host.
    assert dict(channel_args("10.0.0.1:1,10.0.0.2:1", tls=ClientTLS(True))[1])[
        "grpc.ssl_target_name_override"] == "10.0.0.1"
    assert dict(channel_args("10.0.0.1:1,10.0.0.2:1", tls=ClientTLS(True, server_name="servers"))[1])[
        "grpc.ssl_target_name_override"] == "servers"


async def _serve(port: int) -> grpc.aio.Server:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server


def test_failover_and_reconnect_within_a_second():
    async def scenario() -> None:
        p1, p2 = free_port(), free_port()
        s1, s2 = await _serve(p1), await _serve(p2)
        ch = open_aio_channel(f"127.0.0.1:{p1},127.0.0.1:{p2}", tls=ClientTLS())
        stub = health_pb2_grpc.HealthStub(ch)

        async def check(**kw) -> None:
            await stub.Check(health_pb2.HealthCheckRequest(), timeout=5, **kw)

        try:
            for _ in range(4):
                await check()
            await s1.stop(None)  # one replica dies: the other answers
            failures = 0
            for _ in range(20):
                try:
                    await check()
                except grpc.aio.AioRpcError:
                    failures += 1
            assert failures <= 1, failures
            await s2.stop(None)  # none left, for 3 s: back-off grows to its cap
            await asyncio.sleep(3)
            s1 = await _serve(p1)
            t0 = time.monotonic()
            await check(wait_for_ready=True)
            gap = time.monotonic() - t0
            print(f"\nanswered {gap:.3f}s after a server came back")
            assert gap < 1.0
        finally:
            await ch.close()
            await s1.stop(None)
            await s2.stop(None)

    asyncio.run(scenario())


def test_dns_target_round_robin():
    async def scenario() -> None:
        port = free_port()
        server = await _serve(port)
        ch = open_aio_channel(f"dns:///localhost:{port}", tls=ClientTLS())
        try:
            resp = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5,
                                                              wait_for_ready=True)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING
        finally:
            await ch.close()
            await server.stop(None)

    asyncio.run(scenario())


def test_dialer_refuses_host_names_in_a_list(monkeypatch, capsys):
    from dialer.__main__ import main

    monkeypatch.setenv("BATCHCALLS_SERVER_ADDR", "server-1:50052,server-2:50052")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "BATCHCALLS_SERVER_ADDR" in err and "dns:///" in err
