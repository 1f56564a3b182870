"""CSV contact-list validation ("ingestion"): pure, no I/O.

An operator uploads a CSV of contacts (seed, "Step 2: Upload CSV File"); this
module turns its bytes into a :class:`CsvReport` (valid contacts, invalid rows
with reasons, duplicates, empty-row count) or rejects the whole file with a
:class:`CsvRejected` carrying a machine code and a sentence a person can act
on.

Validation runs in three phases so that the expensive middle one can be spread
over processes by ``server.service.validation_runner``:

1. :func:`split_csv` — file checks (type, size, encoding), delimiter and header
   detection, record splitting, per-row structural checks. Produces a
   :class:`CsvSplit` whose ``phones`` list holds the raw phone strings that
   still need parsing (plain strings: cheap to pickle).
2. :func:`server.domain.phone.phone_outcomes` over ``split.phones`` — one
   ``phonenumbers.parse`` per row; this dominates the cost.
3. :func:`assemble_report` — combines the two in file order: duplicates,
   name/email checks, contact limit, the final report.

:func:`validate_csv` chains them in-process. Any caller that feeds phase 3 with
the phase 2 results in order gets exactly the same report.

Decisions worth knowing (each is unit-tested):

* Encoding: UTF-8 with or without BOM only. There is deliberately no
  cp1252/latin-1 fallback: a wrong guess would corrupt names silently, so we
  reject with ``ENCODING`` and say where the first bad byte is.
* An ``email`` cell that is present but not plausibly an address makes the row
  invalid ("invalid email") rather than producing a warning: the contact would
  otherwise be stored with data the operator believes is an address.
* A row with *more* cells than the header is invalid, except that extra cells
  that are all blank (trailing delimiters from spreadsheets) are ignored.
* Blank rows before the header are skipped and not counted as data rows; an
  Excel ``sep=;`` first line sets the delimiter and is skipped too.
* A quote opened and never closed (which would swallow the rest of the file
  into one cell), or a single cell over the csv module's 131,072-character
  field limit, rejects the file as MALFORMED with the line number.
* ``00``-prefixed numbers are invalid (see server.domain.phone).
* A row's reason is the first problem found, in this order: cell count, cell
  length, phone, name length, email.
"""

from __future__ import annotations

from server.domain.csv_ingest.report import (
    assemble_report,
    is_plausible_email,
    validate_csv,
)
from server.domain.csv_ingest.split import detect_delimiter, split_csv
from server.domain.csv_ingest.types import (
    NO_PHONE_COLUMN_MESSAGE,
    CsvLimits,
    CsvRejected,
    CsvReport,
    CsvSplit,
    DuplicateRow,
    InvalidRow,
    ParsedContact,
)

__all__ = [
    "CsvLimits",
    "ParsedContact",
    "InvalidRow",
    "DuplicateRow",
    "CsvReport",
    "CsvRejected",
    "CsvSplit",
    "split_csv",
    "assemble_report",
    "validate_csv",
    "detect_delimiter",
    "is_plausible_email",
    "NO_PHONE_COLUMN_MESSAGE",
]
