"""Secrets at rest (issue 14, item 5), through the real server: trunk and
agent passwords are ciphertext in Postgres, never returned by the public
API, decrypted only into StartAttempt, never in the lease JSON that goes to
Redis; MultiFernet rotation reads old values; legacy plaintext is read and
encrypted on the next write; `batchcalls server` refuses to start without a
key; server log lines mask numbers; SQLAlchemy hides parameters."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import subprocess
import sys
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, Iterator

import grpc
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from batchcalls.v1 import (
    agent_service_pb2 as agent_pb2,
    agent_service_pb2_grpc as agent_grpc,
    batch_service_pb2 as bpb,
    dialer_service_pb2 as dpb,
    dialer_service_pb2_grpc as dgrpc,
    phone_number_service_pb2 as pn_pb2,
    phone_number_service_pb2_grpc as pn_grpc,
    resources_pb2 as res,
)
from server.adapters.db.schema import agents, phone_numbers
from server.adapters.secrets import PREFIX, SecretBox
from tests.support.api import stub
from tests.support.dialing import wait_status
from tests.support.drive import list_all_contacts, service_md
from tests.support.stack import ROOT, TEST_SECRETS_KEY

TRUNK_PW = "trunk-pw-" + secrets.token_hex(6)
AGENT_PW = "agent-pw-" + secrets.token_hex(6)


@contextmanager
def settings_changed(stack: Any, **changes: Any) -> Iterator[None]:
    before = stack.ctx.settings
    stack.ctx.settings = dataclasses.replace(before, **changes)
    try:
        yield
    finally:
        stack.ctx.settings = before


def _row(stack: Any, table: Any, row_id: str) -> Any:
    async def q() -> Any:
        async with stack.ctx.engine.connect() as conn:
            return (await conn.execute(select(table).where(table.c.id == row_id))).one()

    return stack.run(q())


def _set(stack: Any, table: Any, row_id: str, **values: Any) -> None:
    async def q() -> None:
        async with stack.ctx.engine.begin() as conn:
            await conn.execute(update(table).where(table.c.id == row_id).values(**values))

    stack.run(q())


def _sip_number(stack: Any, org: Any, password: str = TRUNK_PW) -> res.PhoneNumber:
    with stack.channel() as ch:
        return pn_grpc.PhoneNumberServiceStub(ch).CreatePhoneNumber(
            pn_pb2.CreatePhoneNumberRequest(phone_number=res.PhoneNumber(
                phone_number=f"+1415555{secrets.randbelow(9000) + 1000:04d}", display_name="sip caller",
                outbound_trunk=res.OutboundTrunk(kind=res.TRUNK_KIND_SIP, host="sip.example.com", port=5060,
                                                 username="trunk-user", password=password,
                                                 calls_per_second=1000.0),
            )),
            metadata=org.md(),
        ).phone_number


def _sip_agent(stack: Any, org: Any) -> res.Agent:
    with stack.channel() as ch:
        return agent_grpc.AgentServiceStub(ch).CreateAgent(
            agent_pb2.CreateAgentRequest(agent=res.Agent(
                display_name="sip agent", architecture=res.AGENT_ARCHITECTURE_PIPELINE, active=True,
                sip_connection=res.AgentSipConnection(uri="sip:bot@agent.example.com:5080;transport=tcp",
                                                      username="agent-user", password=AGENT_PW),
            )),
            metadata=org.md(),
        ).agent


def test_passwords_are_ciphertext_at_rest_and_never_returned(stack, org):
    number = _sip_number(stack, org)
    agent = _sip_agent(stack, org)
    pn_row = _row(stack, phone_numbers, number.phone_number_id)
    agent_row = _row(stack, agents, agent.agent_id)
    for stored, plain in ((pn_row.trunk_password, TRUNK_PW), (agent_row.sip_password, AGENT_PW)):
        assert stored.startswith(PREFIX) and plain not in stored
        assert Fernet(TEST_SECRETS_KEY.encode()).decrypt(stored[len(PREFIX):].encode()).decode() == plain

    with stack.channel() as ch:
        pns = pn_grpc.PhoneNumberServiceStub(ch)
        agents_stub = agent_grpc.AgentServiceStub(ch)
        answers = [
            number,
            pns.GetPhoneNumber(pn_pb2.GetPhoneNumberRequest(name=number.name), metadata=org.md()),
            pns.ListPhoneNumbers(pn_pb2.ListPhoneNumbersRequest(page_size=100), metadata=org.md()),
            agent,
            agents_stub.GetAgent(agent_pb2.GetAgentRequest(name=agent.name), metadata=org.md()),
            agents_stub.ListAgents(agent_pb2.ListAgentsRequest(page_size=100), metadata=org.md()),
        ]
    for answer in answers:
        wire = answer.SerializeToString()
        assert TRUNK_PW.encode() not in wire and AGENT_PW.encode() not in wire and PREFIX.encode() not in wire
    got = answers[1].phone_number.outbound_trunk
    assert got.password == "" and got.password_set
    assert answers[4].agent.sip_connection.password == "" and answers[4].agent.sip_connection.password_set


def _granted(stack: Any, org: Any, number: res.PhoneNumber, agent: res.Agent) -> tuple[Any, dpb.StartAttemptResponse, int]:
    """A running batch on the SIP trunk and agent, and one granted attempt."""
    with stack.channel() as ch:
        batch = stub(ch).CreateBatch(bpb.CreateBatchRequest(
            display_name="secrets", agent=agent.name, from_phone_number=number.name,
            csv_content=b"phone,name\n+14155552671,Ann\n", filename="c.csv",
            calling_window_mode=res.CALLING_WINDOW_MODE_NONE,
        ), metadata=org.md()).batch
    wait_status(stack, org, batch.name, {res.BATCH_STATUS_RUNNING}, timeout=30)
    with stack.channel() as ch:
        contact = list_all_contacts(stub(ch), org, batch.batch_id)[0]
    token = 10_000 + secrets.randbelow(10_000)
    with stack.internal_channel() as ch:
        resp = dgrpc.DialerServiceStub(ch).StartAttempt(dpb.StartAttemptRequest(
            organization_id=org.org_id, batch_id=batch.batch_id, contact_id=contact.contact_id,
            fencing_token=token, lease_id=f"lease-{secrets.token_hex(6)}", dialer_id="test-secrets",
            provider_call_id=f"call-{secrets.token_hex(6)}",
        ), metadata=service_md(stack))
    assert resp.decision == dpb.START_ATTEMPT_DECISION_GRANTED, resp.reason
    return batch, resp, token


def _finish(stack: Any, resp: dpb.StartAttemptResponse, token: int) -> None:
    with stack.internal_channel() as ch:
        dgrpc.DialerServiceStub(ch).FinishAttempt(dpb.FinishAttemptRequest(
            attempt_id=resp.attempt_id, fencing_token=token, outcome=res.CALL_OUTCOME_NO_ANSWER,
            closed_by="test-secrets"), metadata=service_md(stack))


def test_start_attempt_decrypts_and_the_lease_json_has_no_password(stack, org):
    from dialer.call import CallSteps
    from server.service.background import snapshot

    number, agent = _sip_number(stack, org), _sip_agent(stack, org)
    batch, resp, token = _granted(stack, org, number, agent)
    try:
        # The internal API is the one place the passwords are decrypted.
        assert resp.outbound_trunk.password == TRUNK_PW
        assert resp.agent_sip_connection.password == AGENT_PW
        # What the dialer records on the lease (attach.lua's trunk field) ...
        trunk, trunk_json = CallSteps._trunk(SimpleNamespace(_trunks={}), resp.outbound_trunk)
        assert trunk.password == TRUNK_PW  # the dialer itself dials with it
        assert TRUNK_PW not in trunk_json and json.loads(trunk_json)["password"] == ""
        assert json.loads(trunk_json)["host"] == "sip.example.com"
        # ... and what the reconciler writes into Redis when it rebuilds leases.
        leases = [lease for o in stack.run(snapshot(stack.ctx)) if o.org_id == org.org_id
                  for b in o.running for lease in b.inflight]
        mine = [lease for lease in leases if lease.attempt_id == resp.attempt_id]
        assert mine and all(TRUNK_PW not in lease.trunk_json and PREFIX not in lease.trunk_json for lease in mine)
        assert json.loads(mine[0].trunk_json)["username"] == "trunk-user"
    finally:
        _finish(stack, resp, token)


def test_rotation_reads_old_values_and_legacy_plaintext_is_encrypted_on_write(stack, org):
    number, agent = _sip_number(stack, org), _sip_agent(stack, org)
    old_stored = _row(stack, phone_numbers, number.phone_number_id).trunk_password
    new_key = Fernet.generate_key().decode()
    rotated = f"{new_key},{TEST_SECRETS_KEY}"
    with settings_changed(stack, secrets_key=rotated):
        # Written under the old key, read under [new, old].
        batch, resp, token = _granted(stack, org, number, agent)
        assert resp.outbound_trunk.password == TRUNK_PW and resp.agent_sip_connection.password == AGENT_PW
        _finish(stack, resp, token)
        # A write of the row re-encrypts under the new key.
        with stack.channel() as ch:
            pn_grpc.PhoneNumberServiceStub(ch).UpdatePhoneNumber(pn_pb2.UpdatePhoneNumberRequest(
                phone_number=res.PhoneNumber(name=number.name, display_name="renamed")), metadata=org.md())
        stored = _row(stack, phone_numbers, number.phone_number_id).trunk_password
        assert stored != old_stored and stored.startswith(PREFIX)
        assert SecretBox(new_key).open(stored) == TRUNK_PW
    with pytest.raises(Exception):
        SecretBox(TEST_SECRETS_KEY).open(stored)  # only the new key reads it now

    # Legacy plaintext (written before encryption existed): read as is, then
    # encrypted on the row's next write.
    _set(stack, agents, agent.agent_id, sip_password="legacy-agent-pw")
    assert SecretBox(TEST_SECRETS_KEY).open("legacy-agent-pw") == "legacy-agent-pw"
    with stack.channel() as ch:
        got = agent_grpc.AgentServiceStub(ch).UpdateAgent(agent_pb2.UpdateAgentRequest(
            agent=res.Agent(name=agent.name, display_name="renamed agent")), metadata=org.md()).agent
    assert got.sip_connection.password_set and got.sip_connection.password == ""
    stored = _row(stack, agents, agent.agent_id).sip_password
    assert stored.startswith(PREFIX) and "legacy-agent-pw" not in stored
    assert SecretBox(TEST_SECRETS_KEY).open(stored) == "legacy-agent-pw"


def _server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHCALLS_")}
    env.update(DATABASE_URL="postgresql://nowhere/none", REDIS_URL="redis://127.0.0.1:1/0",
               BATCHCALLS_SERVICE_TOKEN=secrets.token_urlsafe(32), BATCHCALLS_AUTO_MIGRATE="0", **extra)
    return env


@pytest.mark.parametrize("key, says", [
    (None, "BATCHCALLS_SECRETS_KEY is not set"),
    ("not-a-fernet-key", "not a comma-separated list of Fernet keys"),
])
def test_server_refuses_to_start_without_a_secrets_key(key, says):
    env = _server_env(**({} if key is None else {"BATCHCALLS_SECRETS_KEY": key}))
    proc = subprocess.run([sys.executable, "-m", "launcher.cli", "server"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and says in lines[0], proc.stderr


def test_embedded_up_generates_and_keeps_a_key(tmp_path):
    from launcher.devstack import ensure_secrets_key
    from server.adapters.secrets import secrets_key_problem

    key = ensure_secrets_key(tmp_path)
    assert secrets_key_problem(key) is None
    assert ensure_secrets_key(tmp_path) == key
    assert (tmp_path / "secrets-key").stat().st_mode & 0o077 == 0


def test_server_log_lines_mask_numbers(stack, caplog):
    """The server process masks every record (server/log_masking.py,
    installed by create_server), whichever logger writes it."""
    caplog.set_level(logging.INFO)
    for name in ("server.service.results", "sqlalchemy.engine", "grpc"):
        logging.getLogger(name).warning("calling %s from %s", "+14155552671", "+12025550123")
    try:
        raise ValueError("bad number +14155552671")
    except ValueError:
        logging.getLogger("server.api.errors").exception("unexpected error for %s", "+14155552671")
    text = caplog.text
    assert "+14155552671" not in text and "+12025550123" not in text
    assert "+1415555••71" in text and "+1202555••23" in text
    for record in caplog.records:
        assert "+14155552671" not in record.getMessage()


def test_engine_hides_statement_parameters(stack):
    assert stack.ctx.engine.sync_engine.hide_parameters is True
