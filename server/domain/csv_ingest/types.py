"""The shapes of CSV validation: limits, the report and its rows, the
rejection of a whole file, and the phase-1 split handed between processes."""

from __future__ import annotations

from dataclasses import dataclass, field

NO_PHONE_COLUMN_MESSAGE = (
    "CSV must have 'phone' column (case-insensitive). "
    "Check that the first row contains headers."
)
_DELIMITERS = (",", ";", "\t")
_SNIFF_CHARS = 2048  # Sniffer regexes are quadratic on hostile input; 2 KB bounds it
_HEADERLESS_SAMPLE_ROWS = 50
_VALUE_CHARS = 100
_BINARY_SAMPLE = 8192


@dataclass(frozen=True)
class CsvLimits:
    """Bounds on every dimension of an upload (docs/design.md §7: every input has a bound)."""

    max_bytes: int = 10 * 1024 * 1024
    max_contacts: int = 10_000
    max_field_chars: int = 1000  # a longer cell -> that row invalid
    max_columns: int = 100
    max_name_chars: int = 200
    max_rows: int = 100_000
    """Non-empty data rows read before giving up (bounds CPU: each costs a parse)."""


@dataclass(frozen=True, slots=True)
class ParsedContact:
    """A valid row. ``row_number`` is the file line where the record starts.

    Slots, no ``__dict__``: one object the garbage collector tracks per
    contact instead of two. A report of 10,000 contacts lives on in the
    validation cache, and every full collection walks what it holds.
    """

    row_number: int
    phone: str
    name: str
    email: str
    variables: dict[str, str]
    normalized: bool


@dataclass(frozen=True)
class InvalidRow:
    """A rejected row; ``value`` is the offending text, truncated to 100 chars."""

    row_number: int
    reason: str
    value: str


@dataclass(frozen=True)
class DuplicateRow:
    """A row whose normalised phone already appeared at ``duplicate_of_row``."""

    row_number: int
    duplicate_of_row: int
    phone: str


@dataclass
class CsvReport:
    """The validation report shown to the operator (seed, Step 2).

    Invariant: ``total_rows == valid_rows + len(invalid_rows) +
    len(duplicate_rows) + empty_rows``.
    """

    total_rows: int
    contacts: list[ParsedContact]
    invalid_rows: list[InvalidRow]
    duplicate_rows: list[DuplicateRow]
    empty_rows: int
    normalized_count: int
    custom_columns: list[str]
    header_detected: bool
    delimiter: str
    warnings: list[str]

    @property
    def valid_rows(self) -> int:
        """Number of valid contacts."""
        return len(self.contacts)


class CsvRejected(Exception):
    """The whole file is refused.

    ``reason`` is a stable machine code (FILE_TYPE, FILE_TOO_LARGE,
    TOO_MANY_CONTACTS, NOT_TEXT, ENCODING, NO_PHONE_COLUMN, NO_VALID_ROWS,
    EMPTY_FILE, MALFORMED, TOO_MANY_COLUMNS, INVALID_REGION); ``message`` is
    for people;
    ``field`` names the request field to blame.
    """

    def __init__(self, reason: str, message: str, field: str = "csv_content") -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.field = field

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        """Keep all three attributes when pickled (e.g. across processes)."""
        return (type(self), (self.reason, self.message, self.field))

    def __eq__(self, other: object) -> bool:
        """Equal when code, message and field match (used to compare runners)."""
        return (
            isinstance(other, CsvRejected)
            and (self.reason, self.message, self.field)
            == (other.reason, other.message, other.field)
        )

    __hash__ = Exception.__hash__


@dataclass
class CsvSplit:
    """Phase 1 output: everything but the phone parsing.

    Rows are kept as parallel lists rather than one object per row: building
    and garbage-collecting 10,000 small objects was a measurable share of the
    validation time. For the i-th non-empty data row: ``row_numbers[i]`` is
    its starting line, ``cells[i]`` its cells (padded/trimmed to the header
    width; a tuple, which the garbage collector stops tracking), and
    ``problems.get(i)`` is ``(reason, value)`` when it is already known
    invalid (cell count, cell length) — its phone is then not parsed.
    ``phones`` holds the stripped phone cell of each row *without* a problem,
    in order: it is what phase 2 parses.
    """

    row_numbers: list[int]
    cells: list[tuple[str, ...]]
    problems: dict[int, tuple[str, str]]
    phones: list[str]
    total_rows: int
    empty_rows: int
    phone_index: int
    name_index: int | None
    email_index: int | None
    custom: list[tuple[str, int]]
    header_detected: bool
    delimiter: str
    warnings: list[str]
    default_region: str | None
    column_names: list[str] = field(default_factory=list)
