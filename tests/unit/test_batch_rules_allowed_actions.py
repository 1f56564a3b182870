"""The allowed_actions field of a Batch is the domain's action matrix row."""

from __future__ import annotations

import pytest

from batchcalls.v1 import batch_pb2
from server.api.convert import allowed_action_values
from server.domain.batch_rules import ACTION_MATRIX, BatchStatus


@pytest.mark.parametrize("status", list(BatchStatus))
def test_allowed_actions_follow_the_matrix(status: BatchStatus) -> None:
    names = {batch_pb2.BatchAction.Name(v).removeprefix("BATCH_ACTION_").lower() for v in allowed_action_values(status.value)}
    assert names == {a.value for a, statuses in ACTION_MATRIX.items() if status in statuses}
