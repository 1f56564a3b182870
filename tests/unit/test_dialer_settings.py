import pytest

from dialer.settings import DialerSettings, SettingsError


def test_defaults_from_empty_env():
    s = DialerSettings.from_env({})
    assert s.server_addr == "127.0.0.1:50052"  # the server's internal listener
    assert s.lease_ttl_seconds == 10.0
    assert s.heartbeat_seconds == pytest.approx(10.0 / 3)
    assert s.ring_timeout_seconds == 30.0
    assert s.metrics_port == 9102
    assert s.metrics_host == "127.0.0.1"
    assert s.poll_seconds == 0.05
    assert s.dial_grace_seconds == 1.0
    assert s.dialer_id  # hostname-pid
    assert s.redis_url.startswith("redis://")


def test_env_overrides_and_heartbeat_follows_ttl():
    s = DialerSettings.from_env({
        "BATCHCALLS_SERVER_ADDR": "server:1", "BATCHCALLS_SERVICE_TOKEN": "t", "REDIS_URL": "unix:///tmp/r.sock",
        "BATCHCALLS_SIMCARRIER_URL": "http://127.0.0.1:9", "BATCHCALLS_DIALER_ID": "d7",
        "BATCHCALLS_LEASE_TTL_SECONDS": "3", "BATCHCALLS_DIALER_METRICS_PORT": "0",
        "BATCHCALLS_POLL_SECONDS": "0.01", "BATCHCALLS_DIAL_GRACE_SECONDS": "2.5",
        "BATCHCALLS_RING_TIMEOUT_SECONDS": "20", "BATCHCALLS_DRAIN_TIMEOUT_SECONDS": "7",
    })
    assert (s.server_addr, s.service_token, s.redis_url, s.dialer_id) == ("server:1", "t", "unix:///tmp/r.sock", "d7")
    assert s.lease_ttl_ms == 3000 and s.heartbeat_seconds == 1.0
    assert s.metrics_port == 0 and s.poll_seconds == 0.01 and s.dial_grace_seconds == 2.5
    assert s.ring_timeout_seconds == 20 and s.drain_timeout_seconds == 7


@pytest.mark.parametrize("env", [
    {"BATCHCALLS_LEASE_TTL_SECONDS": "abc"},
    {"BATCHCALLS_LEASE_TTL_SECONDS": "5", "BATCHCALLS_HEARTBEAT_SECONDS": "6"},
    {"BATCHCALLS_DIALER_METRICS_PORT": "-1"},
])
def test_bad_values_are_refused(env):
    with pytest.raises(SettingsError):
        DialerSettings.from_env(env)
