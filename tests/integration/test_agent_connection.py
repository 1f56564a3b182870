"""An agent's SIP connection through the real server: validation with field
violations, the digest password never returned in clear (only to the
dialer, in StartAttempt), AIP-134 updates (an empty mask changes only the
fields sent, never deactivating the agent), and the connection handed to
the dialer with each granted attempt."""

from __future__ import annotations

import itertools
import secrets

import grpc
import pytest
from batchcalls.v1 import (
    agent_service_pb2 as apb,
)
from batchcalls.v1 import (
    agent_service_pb2_grpc as agrpc,
)
from batchcalls.v1 import (
    batch_service_pb2 as bpb,
)
from batchcalls.v1 import (
    batch_service_pb2_grpc as bgrpc,
)
from batchcalls.v1 import (
    dialer_service_pb2 as dpb,
)
from batchcalls.v1 import (
    dialer_service_pb2_grpc as dgrpc,
)
from batchcalls.v1 import (
    resources_pb2 as res,
)
from google.protobuf.field_mask_pb2 import FieldMask

from tests.support.api import violations
from tests.support.drive import create_batch, list_all_contacts, service_md

_tokens = itertools.count(8_000_000 + secrets.randbelow(1_000_000))
URI_FIELD = "agent.sip_connection.uri"


def _agents(ch):
    return agrpc.AgentServiceStub(ch)


def _create(stack, org, **conn) -> res.Agent:
    with stack.channel() as ch:
        return _agents(ch).CreateAgent(apb.CreateAgentRequest(agent=res.Agent(
            display_name="SIP agent", architecture=res.AGENT_ARCHITECTURE_REALTIME, active=True,
            recording_enabled=True, sip_connection=res.AgentSipConnection(**conn),
        )), metadata=org.md()).agent


def _update(stack, org, agent: res.Agent, paths: list[str] | None = None) -> res.Agent:
    req = apb.UpdateAgentRequest(agent=agent)
    if paths is not None:
        req.update_mask.CopyFrom(FieldMask(paths=paths))
    with stack.channel() as ch:
        return _agents(ch).UpdateAgent(req, metadata=org.md()).agent


@pytest.fixture(scope="module")
def org(stack):
    return stack.new_org()


def test_connection_is_normalized_and_the_password_never_returned(stack, org) -> None:
    agent = _create(stack, org, uri="SIP:Agent@Agents.Example.COM:5080;transport=TCP", username="bc",
                    password="s3cret!", header_fields=["first_name", "account id"])
    c = agent.sip_connection
    assert c.uri == "sip:Agent@agents.example.com:5080;transport=tcp"
    assert (c.scheme, c.user, c.host, c.port, c.transport) == ("sip", "Agent", "agents.example.com", 5080, "tcp")
    assert (c.username, c.password, c.password_set) == ("bc", "", True)
    assert list(c.header_fields) == ["first_name", "account id"]
    with stack.channel() as ch:
        got = _agents(ch).GetAgent(apb.GetAgentRequest(name=agent.name), metadata=org.md("member")).agent
        listed = [a for a in _agents(ch).ListAgents(apb.ListAgentsRequest(page_size=100), metadata=org.md()).agents
                  if a.name == agent.name]
    for a in (got, listed[0]):
        assert a.sip_connection.password == "" and a.sip_connection.password_set
        assert "s3cret" not in str(a)
    sips = _create(stack, org, uri="sips:[2001:db8::1]")
    assert sips.sip_connection.uri == "sips:[2001:db8::1]:5061;transport=tls"
    plain = _create(stack, org, uri="sip:10.0.0.7")
    assert plain.sip_connection.uri == "sip:10.0.0.7:5060;transport=udp" and not plain.sip_connection.password_set


@pytest.mark.parametrize("uri", [
    "http://agent.example.com", "sip:", "sip:agent@", "sip:a@host:0", "sip:a@host:70000", "sip:a@bad_host!",
    "sip:a@-bad.example", "sip:a@999.1.1.1", "sips:a@host;transport=udp", "sip:a@host;transport=sctp",
    "sip:a@host;lr", "sip:a b@host", "sip:a@" + "h" * 300, "sip:" + "u" * 70 + "@host", "sip:a@[zz::1]",
])
def test_bad_uris_are_field_violations(stack, org, uri) -> None:
    with pytest.raises(grpc.RpcError) as err:
        _create(stack, org, uri=uri)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert URI_FIELD in violations(err.value)


def test_bounds_of_credentials_and_header_fields(stack, org) -> None:
    cases = [
        (dict(uri="sip:a@h.example", username="u" * 129), "agent.sip_connection.username"),
        (dict(uri="sip:a@h.example", password="p" * 257), "agent.sip_connection.password"),
        (dict(uri="sip:a@h.example", header_fields=[f"v{i}" for i in range(21)]), "agent.sip_connection.header_fields"),
        (dict(uri="sip:a@h.example", header_fields=["---"]), "agent.sip_connection.header_fields[0]"),
        (dict(uri="sip:a@h.example", header_fields=["ok", "x" * 65]), "agent.sip_connection.header_fields[1]"),
        (dict(uri="sip:a@h.example", header_fields=["a", "a"]), "agent.sip_connection.header_fields[1]"),
        (dict(username="only-credentials"), URI_FIELD),
    ]
    for conn, field in cases:
        with pytest.raises(grpc.RpcError) as err:
            _create(stack, org, **conn)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in violations(err.value), (field, violations(err.value))
    with pytest.raises(grpc.RpcError) as err:
        _update(stack, org, res.Agent(name=org.agent_name), ["sip_connection.port"])
    assert "update_mask" in violations(err.value)


def test_empty_mask_changes_only_the_fields_sent(stack, org) -> None:
    agent = _create(stack, org, uri="sip:agent@10.0.0.5:5080;transport=tcp", username="bc", password="pw",
                    header_fields=["first_name"])
    with stack.channel() as ch:
        pn = org.phone_number_name
        batch = bgrpc.BatchServiceStub(ch).CreateBatch(bpb.CreateBatchRequest(
            display_name="aip-134", agent=agent.name, from_phone_number=pn,
            csv_content=b"phone\n+13125550199\n", filename="c.csv",
            calling_window_mode=res.CALLING_WINDOW_MODE_NONE,
        ), metadata=org.md()).batch
    assert batch.status == res.BATCH_STATUS_RUNNING
    # Only display_name sent, no mask: nothing else changes (before, this
    # deactivated the agent and failed its batches).
    renamed = _update(stack, org, res.Agent(name=agent.name, display_name="Renamed"))
    assert renamed.display_name == "Renamed"
    assert renamed.active and renamed.recording_enabled
    assert renamed.architecture == res.AGENT_ARCHITECTURE_REALTIME
    assert renamed.sip_connection.uri == agent.sip_connection.uri and renamed.sip_connection.password_set
    with stack.channel() as ch:
        assert bgrpc.BatchServiceStub(ch).GetBatch(bpb.GetBatchRequest(name=batch.name), metadata=org.md()
                                                   ).batch.status == res.BATCH_STATUS_RUNNING
    # A sent connection part changes that part; the stored password stays.
    moved = _update(stack, org, res.Agent(name=agent.name, sip_connection=res.AgentSipConnection(uri="sip:agent@10.0.0.6")))
    assert moved.sip_connection.host == "10.0.0.6" and moved.sip_connection.password_set
    assert moved.sip_connection.username == "bc" and list(moved.sip_connection.header_fields) == ["first_name"]
    # Named in the mask, an empty value clears: the password…
    cleared = _update(stack, org, res.Agent(name=agent.name), ["sip_connection.password"])
    assert not cleared.sip_connection.password_set and cleared.sip_connection.username == "bc"
    # …and "sip_connection" replaces the whole connection.
    whole = _update(stack, org, res.Agent(name=agent.name, sip_connection=res.AgentSipConnection(
        uri="sip:other@10.0.0.9", password="new")), ["sip_connection"])
    assert whole.sip_connection.username == "" and whole.sip_connection.password_set
    assert list(whole.sip_connection.header_fields) == []
    # An explicit mask can still deactivate (and that fails its batches).
    off = _update(stack, org, res.Agent(name=agent.name, active=False), ["active"])
    assert not off.active
    with stack.channel() as ch:
        assert bgrpc.BatchServiceStub(ch).GetBatch(bpb.GetBatchRequest(name=batch.name), metadata=org.md()
                                                   ).batch.status == res.BATCH_STATUS_FAILED
    # Bad values in an update are field violations too.
    with pytest.raises(grpc.RpcError) as err:
        _update(stack, org, res.Agent(name=agent.name, sip_connection=res.AgentSipConnection(uri="sip:a@h:99999")))
    assert URI_FIELD in violations(err.value)


def test_the_dialer_gets_the_connection_with_each_grant(stack, org) -> None:
    agent = _create(stack, org, uri="sip:agent@10.0.0.5:5080;transport=tcp", username="bc", password="pw",
                    header_fields=["first_name", "*"])
    with stack.channel() as ch:
        batch = bgrpc.BatchServiceStub(ch).CreateBatch(bpb.CreateBatchRequest(
            display_name="grant", agent=agent.name, from_phone_number=org.phone_number_name,
            csv_content=b"phone,first_name\n+13125550198,Ada\n", filename="c.csv",
            calling_window_mode=res.CALLING_WINDOW_MODE_NONE,
        ), metadata=org.md()).batch
        contact = list_all_contacts(bgrpc.BatchServiceStub(ch), org, batch.batch_id)[0]
    with stack.internal_channel() as ch:
        resp = dgrpc.DialerServiceStub(ch).StartAttempt(dpb.StartAttemptRequest(
            organization_id=org.org_id, batch_id=batch.batch_id, contact_id=contact.contact_id,
            fencing_token=next(_tokens), lease_id="lease-agent", dialer_id="agent-test", provider_call_id="call-agent",
        ), metadata=service_md(stack))
    assert resp.decision == dpb.START_ATTEMPT_DECISION_GRANTED
    c = resp.agent_sip_connection
    assert (c.host, c.port, c.transport, c.user, c.scheme) == ("10.0.0.5", 5080, "tcp", "agent", "sip")
    assert (c.username, c.password) == ("bc", "pw")  # internal API: in clear, as the trunk password
    assert list(c.header_fields) == ["first_name", "*"]
    assert dict(resp.variables) == {"first_name": "Ada"}
    # The org's default agent has no connection: the field is unset.
    default_batch = create_batch(stack, org, "phone\n+13125550197\n")
    with stack.channel() as ch:
        cid = list_all_contacts(bgrpc.BatchServiceStub(ch), org, default_batch.batch_id)[0].contact_id
    with stack.internal_channel() as ch:
        plain = dgrpc.DialerServiceStub(ch).StartAttempt(dpb.StartAttemptRequest(
            organization_id=org.org_id, batch_id=default_batch.batch_id, contact_id=cid,
            fencing_token=next(_tokens), lease_id="lease-plain", dialer_id="agent-test", provider_call_id="call-plain",
        ), metadata=service_md(stack))
    assert plain.decision == dpb.START_ATTEMPT_DECISION_GRANTED and not plain.HasField("agent_sip_connection")
