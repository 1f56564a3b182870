"""Batch lifecycle: statuses, the seed's action matrix, and config bounds.

The action matrix is the contract. Where the seed is silent we chose:
- CANCELLED batches can be viewed and deleted (nothing else): an operator
  expects to clean up a cancelled campaign, and docs/design.md §4 lists it.
- Export is offered for COMPLETED and FAILED only, as the seed says; a
  cancelled batch's results are visible through ListContacts.
"""

from __future__ import annotations

import enum


class BatchStatus(str, enum.Enum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return self.value.upper()


class Action(str, enum.Enum):
    VIEW = "view"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    DELETE = "delete"
    RESCHEDULE = "reschedule"
    EXPORT = "export"


S = BatchStatus
ACTION_MATRIX: dict[Action, frozenset[BatchStatus]] = {
    Action.VIEW: frozenset(S),
    Action.PAUSE: frozenset({S.RUNNING}),
    Action.RESUME: frozenset({S.PAUSED}),
    Action.CANCEL: frozenset({S.PENDING, S.SCHEDULED, S.RUNNING, S.PAUSED}),
    Action.DELETE: frozenset({S.PENDING, S.SCHEDULED, S.PAUSED, S.COMPLETED, S.FAILED, S.CANCELLED}),
    Action.RESCHEDULE: frozenset({S.PENDING, S.SCHEDULED}),
    Action.EXPORT: frozenset({S.COMPLETED, S.FAILED}),
}

#: ErrorInfo reason for each refused action.
REFUSAL_REASON: dict[Action, str] = {
    Action.PAUSE: "BATCH_NOT_PAUSABLE",
    Action.RESUME: "BATCH_NOT_RESUMABLE",
    Action.CANCEL: "BATCH_NOT_CANCELLABLE",
    Action.DELETE: "BATCH_NOT_DELETABLE",
    Action.RESCHEDULE: "BATCH_NOT_RESCHEDULABLE",
    Action.EXPORT: "BATCH_NOT_EXPORTABLE",
}


def allowed(action: Action, status: BatchStatus) -> bool:
    return status in ACTION_MATRIX[action]


def allowed_actions(status: BatchStatus) -> list[Action]:
    return [a for a in Action if status in ACTION_MATRIX[a]]


def refusal_message(action: Action, status: BatchStatus) -> str:
    allowed_in = ", ".join(s.label for s in S if s in ACTION_MATRIX[action])
    return f"cannot {action.value} a batch in status {status.label}; allowed in: {allowed_in}"


# Configuration bounds from the seed.
NAME_MAX = 200
DESCRIPTION_MAX = 2000
CONCURRENCY_DEFAULT, CONCURRENCY_MIN, CONCURRENCY_MAX = 5, 1, 50
ATTEMPTS_DEFAULT, ATTEMPTS_MIN, ATTEMPTS_MAX = 3, 1, 10
REQUEST_ID_MAX = 128
MAX_CALL_SECONDS_DEFAULT, MAX_CALL_SECONDS_MIN, MAX_CALL_SECONDS_MAX = 1800, 30, 4 * 3600
ORG_CONCURRENCY_MIN, ORG_CONCURRENCY_MAX = 1, 500
