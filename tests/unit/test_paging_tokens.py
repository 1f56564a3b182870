"""Page tokens are opaque and tamper-evident (issue 14 item 3);
server/api/bounds.py refuses what no use case should see."""

from __future__ import annotations

import base64
import json

import pytest

from batchcalls.v1 import dialer_service_pb2 as dpb, organization_service_pb2 as opb
from server.api import bounds
from server.domain.errors import InvalidArgument
from server.domain.paging import decode_token, encode_token
from server.service.page_keys import page_token_key
from server.settings import Settings

KEY = b"k" * 32


def test_round_trip_and_fingerprint() -> None:
    token = encode_token({"a": 7}, "fp1", KEY)
    assert decode_token(token, "fp1", KEY) == {"a": 7}
    assert decode_token("", "fp1", KEY) is None
    with pytest.raises(InvalidArgument) as err:
        decode_token(token, "fp2", KEY)
    assert "different filters" in err.value.violations[0].description


@pytest.mark.parametrize("token", [
    "x", "!!!!", "\u0661\u0662", "a" * 513,
    base64.urlsafe_b64encode(json.dumps({"p": {"a": 1}, "f": "fp1"}).encode()).decode(),  # unsigned
])
def test_anything_not_issued_is_refused(token: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        decode_token(token, "fp1", KEY)
    assert [(v.field, v.description) for v in err.value.violations] == [("page_token", "not a token this API issued")]


def test_every_flipped_bit_is_caught_and_another_key_refuses() -> None:
    token = encode_token({"a": 7}, "fp1", KEY)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x10
        with pytest.raises(InvalidArgument):
            decode_token(base64.urlsafe_b64encode(bytes(bad)).decode().rstrip("="), "fp1", KEY)
    with pytest.raises(InvalidArgument):
        decode_token(token, "fp1", b"other" * 8)


def test_key_from_settings_shared_by_replicas() -> None:
    a, b = Settings(service_token="t" * 40), Settings(service_token="t" * 40)
    assert page_token_key(a) == page_token_key(b) != ("t" * 40).encode()
    assert page_token_key(Settings(service_token="t" * 40, page_token_key="p" * 40)) != page_token_key(a)
    assert page_token_key(Settings()) == page_token_key(Settings())  # per process without secrets
    assert Settings.from_env({"BATCHCALLS_PAGE_TOKEN_KEY": "abc"}).page_token_key == "abc"


def test_bounds_walk() -> None:
    ok = opb.AddDoNotCallNumbersRequest(phone_numbers=["+12125550101"], reason="r" * 500)
    assert bounds.violations(ok) == []
    bad = opb.AddDoNotCallNumbersRequest(phone_numbers=["+1", "x" * 65], reason="r" * 501)
    assert {v.field for v in bounds.violations(bad)} == {"phone_numbers[1]", "reason"}
    many = dpb.BatchFinishAttemptsRequest(requests=[dpb.FinishAttemptRequest(duration_seconds=float("nan"))] * 30)
    found = bounds.violations(many)
    assert len(found) == bounds.MAX_VIOLATIONS and found[0].field == "requests[0].duration_seconds"
    with pytest.raises(InvalidArgument):
        bounds.check_request(many)
