import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.export_csv import (
    EXPORT_COLUMNS,
    RESULT_COLUMNS,
    ExportRow,
    csv_chunks,
    export_header,
    format_timestamp,
    neutralize_cell,
    row_matches_filter,
)

T = datetime(2024, 1, 15, 10, 31, tzinfo=timezone.utc)


def row(**kw):
    base = dict(
        name="Ada Lovelace",
        phone="+14155552671",
        status="completed",
        attempts=1,
        duration_seconds=42.0,
        failure_reason="",
        call_timestamp=T,
        variables={},
    )
    base.update(kw)
    return ExportRow(**base)


def parse(chunks):
    data = b"".join(chunks).decode("utf-8")
    return list(csv.reader(io.StringIO(data, newline="")))


def test_columns_match_the_seed():
    assert EXPORT_COLUMNS == [
        "name",
        "phone",
        "status",
        "attempts",
        "duration_seconds",
        "failure_reason",
        "call_timestamp",
    ]


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠"])
def test_every_injection_prefix_is_neutralized(prefix):
    value = prefix + "HYPERLINK(\"http://evil\")"
    assert neutralize_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["", "Ada", "'already", "1+1", " =x", "a=b", "0", "14155552671", "x\n=y"])
def test_harmless_cells_unchanged(value):
    assert neutralize_cell(value) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # E.164 and any "+" followed only by ASCII digits: a number, written as is.
        ("+14155552671", "+14155552671"),
        ("+442071838750", "+442071838750"),
        ("+1", "+1"),
        ("+0", "+0"),
        # Everything else that starts like a formula keeps its apostrophe.
        ("+", "'+"),
        ("+1+1", "'+1+1"),
        ("+1-1", "'+1-1"),
        ("+1*2", "'+1*2"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("+ 123", "'+ 123"),
        ("+123 ", "'+123 "),
        ("+123e4", "'+123e4"),
        ("+1.5", "'+1.5"),
        ("+(1)", "'+(1)"),
        ("+A1", "'+A1"),
        ("++1", "'++1"),
        ("+1\n", "'+1\n"),
        ("+1\r", "'+1\r"),
        ("+1\n=cmd", "'+1\n=cmd"),
        ("+١٢٣", "'+١٢٣"),  # Arabic-Indic digits are not exempt
        ("+１２３", "'+１２３"),  # nor full-width digits
        ("＋123", "'＋123"),  # nor a full-width plus
        ("-1", "'-1"),
        ("-14155552671", "'-14155552671"),
        ("=1+1", "'=1+1"),
        ("=HYPERLINK(\"http://evil\",\"x\")", "'=HYPERLINK(\"http://evil\",\"x\")"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("\n=1", "'\n=1"),
        ("＝1+1", "'＝1+1"),
        ("＠SUM(A1)", "'＠SUM(A1)"),
        ("－1", "'－1"),
    ],
)
def test_neutralisation_table(value, expected):
    assert neutralize_cell(value) == expected


def test_phone_numbers_are_written_as_e164():
    rows = parse(csv_chunks([row(), row(phone="+442071838750", name="+1+1")], []))
    assert rows[1][1] == "+14155552671"
    assert rows[2][1] == "+442071838750"
    assert rows[2][0] == "'+1+1"
    # a phone-like custom variable is written as is too; a formula-like one is not
    rows = parse(csv_chunks([row(variables={"alt": "+12025550123", "bad": "+1+cmd"})], ["alt", "bad"]))
    assert rows[1][7:-3] == ["+12025550123", "'+1+cmd"]


def test_header_and_values():
    rows = parse(
        csv_chunks(
            [
                row(variables={"email": "ada@example.com", "amount": "12.50"}),
                row(name="Bob", phone="+12025550123", status="failed", attempts=3, duration_seconds=0,
                    failure_reason="no_answer", call_timestamp=T + timedelta(hours=1), variables={}),
                row(name="Cy", status="cancelled", attempts=0, duration_seconds=0, call_timestamp=None),
            ],
            ["email", "amount"],
        )
    )
    assert rows[0] == EXPORT_COLUMNS + ["email", "amount"] + RESULT_COLUMNS
    assert rows[1] == ["Ada Lovelace", "+14155552671", "completed", "1", "42", "", "2024-01-15T10:31:00Z",
                       "ada@example.com", "12.50", "", "", ""]
    assert rows[2] == ["Bob", "+12025550123", "failed", "3", "0", "no_answer", "2024-01-15T11:31:00Z", "", "",
                       "", "", ""]
    assert rows[3][6] == ""  # never called
    assert rows[3][3] == "0"


def test_fractional_duration():
    rows = parse(csv_chunks([row(duration_seconds=42.5), row(duration_seconds=1 / 3)], []))
    assert rows[1][4] == "42.5"
    assert rows[2][4] == "0.333"


def test_timestamp_format():
    assert format_timestamp(None) == ""
    assert format_timestamp(datetime(2024, 1, 15, 10, 31, 5, 999_999)) == "2024-01-15T10:31:05Z"  # naive = UTC
    ny = timezone(timedelta(hours=-5))
    assert format_timestamp(datetime(2024, 1, 15, 5, 31, tzinfo=ny)) == "2024-01-15T10:31:00Z"


def test_custom_headers_are_neutralized_and_deduplicated():
    assert export_header(["Status", "email"])[7:-3] == ["var_Status", "email"]
    # every header stays distinct (case-insensitively)
    assert export_header(["status", "var_status"])[7:-3] == ["var_status", "var_var_status"]
    rows = parse(csv_chunks([row(variables={"=cmd": "@SUM(A1)"})], ["=cmd"]))
    assert rows[0][7] == "'=cmd"
    assert rows[1][7] == "'@SUM(A1)"


def test_custom_variable_cells_are_neutralized():
    tricky = {"a": "=1+2", "b": "-3", "c": "@x", "d": "\tfoo", "e": "\rbar", "f": "+1+1", "g": "\n=x"}
    rows = parse(csv_chunks([row(variables=tricky)], list(tricky)))
    assert rows[1][7:-3] == ["'=1+2", "'-3", "'@x", "'\tfoo", "'\rbar", "'+1+1", "'\n=x"]


def test_quotes_commas_newlines_round_trip():
    nasty = 'He said "hi",\nthen left\r\nagain'
    rows = parse(csv_chunks([row(name=nasty, failure_reason="a,b", variables={"note": '"quoted"'})], ["note"]))
    assert rows[1][0] == nasty
    assert rows[1][5] == "a,b"
    assert rows[1][7] == '"quoted"'


def test_utf8_and_bom():
    data = b"".join(csv_chunks([row(name="Zoë 東京")], []))
    assert "Zoë 東京".encode() in data
    assert not data.startswith(b"\xef\xbb\xbf")
    with_bom = b"".join(csv_chunks([row(name="Zoë")], [], bom=True))
    assert with_bom.startswith(b"\xef\xbb\xbf")
    assert list(csv.reader(io.StringIO(with_bom.decode("utf-8-sig"), newline="")))[0][0] == "name"


def test_crlf_line_endings_and_header_only_when_empty():
    chunks = list(csv_chunks([], ["email"]))
    assert len(chunks) == 1
    assert chunks[0] == (",".join(EXPORT_COLUMNS + ["email"] + RESULT_COLUMNS) + "\r\n").encode()


def test_chunking_is_lazy_and_bounded():
    consumed = 0

    def rows():
        nonlocal consumed
        for i in range(5000):
            consumed += 1
            yield row(name=f"Contact {i}", variables={"note": "x" * (i % 50)})

    chunk = 4096
    gen = csv_chunks(rows(), ["note"], chunk_bytes=chunk)
    first = next(gen)
    assert consumed < 200  # did not read everything to produce the first chunk
    chunks = [first, *gen]
    assert consumed == 5000
    assert len(chunks) > 10
    assert all(len(c) <= 2 * chunk for c in chunks)
    assert all(len(c) >= chunk for c in chunks[:-1])
    parsed = parse(chunks)
    assert len(parsed) == 5001
    assert parsed[-1][0] == "Contact 4999"


def test_row_larger_than_chunk_is_split_on_utf8_boundaries():
    big = "é東" * 5000  # 25,000 bytes in one cell
    chunks = list(csv_chunks([row(name=big), row(name="after")], [], chunk_bytes=1000))
    assert all(len(c) <= 2000 for c in chunks)
    for c in chunks:
        c.decode("utf-8")  # every chunk decodes on its own
    parsed = parse(chunks)
    assert parsed[1][0] == big
    assert parsed[2][0] == "after"


def test_chunk_size_must_be_sane():
    with pytest.raises(ValueError):
        list(csv_chunks([], [], chunk_bytes=0))


cell_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(cell_text, cell_text, cell_text), max_size=30),
    st.integers(min_value=4, max_value=300),
)
def test_any_text_round_trips(values, chunk):
    rows = [row(name=a, failure_reason=b, variables={"v": c}) for a, b, c in values]
    chunks = list(csv_chunks(rows, ["v"], chunk_bytes=chunk))
    assert all(len(c) <= 2 * chunk for c in chunks)
    parsed = parse(chunks)
    assert len(parsed) == len(rows) + 1
    for (a, b, c), out in zip(values, parsed[1:]):
        assert out[0] == neutralize_cell(a)
        assert out[5] == neutralize_cell(b)
        assert out[7] == neutralize_cell(c)
        for cell in (out[0], out[5], out[7]):
            # Only "+" and ASCII digits (an E.164 number) may keep its "+".
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")) or (
                cell[0] == "+" and cell[1:].isascii() and cell[1:].isdigit()
            )


@pytest.mark.parametrize(
    "status, all_, ok, failed",
    [
        ("completed", True, True, False),
        ("failed", True, False, True),
        ("invalid_number", True, False, True),
        ("blocked", True, False, True),
        ("carrier_error", True, False, True),
        ("cancelled", True, False, False),
        ("suppressed", True, False, False),
        ("pending", True, False, False),
        ("COMPLETED", True, True, False),
    ],
)
def test_filters(status, all_, ok, failed):
    assert row_matches_filter(status, "all") is all_
    assert row_matches_filter(status, "successful") is ok
    assert row_matches_filter(status, "failed") is failed
    assert row_matches_filter(status, "FAILED") is failed


def test_unknown_filter():
    with pytest.raises(ValueError):
        row_matches_filter("completed", "everything")


def test_result_columns_and_extracted_fields():
    r = row(variables={"email": "a@b.c"}, disposition="callback_requested", answered_by="human",
            summary="=HYPERLINK(x)", extracted={"budget": "1200", "summary": "dup", "ok": "true"})
    rows = parse(csv_chunks([r], ["email"], extracted_fields=["budget", "ok", "summary"]))
    assert rows[0][7:] == ["email", "disposition", "answered_by", "summary", "budget", "ok", "field_summary"]
    assert rows[1][7:] == ["a@b.c", "callback_requested", "human", "'=HYPERLINK(x)", "1200", "true", "dup"]
