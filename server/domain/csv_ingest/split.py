"""Phase 1 of CSV validation: bytes -> records (file checks, encoding,
delimiter and header detection, record splitting, per-row structural checks).
Pure; its output is cheap to pickle for the phone-parsing workers."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from server.domain.csv_ingest.types import (
    _BINARY_SAMPLE,
    _DELIMITERS,
    _HEADERLESS_SAMPLE_ROWS,
    _SNIFF_CHARS,
    _VALUE_CHARS,
    NO_PHONE_COLUMN_MESSAGE,
    CsvLimits,
    CsvRejected,
    CsvSplit,
)
from server.domain.phone import check_region, looks_like_phone

# --------------------------------------------------------------------------
# phase 1: bytes -> records
# --------------------------------------------------------------------------


def _check_file(content: bytes, filename: str, limits: CsvLimits) -> None:
    """Type and size checks: cheap, and size is checked before any decoding."""
    if not isinstance(filename, str) or not filename.strip().lower().endswith(".csv"):
        raise CsvRejected(
            "FILE_TYPE",
            f"file {filename!r} is not a .csv file; export the contact list as CSV",
            field="filename",
        )
    if len(content) > limits.max_bytes:
        raise CsvRejected(
            "FILE_TOO_LARGE",
            f"file is {len(content) / 1_048_576:.1f} MB; the limit is "
            f"{limits.max_bytes / 1_048_576:g} MB. Split it into several batches.",
        )


def _looks_binary(content: bytes) -> bool:
    """NUL bytes or mostly control characters in the first 8 KB."""
    sample = content[:_BINARY_SAMPLE]
    if b"\x00" in content:
        return True
    if not sample:
        return False
    controls = sum(1 for b in sample if b < 0x20 and b not in (0x09, 0x0A, 0x0C, 0x0D))
    return controls / len(sample) > 0.05


def _decode(content: bytes) -> str:
    """Decode UTF-8 (BOM optional) or reject as NOT_TEXT / ENCODING."""
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CsvRejected(
            "ENCODING", "file is UTF-16; save it as CSV UTF-8 and upload again"
        )
    if content.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise CsvRejected(
            "NOT_TEXT",
            "file is not a text CSV (it looks like an Excel workbook); "
            "use Save As > CSV UTF-8 and upload that file",
        )
    if _looks_binary(content):
        raise CsvRejected("NOT_TEXT", "file is not a text CSV (it looks like binary data)")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content.count(b"\n", 0, exc.start) + 1
        raise CsvRejected(
            "ENCODING",
            f"file is not valid UTF-8 (first bad byte at offset {exc.start}, "
            f"line {line}); save it as CSV UTF-8 and upload again",
        ) from None


def _count_outside_quotes(line: str, char: str) -> int:
    """Occurrences of ``char`` in ``line`` that are not inside double quotes."""
    if '"' not in line:
        return line.count(char)
    count = 0
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == char and not quoted:
            count += 1
    return count


def _first_nonblank_line(sample: str) -> str:
    for line in sample.splitlines():
        if line.strip(" \t,;"):
            return line
    return ""


def detect_delimiter(text: str) -> str:
    """Pick ``,``, ``;`` or tab.

    csv.Sniffer (restricted to those three) sees the consistency across lines;
    but it raises on single-column files and occasionally picks a character
    that does not even occur in the header. The fallback — and the check on
    Sniffer's answer — counts candidates in the first non-blank line outside
    quotes; ties prefer ``,`` then ``;`` then tab; no candidate at all means a
    single-column file, read with ``,``.
    """
    sample = text[:_SNIFF_CHARS]
    cut = max(sample.rfind("\n"), sample.rfind("\r"))
    if cut > 0 and len(text) > _SNIFF_CHARS:
        sample = sample[:cut]
    first = _first_nonblank_line(sample)
    counts = {d: _count_outside_quotes(first, d) for d in _DELIMITERS}
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(_DELIMITERS)).delimiter
    except Exception:  # noqa: BLE001 - Sniffer is a heuristic; any failure -> fallback
        sniffed = None
    if sniffed in counts and counts[sniffed] > 0:
        return sniffed
    best = max(_DELIMITERS, key=lambda d: counts[d])  # max keeps the first on ties
    return best if counts[best] > 0 else ","


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(start_line, cells)`` per record, 1-based physical lines.

    Lines end at \\n, \\r or \\r\\n (``newline=''`` keeps them intact so quoted
    newlines survive). csv errors become MALFORMED with the line number.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"')
    previous = 0
    try:
        for cells in reader:
            yield previous + 1, cells
            previous = reader.line_num
    except csv.Error as exc:
        raise CsvRejected(
            "MALFORMED",
            f"could not read the CSV near line {previous + 1} ({exc}); "
            'check for a quote (") that is opened but never closed',
        ) from None


def _check_unterminated_quote(text: str, delimiter: str, start_line: int) -> None:
    """Reject when the last record is an unclosed quote running to end of file.

    The lenient reader would otherwise silently swallow every following line
    into one cell. Only called when the last record spans several lines, so
    the common case costs nothing.
    """
    lines = io.StringIO(text, newline="").readlines()
    tail = "".join(lines[start_line - 1 :])
    reader = csv.reader(io.StringIO(tail, newline=""), delimiter=delimiter, strict=True)
    try:
        for _ in reader:
            pass
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise CsvRejected(
                "MALFORMED",
                f'line {start_line} opens a quote (") that is never closed; '
                "the rest of the file would be read as one cell",
            ) from None


def _is_blank(cells: list[str]) -> bool:
    return not "".join(cells).strip()


@dataclass
class _Columns:
    """Header mapping decided by header detection."""

    names: list[str]
    phone_index: int
    name_index: int | None
    email_index: int | None
    custom: list[tuple[str, int]]
    header_detected: bool
    warnings: list[str]


def _map_header(header: list[str], limits: CsvLimits) -> _Columns:
    """Map header cells to phone/name/email/custom columns.

    Names match case-insensitively with surrounding spaces ignored. Blank
    header cells are ignored with a warning; a repeated name keeps the first
    and renames the later one ``name_2`` (then ``_3``...), with a warning.
    """
    warnings: list[str] = []
    seen: set[str] = set()
    names: list[str] = []
    roles: dict[str, int] = {}
    custom: list[tuple[str, int]] = []
    for index, raw in enumerate(header):
        name = raw.strip()
        if len(name) > limits.max_field_chars:
            raise CsvRejected(
                "MALFORMED",
                f"column {index + 1} has a header longer than "
                f"{limits.max_field_chars} characters; check the first row",
            )
        if not name:
            warnings.append(f"column {index + 1} has a blank header; its values are ignored")
            names.append("")
            continue
        key = name.lower()
        if key in seen:
            suffix = 2
            while f"{key}_{suffix}" in seen:
                suffix += 1
            renamed = f"{name}_{suffix}"
            warnings.append(
                f"duplicate column {name!r} (column {index + 1}) renamed to {renamed!r}"
            )
            name, key = renamed, f"{key}_{suffix}"
        seen.add(key)
        names.append(name)
        if key in ("phone", "name", "email"):
            roles[key] = index
        else:
            custom.append((name, index))
    return _Columns(
        names=names,
        phone_index=roles["phone"],
        name_index=roles.get("name"),
        email_index=roles.get("email"),
        custom=custom,
        header_detected=True,
        warnings=warnings,
    )


def _headerless_columns(sample: list[list[str]]) -> _Columns | None:
    """Guess the phone column of a file without a header, or None.

    The first row must look like data (some cell phone-like) and exactly one
    column must be phone-like in most of the first 50 rows.
    """
    first = sample[0]
    candidates = [i for i, cell in enumerate(first) if looks_like_phone(cell)]
    if not candidates:
        return None
    chosen = [
        i
        for i in candidates
        if sum(1 for row in sample if i < len(row) and looks_like_phone(row[i])) * 2
        > len(sample)
    ]
    if len(chosen) != 1:
        return None
    phone_index = chosen[0]
    names = [f"column_{i + 1}" for i in range(len(first))]
    names[phone_index] = "phone"
    return _Columns(
        names=names,
        phone_index=phone_index,
        name_index=None,
        email_index=None,
        custom=[(names[i], i) for i in range(len(first)) if i != phone_index],
        header_detected=False,
        warnings=[f"no header row found; column {phone_index + 1} used as phone"],
    )


def _no_phone_column(header: list[str]) -> CsvRejected:
    found = ", ".join(repr(c.strip()[:40]) for c in header[:10] if c.strip())
    hint = f" Found: {found}." if found else ""
    return CsvRejected("NO_PHONE_COLUMN", NO_PHONE_COLUMN_MESSAGE + hint)


def _structural_problem(
    cells: list[str], width: int, limits: CsvLimits
) -> tuple[list[str], str | None, str]:
    """Fit a record to the header width; return (cells, problem, value)."""
    n = len(cells)
    if n < width:
        cells = cells + [""] * (width - n)
    elif n > width:
        if "".join(cells[width:]).strip():
            return cells, f"row has {n} columns, header has {width}", _join(cells)
        cells = cells[:width]
    if max(map(len, cells)) > limits.max_field_chars:
        longest = max(cells, key=len)
        return cells, f"a cell is longer than {limits.max_field_chars} characters", longest
    return cells, None, ""


def _join(cells: list[str]) -> str:
    return ",".join(cells)[:_VALUE_CHARS]


def split_csv(
    content: bytes,
    filename: str,
    default_region: str | None = None,
    limits: CsvLimits = CsvLimits(),
) -> CsvSplit:
    """Phase 1: checks, decoding, delimiter/header detection, record splitting.

    Raises CsvRejected for whole-file problems, including an unknown
    ``default_region`` (code INVALID_REGION, field "default_region") so the
    API layer reports it like any other bad argument.
    """
    try:
        region = check_region(default_region)
    except ValueError as exc:
        raise CsvRejected("INVALID_REGION", str(exc), field="default_region") from None
    _check_file(content, filename, limits)
    text = _decode(content)
    if not text.strip():
        raise CsvRejected("EMPTY_FILE", "file is empty; add a header row and contacts")
    sep_line = _excel_sep_line(text)
    delimiter = sep_line or detect_delimiter(text)
    records = _records(text, delimiter)

    leading_blank = 0
    first: tuple[int, list[str]] | None = None
    for line, cells in records:
        if line == 1 and sep_line:
            continue  # Excel's "sep=;" hint line, not data
        if _is_blank(cells):
            leading_blank += 1
            continue
        first = (line, cells)
        break
    if first is None:
        raise CsvRejected("EMPTY_FILE", "file has only blank rows; add a header row and contacts")
    first_cells = first[1]
    if len(first_cells) > limits.max_columns:
        raise CsvRejected(
            "TOO_MANY_COLUMNS",
            f"file has {len(first_cells)} columns; the limit is {limits.max_columns}",
        )

    pending: list[tuple[int, list[str]]] = []
    if any(c.strip().lower() == "phone" for c in first_cells):
        columns = _map_header(first_cells, limits)
    else:
        pending.append(first)
        for item in records:
            pending.append(item)
            if len(pending) >= _HEADERLESS_SAMPLE_ROWS:
                break
        sample = [cells for _, cells in pending if not _is_blank(cells)]
        guessed = _headerless_columns(sample)
        if guessed is None:
            raise _no_phone_column(first_cells)
        columns = guessed

    warnings = list(columns.warnings)
    if leading_blank:
        warnings.append(f"{leading_blank} blank row(s) before the first row were skipped")
    split = CsvSplit(
        row_numbers=[],
        cells=[],
        problems={},
        phones=[],
        total_rows=0,
        empty_rows=0,
        phone_index=columns.phone_index,
        name_index=columns.name_index,
        email_index=columns.email_index,
        custom=columns.custom,
        header_detected=columns.header_detected,
        delimiter=delimiter,
        warnings=warnings,
        default_region=region,
        column_names=columns.names,
    )
    _collect_rows(split, _chain(pending, records), len(columns.names), limits)
    _guard_tail(text, delimiter, split, first)
    return split


def _chain(
    pending: list[tuple[int, list[str]]], records: Iterator[tuple[int, list[str]]]
) -> Iterator[tuple[int, list[str]]]:
    yield from pending
    yield from records


def _excel_sep_line(text: str) -> str | None:
    """The delimiter named by Excel's optional first line ``sep=;``, if any."""
    if text[:4].lower() == "sep=" and len(text) > 4 and text[4] in _DELIMITERS:
        if text[5:6] in ("", "\n", "\r"):
            return text[4]
    return None


def _has_newline(cells: Sequence[str]) -> bool:
    return any("\n" in c or "\r" in c for c in cells)


def _guard_tail(text: str, delimiter: str, split: CsvSplit, header: tuple[int, list[str]]) -> None:
    """Run the unterminated-quote check when the header or last record spans lines."""
    if split.header_detected and not split.cells and _has_newline(header[1]):
        _check_unterminated_quote(text, delimiter, header[0])
    if split.cells and _has_newline(split.cells[-1]):
        _check_unterminated_quote(text, delimiter, split.row_numbers[-1])


#: A row's cells are kept as a tuple, not csv's list: a tuple of strings is
#: untracked by the garbage collector at its first collection, where 10,000
#: lists alive for the whole validation were promoted to the oldest
#: generation and counted towards its next full collection (~100 ms on the
#: benchmark machine; one every 2-3 uploads of 10,000 rows, now every 5).
_tuple = tuple


def _collect_rows(
    split: CsvSplit,
    records: Iterable[tuple[int, list[str]]],
    width: int,
    limits: CsvLimits,
) -> None:
    """Fill the row lists, ``phones`` and counters; the hot loop of phase 1."""
    row_numbers, all_cells, phones = split.row_numbers, split.cells, split.phones
    problems = split.problems
    phone_index = split.phone_index
    max_rows, max_field = limits.max_rows, limits.max_field_chars
    total = empty = 0
    for line, cells in records:
        total += 1
        if not "".join(cells).strip():
            empty += 1
            continue
        index = len(row_numbers)
        if index >= max_rows:
            raise CsvRejected(
                "TOO_MANY_CONTACTS",
                f"file has more than {max_rows:,} data rows; the limit is "
                f"{limits.max_contacts:,} contacts per batch. Split it into several batches.",
            )
        row_numbers.append(line)
        if len(cells) == width and max(map(len, cells)) <= max_field:
            all_cells.append(_tuple(cells))
            phones.append(cells[phone_index].strip())
            continue
        fitted, problem, value = _structural_problem(cells, width, limits)
        all_cells.append(_tuple(fitted))
        if problem is None:
            phones.append(fitted[phone_index].strip())
        else:
            problems[index] = (problem, value)
    split.total_rows = total
    split.empty_rows = empty
