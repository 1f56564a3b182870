"""The ingest's cheap paths give what the general ones give: the ready
queue's hand-packed ZADD is the command redis-py packs, the contact ids of
one sequence answer, and phase 1 keeps rows the garbage collector stops
tracking (server/domain/csv_ingest/split.py)."""

from __future__ import annotations

import gc

from redis.asyncio.connection import Connection

from contract.resp import pack_zadd_same_score
from server.adapters.db.contacts_copy import _ids
from server.domain.csv_ingest import split_csv, validate_csv


def test_zadd_same_score_is_the_command_redis_py_packs() -> None:
    members = [1, 22, 333, 4_000_000_000_123]
    args = ["ZADD", "bc:{org_x}:batch:batch_y:ready"]
    for m in members:
        args += ["1741791600000", str(m)]
    packed = b"".join(Connection().pack_command(*args))
    assert pack_zadd_same_score("bc:{org_x}:batch:batch_y:ready", "1741791600000", members) == packed


def test_ids_of_one_answer() -> None:
    assert list(_ids(5, 9, None)) == [5, 6, 7, 8, 9]
    assert _ids(5, 9, [5, 7, 9]) == [5, 7, 9]
    assert _ids(5, 9, None)[1:3] == range(6, 8)  # sliced per COPY chunk


def test_split_rows_are_untracked_after_a_collection() -> None:
    content = b"phone,name,email\n+12125550143,Ann,a@example.com\n+13105550199,\"Bo, Jr\",\n+1415\n"
    split = split_csv(content, "c.csv")
    gc.collect()
    assert split.cells and not any(gc.is_tracked(cells) for cells in split.cells)
    # and the report is the one it always was
    report = validate_csv(content, "c.csv")
    assert [(c.row_number, c.phone, c.name, c.email) for c in report.contacts] == [
        (2, "+12125550143", "Ann", "a@example.com"), (3, "+13105550199", "Bo, Jr", "")]
    assert [(r.row_number, r.value) for r in report.invalid_rows] == [(4, "+1415")]
