"""COPY text encoding of a new batch's contacts (server/adapters/db/contacts_copy.py)
gives the rows the former json.dumps / per-field encoder gave."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from server.adapters.db.contacts_copy import _lines, copy_text, variables_json
from server.domain.csv_ingest.consent import Consent
from server.domain.csv_ingest.types import ParsedContact


def old_copy_text(value: object) -> str:
    text = str(value)
    if any(c in text for c in "\\\t\n\r"):
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def old_line(contact_id: int, batch_id: str, org_id: str, max_attempts: int, c: ParsedContact,
             suppressed: dict[int, str], consent: dict[int, Consent]) -> str:
    """The line the encoder before this module wrote, with the id in front."""
    is_suppressed = c.row_number in suppressed
    agreed = consent.get(c.row_number)
    return f"{contact_id}\t{old_copy_text(batch_id)}\t{old_copy_text(org_id)}\t" + "\t".join((
        str(c.row_number), old_copy_text(c.phone), old_copy_text(c.name), old_copy_text(c.email),
        old_copy_text(json.dumps(c.variables)),
        "suppressed" if is_suppressed else "pending", str(max_attempts),
        old_copy_text(suppressed[c.row_number]) if is_suppressed else "",
        agreed.at.isoformat() if agreed else "\\N",
        old_copy_text(agreed.source) if agreed else "",
    )) + "\n"


def contact(row: int, name: str = "Ann", email: str = "", variables: dict[str, str] | None = None) -> ParsedContact:
    return ParsedContact(row, f"+1415555{row:04d}", name, email, variables or {}, False)


AWKWARD = ["plain", "tab\there", "new\nline", "cr\rhere", "back\\slash", 'quote"d', "ünïcödé ☎", "\\N", ""]


def test_copy_text_escapes_like_before() -> None:
    for text in AWKWARD:
        assert copy_text(text) == old_copy_text(text)


def test_variables_json_is_the_same_json() -> None:
    for variables in ({}, {"plan": "gold"}, {k or "empty": v for k, v in zip(AWKWARD, reversed(AWKWARD))}):
        assert json.loads(variables_json(variables)) == variables
        assert variables_json(variables) == json.dumps(variables)
        assert variables_json(variables).isascii()


def test_lines_match_the_former_encoding() -> None:
    parsed = [
        contact(2),
        contact(3, name="Tab\tName", email="a@b.co", variables={"plan": "gold", "note": "x\ny\\z"}),
        contact(5, name="Back\\slash"),
        contact(7, variables={"consent_at": "2025-01-31"}),
    ]
    suppressed = {3: "on do-not-call list", 5: "no consent: consent_at is empty\t(tab)"}
    consent = {7: Consent(datetime(2025, 1, 31, tzinfo=UTC), "web\tform"),
               3: Consent(datetime(2025, 2, 1, 14, 5, tzinfo=UTC), "")}
    ids = [101, 102, 103, 104]
    got = _lines(ids, "\tbatch_1\torg_1\t", 3, parsed, suppressed, consent)
    assert got == [old_line(i, "batch_1", "org_1", 3, c, suppressed, consent) for i, c in zip(ids, parsed)]
