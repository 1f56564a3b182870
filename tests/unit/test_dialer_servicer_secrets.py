"""A trunk password no configured key decrypts never fails a StartAttempt
response (the attempts in it are already granted): the trunk goes out
without it and the server logs why."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from cryptography.fernet import Fernet

from server.adapters.secrets import box_for
from server.api import dialer_servicer


def test_unreadable_trunk_password_is_sent_empty_and_logged(monkeypatch, caplog) -> None:
    sealed = box_for(Fernet.generate_key().decode()).seal("s3cret")
    other = box_for(Fernet.generate_key().decode())
    msg = SimpleNamespace(outbound_trunk=dialer_servicer.res.OutboundTrunk(host="sip.example.com"))
    monkeypatch.setattr(dialer_servicer.convert, "phone_number_msg", lambda number: msg)
    number = SimpleNamespace(id="pn_1", trunk_password=sealed)
    with caplog.at_level(logging.ERROR, logger="server.api.dialer_servicer"):
        trunk = dialer_servicer._trunk(number, other)
    assert trunk.host == "sip.example.com" and trunk.password == ""
    assert "pn_1" in caplog.text and "unreadable" in caplog.text


def test_readable_trunk_password_is_sent(monkeypatch) -> None:
    key = Fernet.generate_key().decode()
    msg = SimpleNamespace(outbound_trunk=dialer_servicer.res.OutboundTrunk(host="sip.example.com"))
    monkeypatch.setattr(dialer_servicer.convert, "phone_number_msg", lambda number: msg)
    trunk = dialer_servicer._trunk(SimpleNamespace(id="pn_1", trunk_password=box_for(key).seal("s3cret")), box_for(key))
    assert trunk.password == "s3cret"
