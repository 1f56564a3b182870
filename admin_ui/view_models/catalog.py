"""Agents, phone numbers and their outbound trunks: option labels for the
create form and rows of the catalog pages.
"""

from __future__ import annotations

from typing import Any

from admin_ui.view_models.formatting import format_ts
from batchcalls.v1 import resources_pb2

ARCHITECTURE_LABELS = {
    resources_pb2.AGENT_ARCHITECTURE_UNSPECIFIED: "Unspecified",
    resources_pb2.AGENT_ARCHITECTURE_PIPELINE: "Pipeline",
    resources_pb2.AGENT_ARCHITECTURE_REALTIME: "Realtime",
    resources_pb2.AGENT_ARCHITECTURE_TEXT: "Text",
}
TRUNK_KIND_LABELS = {
    resources_pb2.TRUNK_KIND_UNSPECIFIED: "—",
    resources_pb2.TRUNK_KIND_SIMULATED: "Simulated",
    resources_pb2.TRUNK_KIND_SIP: "SIP",
}
TRANSPORT_LABELS = {
    resources_pb2.SIP_TRANSPORT_UNSPECIFIED: "—",
    resources_pb2.SIP_TRANSPORT_UDP: "UDP",
    resources_pb2.SIP_TRANSPORT_TCP: "TCP",
}
CALLER_ID_LABELS = {
    resources_pb2.CALLER_ID_FORMAT_UNSPECIFIED: "E.164 (default)",
    resources_pb2.CALLER_ID_FORMAT_E164: "E.164 (+12025550100)",
    resources_pb2.CALLER_ID_FORMAT_E164_NO_PLUS: "E.164 without + (12025550100)",
    resources_pb2.CALLER_ID_FORMAT_NATIONAL: "National (2025550100)",
}


def agent_option_label(agent: resources_pb2.Agent) -> str:
    return f"{agent.display_name or agent.name} · {ARCHITECTURE_LABELS.get(agent.architecture, '?')}"


def phone_option_label(number: resources_pb2.PhoneNumber) -> str:
    kind = ""
    if number.HasField("outbound_trunk"):
        kind = f" · {TRUNK_KIND_LABELS.get(number.outbound_trunk.kind, '?')} trunk"
    name = f" ({number.display_name})" if number.display_name else ""
    return f"{number.phone_number}{name}{kind}"


def agent_row(agent: resources_pb2.Agent) -> dict[str, Any]:
    return {
        "Name": agent.display_name,
        "Architecture": ARCHITECTURE_LABELS.get(agent.architecture, "?"),
        "Active": "Yes" if agent.active else "No",
        "Can call": "Yes" if agent.active and agent.architecture in (
            resources_pb2.AGENT_ARCHITECTURE_PIPELINE, resources_pb2.AGENT_ARCHITECTURE_REALTIME
        ) else "No",
        "Recording": "On" if agent.recording_enabled else "Off",
        "Transcript": "On" if agent.transcript_enabled else "Off",
        "Created": format_ts(agent, "create_time"),
        "Resource": agent.name,
    }


def phone_number_row(number: resources_pb2.PhoneNumber) -> dict[str, Any]:
    row: dict[str, Any] = {
        "Number": number.phone_number,
        "Label": number.display_name,
        "Outbound trunk": "None (cannot place calls)",
        "Host": "",
        "Port": "",
        "Transport": "",
        "Username": "",
        "Password": "",
        "Caller ID": "",
        "Created": format_ts(number, "create_time"),
        "Resource": number.name,
    }
    if number.HasField("outbound_trunk"):
        t = number.outbound_trunk
        row.update(
            {
                "Outbound trunk": TRUNK_KIND_LABELS.get(t.kind, "?"),
                "Host": t.host,
                "Port": str(t.port) if t.port else "",
                "Transport": TRANSPORT_LABELS.get(t.transport, "") if t.kind == resources_pb2.TRUNK_KIND_SIP else "",
                "Username": t.username,
                "Password": "set" if t.password_set else "",
                "Caller ID": CALLER_ID_LABELS.get(t.caller_id_format, ""),
            }
        )
    return row
