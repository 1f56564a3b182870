"""Batch actions as the UI offers them: names, labels, icons, confirm texts.

Which actions a batch allows is not decided here. The action matrix lives
once, in the server's domain, and every ``Batch`` message carries its row in
the output-only ``allowed_actions`` field; the UI offers exactly those, so
the buttons cannot drift from what the server accepts.
"""

from __future__ import annotations

from batchcalls.v1 import batch_pb2

ACTION_VIEW = "view"
ACTION_PAUSE = "pause"
ACTION_RESUME = "resume"
ACTION_CANCEL = "cancel"
ACTION_DELETE = "delete"
ACTION_RESCHEDULE = "reschedule"
ACTION_EXPORT = "export"

#: The UI's name of each API action. The names key the buttons and the
#: confirm dialog; an action a newer server adds is not in this map and is
#: not offered until the UI knows how to perform it.
ACTION_OF_API: dict[int, str] = {
    batch_pb2.BATCH_ACTION_VIEW: ACTION_VIEW,
    batch_pb2.BATCH_ACTION_PAUSE: ACTION_PAUSE,
    batch_pb2.BATCH_ACTION_RESUME: ACTION_RESUME,
    batch_pb2.BATCH_ACTION_CANCEL: ACTION_CANCEL,
    batch_pb2.BATCH_ACTION_DELETE: ACTION_DELETE,
    batch_pb2.BATCH_ACTION_RESCHEDULE: ACTION_RESCHEDULE,
    batch_pb2.BATCH_ACTION_EXPORT: ACTION_EXPORT,
}
ALL_ACTIONS = tuple(ACTION_OF_API.values())
#: Actions that change the batch, which members may not perform.
WRITE_ACTIONS = frozenset(
    {ACTION_PAUSE, ACTION_RESUME, ACTION_CANCEL, ACTION_DELETE, ACTION_RESCHEDULE}
)

ACTION_LABELS = {
    ACTION_VIEW: "View",
    ACTION_PAUSE: "Pause",
    ACTION_RESUME: "Resume",
    ACTION_CANCEL: "Cancel",
    ACTION_DELETE: "Delete",
    ACTION_RESCHEDULE: "Reschedule",
    ACTION_EXPORT: "Export",
}

ACTION_ICONS = {
    ACTION_VIEW: "👁️",
    ACTION_PAUSE: "⏸️",
    ACTION_RESUME: "▶️",
    ACTION_CANCEL: "⛔",
    ACTION_DELETE: "🗑️",
    ACTION_RESCHEDULE: "🗓️",
    ACTION_EXPORT: "⬇️",
}


def allowed_actions(batch: batch_pb2.Batch) -> tuple[str, ...]:
    """The actions the server allows on ``batch`` now, in the server's order."""
    return tuple(ACTION_OF_API[a] for a in batch.allowed_actions if a in ACTION_OF_API)


def action_allowed(batch: batch_pb2.Batch, action: str) -> bool:
    return action in allowed_actions(batch)


def action_confirm_text(action: str, batch_label: str) -> str:
    name = f"“{batch_label}”"
    return {
        ACTION_PAUSE: f"Pause {name}? Running calls complete normally; no new calls start "
        "and the queued contacts wait until you resume.",
        ACTION_RESUME: f"Resume {name}? Queue processing resumes.",
        ACTION_CANCEL: f"Cancel {name}? Running calls complete, pending contacts are not "
        "called and the queue is discarded. This action cannot be undone.",
        ACTION_DELETE: f"Delete {name} and all its contacts? This action cannot be undone.",
        ACTION_RESCHEDULE: f"Choose a new start time for {name}. It must be in the future.",
    }.get(action, f"{ACTION_LABELS.get(action, action)} {name}?")
