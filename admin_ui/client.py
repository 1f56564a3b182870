"""Thin typed gRPC client of the batchcalls.v1 API used by the admin UI.

One method per RPC the UI uses. Every call sends the API key as
``authorization: Bearer <key>`` metadata. Every gRPC error is converted to an
:class:`ApiError` carrying the canonical code, the server's message, the
``google.rpc.BadRequest`` field violations and the ``google.rpc.ErrorInfo``
reason, so pages can show a readable message instead of a traceback.

This module imports only the generated stubs and contract.channels (the one
channel rule, TLS when configured): never server, dialer or database code.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from google.protobuf import field_mask_pb2, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from batchcalls.v1 import (
    agent_service_pb2,
    agent_service_pb2_grpc,
    batch_pb2,
    batch_service_pb2,
    batch_service_pb2_grpc,
    organization_service_pb2,
    organization_service_pb2_grpc,
    phone_number_service_pb2,
    phone_number_service_pb2_grpc,
    resources_pb2,
)
from contract.channels import open_channel

DEFAULT_GRPC_ADDR = "127.0.0.1:50051"
# A CSV may be up to 10 MB; leave room for the rest of the message.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
DEFAULT_TIMEOUT_S = 30.0

T = TypeVar("T")


def grpc_address_from_env() -> str:
    return os.environ.get("BATCHCALLS_GRPC_ADDR", DEFAULT_GRPC_ADDR).strip() or DEFAULT_GRPC_ADDR


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}" if self.field else self.description


@dataclass(eq=False)
class ApiError(Exception):
    """A failed API call, decoded from the gRPC status and its rich details."""

    code: grpc.StatusCode
    message: str
    field_violations: list[FieldViolation] = field(default_factory=list)
    reason: str = ""
    domain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    address: str = ""

    def __post_init__(self) -> None:
        Exception.__init__(self, self.readable())

    @property
    def code_name(self) -> str:
        return self.code.name if isinstance(self.code, grpc.StatusCode) else str(self.code)

    @property
    def is_unavailable(self) -> bool:
        return self.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)

    @property
    def is_unauthenticated(self) -> bool:
        return self.code == grpc.StatusCode.UNAUTHENTICATED

    @property
    def is_permission_denied(self) -> bool:
        return self.code == grpc.StatusCode.PERMISSION_DENIED

    def readable(self) -> str:
        """One line a person can act on, followed by one line per violation."""
        if self.code == grpc.StatusCode.UNAVAILABLE:
            where = f" at {self.address}" if self.address else ""
            head = f"Cannot reach the batchcalls server{where}. Is it running?"
        elif self.code == grpc.StatusCode.DEADLINE_EXCEEDED:
            head = "The batchcalls server did not answer in time. Try again."
        else:
            head = self.message or _DEFAULT_MESSAGES.get(self.code, self.code_name)
        lines = [head]
        for v in self.field_violations:
            lines.append(f"• {v}")
        return "\n".join(lines)

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.readable()

    @classmethod
    def from_rpc_error(cls, err: grpc.RpcError, address: str = "") -> ApiError:
        code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
        message = err.details() if hasattr(err, "details") else str(err)
        violations: list[FieldViolation] = []
        reason = domain = ""
        metadata: dict[str, str] = {}
        try:
            status = rpc_status.from_call(err)  # type: ignore[arg-type]
        except Exception:  # malformed or mismatched details: keep the plain message
            status = None
        if status is not None:
            message = status.message or message
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    br = error_details_pb2.BadRequest()
                    detail.Unpack(br)
                    violations.extend(
                        FieldViolation(v.field, v.description) for v in br.field_violations
                    )
                elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    reason, domain = info.reason, info.domain
                    metadata = dict(info.metadata)
                elif detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
                    pf = error_details_pb2.PreconditionFailure()
                    detail.Unpack(pf)
                    violations.extend(
                        FieldViolation(v.subject, v.description) for v in pf.violations
                    )
                elif detail.Is(error_details_pb2.LocalizedMessage.DESCRIPTOR):
                    lm = error_details_pb2.LocalizedMessage()
                    detail.Unpack(lm)
                    message = lm.message or message
        return cls(
            code=code,
            message=message or "",
            field_violations=violations,
            reason=reason,
            domain=domain,
            metadata=metadata,
            address=address,
        )


_DEFAULT_MESSAGES = {
    grpc.StatusCode.UNAUTHENTICATED: "The API key is missing, unknown or revoked.",
    grpc.StatusCode.PERMISSION_DENIED: "Your API key's role does not allow this action.",
    grpc.StatusCode.NOT_FOUND: "Not found.",
    grpc.StatusCode.INVALID_ARGUMENT: "The request is invalid.",
    grpc.StatusCode.FAILED_PRECONDITION: "This action is not allowed in the current state.",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "A limit was exceeded.",
    grpc.StatusCode.INTERNAL: "The server had an internal error.",
}


@dataclass
class ExportFile:
    content: bytes
    content_type: str
    filename: str


def new_request_id() -> str:
    return f"ui-{uuid.uuid4()}"


def to_timestamp(dt: Any) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(dt)
    return ts


class BatchcallsClient:
    """One API key against one server address. Cheap: channels are shared."""

    def __init__(
        self,
        address: str,
        api_key: str,
        *,
        channel: grpc.Channel | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.address = address
        self.api_key = api_key
        self.timeout = timeout
        self._channel = channel or make_channel(address)
        self._batches = batch_service_pb2_grpc.BatchServiceStub(self._channel)
        self._agents = agent_service_pb2_grpc.AgentServiceStub(self._channel)
        self._phones = phone_number_service_pb2_grpc.PhoneNumberServiceStub(self._channel)
        self._orgs = organization_service_pb2_grpc.OrganizationServiceStub(self._channel)

    # -- plumbing ---------------------------------------------------------
    @property
    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.api_key}"),)

    def _call(self, method: Callable[..., T], request: Any, timeout: float | None = None) -> T:
        try:
            return method(request, metadata=self._metadata, timeout=timeout or self.timeout)
        except grpc.RpcError as err:
            raise ApiError.from_rpc_error(err, self.address) from None

    def _stream(self, method: Callable[..., Any], request: Any, timeout: float | None) -> Iterator[Any]:
        try:
            for msg in method(request, metadata=self._metadata, timeout=timeout):
                yield msg
        except grpc.RpcError as err:
            raise ApiError.from_rpc_error(err, self.address) from None

    # -- organization -------------------------------------------------------
    def get_organization(self) -> organization_service_pb2.GetOrganizationResponse:
        return self._call(
            self._orgs.GetOrganization, organization_service_pb2.GetOrganizationRequest()
        )

    def update_organization(
        self, organization: organization_service_pb2.Organization, paths: Sequence[str]
    ) -> organization_service_pb2.Organization:
        req = organization_service_pb2.UpdateOrganizationRequest(
            organization=organization, update_mask=field_mask_pb2.FieldMask(paths=list(paths))
        )
        return self._call(self._orgs.UpdateOrganization, req).organization

    def top_up_credits(self, amount_micros: int) -> organization_service_pb2.Organization:
        req = organization_service_pb2.TopUpCreditsRequest(amount_micros=amount_micros)
        return self._call(self._orgs.TopUpCredits, req).organization

    def create_api_key(
        self, display_name: str, role: int
    ) -> organization_service_pb2.CreateApiKeyResponse:
        req = organization_service_pb2.CreateApiKeyRequest(display_name=display_name, role=role)
        return self._call(self._orgs.CreateApiKey, req)

    def list_api_keys(
        self, page_size: int = 100, page_token: str = ""
    ) -> organization_service_pb2.ListApiKeysResponse:
        req = organization_service_pb2.ListApiKeysRequest(page_size=page_size, page_token=page_token)
        return self._call(self._orgs.ListApiKeys, req)

    def delete_api_key(self, name: str) -> None:
        self._call(self._orgs.DeleteApiKey, organization_service_pb2.DeleteApiKeyRequest(name=name))

    def add_do_not_call_numbers(
        self, phone_numbers: Sequence[str], reason: str = ""
    ) -> organization_service_pb2.AddDoNotCallNumbersResponse:
        req = organization_service_pb2.AddDoNotCallNumbersRequest(
            phone_numbers=list(phone_numbers), reason=reason
        )
        return self._call(self._orgs.AddDoNotCallNumbers, req)

    def remove_do_not_call_numbers(
        self, phone_numbers: Sequence[str]
    ) -> organization_service_pb2.RemoveDoNotCallNumbersResponse:
        req = organization_service_pb2.RemoveDoNotCallNumbersRequest(phone_numbers=list(phone_numbers))
        return self._call(self._orgs.RemoveDoNotCallNumbers, req)

    def list_do_not_call_numbers(
        self, page_size: int = 50, page_token: str = "", search: str = ""
    ) -> organization_service_pb2.ListDoNotCallNumbersResponse:
        req = organization_service_pb2.ListDoNotCallNumbersRequest(
            page_size=page_size, page_token=page_token, search=search
        )
        return self._call(self._orgs.ListDoNotCallNumbers, req)

    def import_do_not_call_numbers(
        self, csv_content: bytes, filename: str, default_region: str = "", reason: str = ""
    ) -> organization_service_pb2.ImportDoNotCallNumbersResponse:
        req = organization_service_pb2.ImportDoNotCallNumbersRequest(
            csv_content=csv_content, filename=filename, default_region=default_region, reason=reason
        )
        return self._call(self._orgs.ImportDoNotCallNumbers, req, timeout=120)

    # -- agents ---------------------------------------------------------------
    def list_agents(
        self, *, voice_only: bool = False, page_size: int = 100, page_token: str = ""
    ) -> agent_service_pb2.ListAgentsResponse:
        req = agent_service_pb2.ListAgentsRequest(
            page_size=page_size, page_token=page_token, voice_only=voice_only
        )
        return self._call(self._agents.ListAgents, req)

    def list_all_agents(self, *, voice_only: bool = False) -> list[resources_pb2.Agent]:
        out: list[resources_pb2.Agent] = []
        token = ""
        for _ in range(50):
            resp = self.list_agents(voice_only=voice_only, page_size=100, page_token=token)
            out.extend(resp.agents)
            token = resp.next_page_token
            if not token:
                break
        return out

    def create_agent(self, agent: resources_pb2.Agent) -> resources_pb2.Agent:
        return self._call(self._agents.CreateAgent, agent_service_pb2.CreateAgentRequest(agent=agent)).agent

    def update_agent(self, agent: resources_pb2.Agent, paths: Sequence[str]) -> resources_pb2.Agent:
        req = agent_service_pb2.UpdateAgentRequest(
            agent=agent, update_mask=field_mask_pb2.FieldMask(paths=list(paths))
        )
        return self._call(self._agents.UpdateAgent, req).agent

    # -- phone numbers ----------------------------------------------------------
    def list_phone_numbers(
        self, *, with_outbound_trunk_only: bool = False, page_size: int = 100, page_token: str = ""
    ) -> phone_number_service_pb2.ListPhoneNumbersResponse:
        req = phone_number_service_pb2.ListPhoneNumbersRequest(
            page_size=page_size, page_token=page_token, with_outbound_trunk_only=with_outbound_trunk_only
        )
        return self._call(self._phones.ListPhoneNumbers, req)

    def list_all_phone_numbers(self, *, with_outbound_trunk_only: bool = False) -> list[resources_pb2.PhoneNumber]:
        out: list[resources_pb2.PhoneNumber] = []
        token = ""
        for _ in range(50):
            resp = self.list_phone_numbers(
                with_outbound_trunk_only=with_outbound_trunk_only, page_size=100, page_token=token
            )
            out.extend(resp.phone_numbers)
            token = resp.next_page_token
            if not token:
                break
        return out

    def create_phone_number(self, phone_number: resources_pb2.PhoneNumber) -> resources_pb2.PhoneNumber:
        req = phone_number_service_pb2.CreatePhoneNumberRequest(phone_number=phone_number)
        return self._call(self._phones.CreatePhoneNumber, req).phone_number

    def delete_phone_number(self, name: str) -> None:
        self._call(self._phones.DeletePhoneNumber, phone_number_service_pb2.DeletePhoneNumberRequest(name=name))

    # -- batches ------------------------------------------------------------------
    def validate_contacts(
        self, csv_content: bytes, filename: str, default_region: str = ""
    ) -> batch_service_pb2.ValidateContactsResponse:
        req = batch_service_pb2.ValidateContactsRequest(
            csv_content=csv_content, filename=filename, default_region=default_region
        )
        return self._call(self._batches.ValidateContacts, req, timeout=120)

    def create_batch(self, request: batch_service_pb2.CreateBatchRequest) -> batch_service_pb2.CreateBatchResponse:
        return self._call(self._batches.CreateBatch, request, timeout=120)

    def get_batch(self, name: str) -> batch_pb2.Batch:
        return self._call(self._batches.GetBatch, batch_service_pb2.GetBatchRequest(name=batch_name(name))).batch

    def list_batches(
        self,
        *,
        statuses: Sequence[int] = (),
        search: str = "",
        page_size: int = 20,
        page_token: str = "",
    ) -> batch_service_pb2.ListBatchesResponse:
        req = batch_service_pb2.ListBatchesRequest(
            page_size=page_size, page_token=page_token, statuses=list(statuses), search=search
        )
        return self._call(self._batches.ListBatches, req)

    def list_contacts(
        self,
        parent: str,
        *,
        page_size: int = 50,
        page_token: str = "",
        statuses: Sequence[int] = (),
        min_attempts: int | None = None,
        max_attempts: int | None = None,
        last_attempt_from: Any = None,
        last_attempt_to: Any = None,
        search: str = "",
    ) -> batch_service_pb2.ListContactsResponse:
        req = batch_service_pb2.ListContactsRequest(
            parent=batch_name(parent),
            page_size=page_size,
            page_token=page_token,
            statuses=list(statuses),
            search=search,
        )
        if min_attempts is not None:
            req.min_attempts = min_attempts
        if max_attempts is not None:
            req.max_attempts = max_attempts
        if last_attempt_from is not None:
            req.last_attempt_from.CopyFrom(to_timestamp(last_attempt_from))
        if last_attempt_to is not None:
            req.last_attempt_to.CopyFrom(to_timestamp(last_attempt_to))
        return self._call(self._batches.ListContacts, req)

    def get_contact(self, name: str) -> batch_pb2.Contact:
        return self._call(self._batches.GetContact, batch_service_pb2.GetContactRequest(name=name)).contact

    def pause_batch(self, name: str) -> batch_pb2.Batch:
        return self._call(self._batches.PauseBatch, batch_service_pb2.PauseBatchRequest(name=batch_name(name))).batch

    def resume_batch(self, name: str) -> batch_pb2.Batch:
        return self._call(self._batches.ResumeBatch, batch_service_pb2.ResumeBatchRequest(name=batch_name(name))).batch

    def cancel_batch(self, name: str) -> batch_pb2.Batch:
        return self._call(self._batches.CancelBatch, batch_service_pb2.CancelBatchRequest(name=batch_name(name))).batch

    def delete_batch(self, name: str) -> None:
        self._call(self._batches.DeleteBatch, batch_service_pb2.DeleteBatchRequest(name=batch_name(name)))

    def reschedule_batch(self, name: str, scheduled_local_time: str, timezone: str) -> batch_pb2.Batch:
        req = batch_service_pb2.RescheduleBatchRequest(
            name=batch_name(name), scheduled_local_time=scheduled_local_time, timezone=timezone
        )
        return self._call(self._batches.RescheduleBatch, req).batch

    def watch_batch(self, name: str, timeout: float | None = None) -> Iterator[batch_service_pb2.WatchBatchResponse]:
        req = batch_service_pb2.WatchBatchRequest(name=batch_name(name))
        return self._stream(self._batches.WatchBatch, req, timeout)

    def export_batch(self, name: str, *, filter: int, format: int) -> ExportFile:
        """Streams ExportBatch and concatenates every chunk."""
        req = batch_service_pb2.ExportBatchRequest(name=batch_name(name), filter=filter, format=format)
        parts: list[bytes] = []
        content_type = filename = ""
        for msg in self._stream(self._batches.ExportBatch, req, timeout=300):
            if msg.content_type and not content_type:
                content_type = msg.content_type
            if msg.filename and not filename:
                filename = msg.filename
            parts.append(msg.chunk)
        return ExportFile(b"".join(parts), content_type, filename)


def batch_name(name_or_id: str) -> str:
    """Accepts "batches/{id}" or a bare id; returns the resource name."""
    name_or_id = (name_or_id or "").strip()
    return name_or_id if name_or_id.startswith("batches/") else f"batches/{name_or_id}"


def batch_id_of(name_or_id: str) -> str:
    return (name_or_id or "").strip().removeprefix("batches/")


_CHANNELS: dict[str, grpc.Channel] = {}


def make_channel(address: str) -> grpc.Channel:
    """A shared channel per address (channels are thread-safe): TLS when
    BATCHCALLS_TLS_CA_FILE etc. are set, the rule of contract/channels.py."""
    ch = _CHANNELS.get(address)
    if ch is None:
        ch = open_channel(
            address,
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                # Reconnect back-off (at most 1 s) and several servers
                # (BATCHCALLS_GRPC_ADDR a list or dns:///name:port, balanced
                # round-robin): contract/channels.py.
            ],
        )
        _CHANNELS[address] = ch
    return ch
