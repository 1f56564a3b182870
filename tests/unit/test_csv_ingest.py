"""CSV ingestion rules (server.domain.csv_ingest), one test per rule."""

from __future__ import annotations

import dataclasses

import pytest

from server.domain.csv_ingest import (
    CsvLimits,
    CsvRejected,
    CsvReport,
    assemble_report,
    detect_delimiter,
    is_plausible_email,
    split_csv,
    validate_csv,
)
from server.domain.phone import phone_outcomes

A, B, C, D, E = "+14155552671", "+442071838750", "+919876543210", "+81312345678", "+61212345678"


def run(text: str | bytes, region: str | None = None, **kw: object) -> CsvReport:
    content = text.encode() if isinstance(text, str) else text
    report = validate_csv(content, "contacts.csv", region, **kw)  # type: ignore[arg-type]
    assert_counts(report)
    return report


def assert_counts(report: CsvReport) -> None:
    assert report.total_rows == (
        report.valid_rows
        + len(report.invalid_rows)
        + len(report.duplicate_rows)
        + report.empty_rows
    )


def rejected(text: str | bytes, filename: str = "c.csv", **kw: object) -> CsvRejected:
    content = text.encode() if isinstance(text, str) else text
    with pytest.raises(CsvRejected) as info:
        validate_csv(content, filename, **kw)  # type: ignore[arg-type]
    return info.value


# --- file type and size ----------------------------------------------------


@pytest.mark.parametrize("name", ["contacts.txt", "contacts.xlsx", "contacts", "csv", "a.csv.exe"])
def test_only_csv_extension(name: str) -> None:
    err = rejected(f"phone\n{A}\n", filename=name)
    assert err.reason == "FILE_TYPE" and err.field == "filename"


@pytest.mark.parametrize("name", ["a.csv", "A.CSV", "list.Csv"])
def test_csv_extension_case_insensitive(name: str) -> None:
    assert validate_csv(f"phone\n{A}\n".encode(), name).valid_rows == 1


def test_file_too_large_checked_before_decoding() -> None:
    limits = CsvLimits(max_bytes=100)
    err = rejected(b"\xff" * 101, limits=limits)  # would be ENCODING if decoded
    assert err.reason == "FILE_TOO_LARGE" and err.field == "csv_content"


def test_file_at_size_limit_is_accepted() -> None:
    body = f"phone\n{A}\n".encode()
    assert validate_csv(body, "a.csv", limits=CsvLimits(max_bytes=len(body))).valid_rows == 1


def test_default_limit_is_10_mb() -> None:
    assert CsvLimits().max_bytes == 10 * 1024 * 1024
    err = rejected(b"phone\n" + b" " * (10 * 1024 * 1024))
    assert err.reason == "FILE_TOO_LARGE" and "10 MB" in err.message


def test_too_many_valid_contacts_says_how_many() -> None:
    rows = "\n".join([A, B, C, D])
    err = rejected(f"phone\n{rows}\n", limits=CsvLimits(max_contacts=3))
    assert err.reason == "TOO_MANY_CONTACTS"
    assert "4 valid contacts" in err.message and "limit is 3" in err.message


def test_contact_limit_counts_valid_contacts_only() -> None:
    text = f"phone\n{A}\n{B}\nbad\n{A}\n\n"
    report = run(text, limits=CsvLimits(max_contacts=2))
    assert report.valid_rows == 2


def test_default_contact_limit_is_10_000() -> None:
    assert CsvLimits().max_contacts == 10_000
    numbers = [f"+1415{n}" for n in range(2_000_000, 2_010_001)]
    err = rejected("phone\n" + "\n".join(numbers))
    assert err.reason == "TOO_MANY_CONTACTS" and "10,001 valid contacts" in err.message


def test_too_many_data_rows_bounds_work() -> None:
    text = "phone\n" + "bad\n" * 6
    assert rejected(text, limits=CsvLimits(max_rows=5)).reason == "TOO_MANY_CONTACTS"


# --- phone column and header detection --------------------------------------


@pytest.mark.parametrize("header", ["phone", "Phone", "PHONE", " Phone ", "pHoNe"])
def test_phone_column_case_and_space_insensitive(header: str) -> None:
    report = run(f"name,{header}\nAda,{A}\n")
    assert report.header_detected and report.contacts[0].phone == A


def test_no_phone_column_uses_seed_wording() -> None:
    err = rejected("name,email\nAda,ada@example.com\n")
    assert err.reason == "NO_PHONE_COLUMN"
    assert err.message.startswith("CSV must have 'phone' column")
    assert "first row contains headers" in err.message


def test_headerless_file_uses_the_phone_like_column() -> None:
    report = run(f"Ada,{A},x\nBob,{B},y\nCy,{C},z\n")
    assert not report.header_detected
    assert report.valid_rows == 3 and report.total_rows == 3
    assert report.contacts[0].row_number == 1
    assert "no header row found; column 2 used as phone" in report.warnings
    assert report.contacts[0].variables == {"column_1": "Ada", "column_3": "x"}


def test_headerless_single_column() -> None:
    report = run(f"{A}\n{B}\n")
    assert not report.header_detected and report.valid_rows == 2


def test_headerless_ambiguous_columns_rejected() -> None:
    err = rejected(f"{A},{B}\n{C},{D}\n")
    assert err.reason == "NO_PHONE_COLUMN"


def test_first_row_not_phone_like_and_no_header_rejected() -> None:
    assert rejected(f"mobile,name\n{A},Ada\n").reason == "NO_PHONE_COLUMN"


def test_header_row_is_row_1_and_first_data_row_is_2() -> None:
    report = run(f"phone\n{A}\n{B}\n")
    assert [c.row_number for c in report.contacts] == [2, 3]


def test_blank_lines_before_header_are_skipped() -> None:
    report = run(f"\n\nphone\n{A}\n")
    assert report.total_rows == 1 and report.contacts[0].row_number == 4
    assert any("skipped" in w for w in report.warnings)


# --- encoding -------------------------------------------------------------


def test_utf8_with_bom() -> None:
    report = run(("\ufeffphone,name\n" + f"{A},Zoë\n").encode("utf-8"))
    assert report.contacts[0].name == "Zoë" and report.header_detected


def test_utf8_without_bom() -> None:
    assert run(f"phone,name\n{A},Zoë\n".encode()).contacts[0].name == "Zoë"


def test_binary_is_not_text() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    err = rejected(png)
    assert err.reason == "NOT_TEXT" and "not a text CSV" in err.message


def test_nul_byte_is_not_text() -> None:
    assert rejected(f"phone\n{A}\x00\n").reason == "NOT_TEXT"


def test_invalid_utf8_reports_offset_and_line() -> None:
    content = f"phone,name\n{A},Ada\n{B},Jos\xe9\n".encode("latin-1")
    err = rejected(content)
    assert err.reason == "ENCODING"
    assert "offset" in err.message and "line 3" in err.message


def test_utf16_is_an_encoding_error() -> None:
    err = rejected(f"phone\n{A}\n".encode("utf-16"))
    assert err.reason == "ENCODING" and "UTF-16" in err.message


# --- delimiters and quoting -----------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiters_detected(delimiter: str) -> None:
    text = delimiter.join(["phone", "name", "city"]) + "\n"
    text += delimiter.join([A, "Ada", "Paris"]) + "\n"
    report = run(text)
    assert report.delimiter == delimiter
    assert report.contacts[0].variables == {"city": "Paris"}


def test_semicolon_file_with_commas_inside_quotes() -> None:
    report = run(f'phone;name;note\n{A};"Lovelace, Ada";"a, b, c"\n')
    assert report.delimiter == ";"
    assert report.contacts[0].name == "Lovelace, Ada"


def test_delimiter_fallback_counts_header_outside_quotes() -> None:
    assert detect_delimiter('"a;b",phone\n') == ","
    assert detect_delimiter("phone\n") == ","
    assert detect_delimiter("phone;name\n") == ";"


def test_quoted_fields_with_commas_quotes_and_newlines() -> None:
    text = f'phone,name,note\n{A},"Smith, John","said ""hi""\nthen left"\n{B},Bo,x\n'
    report = run(text)
    first, second = report.contacts
    assert first.name == "Smith, John"
    assert first.variables["note"] == 'said "hi"\nthen left'
    assert first.row_number == 2 and second.row_number == 4


def test_crlf_line_endings() -> None:
    report = run(f"phone,name\r\n{A},Ada\r\n{B},Bob\r\n")
    assert [c.row_number for c in report.contacts] == [2, 3]


def test_unterminated_quote_is_malformed() -> None:
    err = rejected(f'phone,name\n{A},"Ada\n{B},Bob\n{C},Cy\n')
    assert err.reason == "MALFORMED" and "line 2" in err.message


# --- phone rules ----------------------------------------------------------


def test_plus_number_with_punctuation_normalized_and_counted() -> None:
    report = run(f"phone\n+1 (415) 555-2671\n{B}\n+91 98765.43210\n")
    assert [c.phone for c in report.contacts] == [A, B, C]
    assert report.normalized_count == 2
    assert [c.normalized for c in report.contacts] == [True, False, True]


def test_missing_country_code_invalid_without_region() -> None:
    report = run(f"phone\n4155552671\n{A}\n")
    assert report.invalid_rows[0].reason.startswith("missing country code")
    assert report.invalid_rows[0].value == "4155552671"


def test_missing_country_code_accepted_with_region() -> None:
    report = run("phone\n(415) 555-2671\n", region="US")
    assert report.contacts[0].phone == A and report.normalized_count == 1


def test_00_prefix_invalid() -> None:
    report = run(f"phone\n00442071838750\n{A}\n", region="GB")
    assert report.invalid_rows[0].row_number == 2


def test_invalid_number_for_country() -> None:
    report = run(f"phone\n+11234567890\n{A}\n")
    assert report.invalid_rows[0].reason == "not a valid phone number for its country"


def test_letters_in_phone_invalid() -> None:
    report = run(f"phone\n+1-800-FLOWERS\n{A}\n")
    assert "letters" in report.invalid_rows[0].reason


def test_empty_phone_with_other_cells_is_invalid_not_empty() -> None:
    report = run(f"phone,name\n,Ada\n{A},Bob\n")
    assert report.invalid_rows[0].reason == "phone is empty" and report.empty_rows == 0


def test_e164_reason_wording() -> None:
    report = run(f"phone\n+1\n{A}\n")
    assert report.invalid_rows[0].reason


def test_unknown_default_region_rejected_as_argument() -> None:
    err = rejected(f"phone\n{A}\n", default_region="XX")
    assert err.reason == "INVALID_REGION" and err.field == "default_region"


# --- duplicates and empty rows ----------------------------------------------


def test_duplicates_after_normalization_point_to_first() -> None:
    report = run(f"phone\n{A}\n{B}\n+1 415-555-2671\n{A}\n")
    assert report.valid_rows == 2
    assert [(d.row_number, d.duplicate_of_row, d.phone) for d in report.duplicate_rows] == [
        (4, 2, A),
        (5, 2, A),
    ]


def test_invalid_row_does_not_claim_a_phone() -> None:
    report = run(f"phone,email\n{A},bad\n{A},a@b.co\n")
    assert report.valid_rows == 1 and report.contacts[0].row_number == 3
    assert not report.duplicate_rows


def test_empty_rows_removed_and_counted() -> None:
    report = run(f"phone,name\n{A},Ada\n\n,\n  ,  \n{B},Bob\n")
    assert report.empty_rows == 3 and report.valid_rows == 2 and report.total_rows == 5


# --- row shape --------------------------------------------------------------


def test_short_row_is_padded() -> None:
    report = run(f"phone,name,city\n{A}\n")
    contact = report.contacts[0]
    assert contact.name == "" and contact.variables == {"city": ""}


def test_long_row_is_invalid() -> None:
    report = run(f"phone,name\n{A},Ada,extra\n{B},Bob\n")
    assert report.invalid_rows[0].reason == "row has 3 columns, header has 2"


def test_trailing_blank_extra_cells_are_tolerated() -> None:
    report = run(f"phone,name\n{A},Ada,,\n")
    assert report.valid_rows == 1


def test_too_many_columns_rejected() -> None:
    header = ",".join(["phone"] + [f"c{i}" for i in range(5)])
    err = rejected(f"{header}\n{A}\n", limits=CsvLimits(max_columns=5))
    assert err.reason == "TOO_MANY_COLUMNS"


# --- name, email, custom columns ------------------------------------------


def test_name_and_email_columns_case_insensitive() -> None:
    report = run(f"NAME, Email ,Phone\nAda,ada@example.com,{A}\n")
    contact = report.contacts[0]
    assert (contact.name, contact.email) == ("Ada", "ada@example.com")
    assert report.custom_columns == []


def test_invalid_email_makes_row_invalid() -> None:
    report = run(f"phone,email\n{A},not-an-email\n{B},\n")
    assert report.invalid_rows[0].reason == "invalid email"
    assert report.invalid_rows[0].value == "not-an-email"
    assert report.contacts[0].email == ""  # blank email is fine


def test_is_plausible_email() -> None:
    assert is_plausible_email("a.b+c@example.co.uk")
    for bad in ["a@b", "@b.com", "a@@b.com", "a b@c.com", "a@.com", "a@b..com", "x" * 300]:
        assert not is_plausible_email(bad)


def test_custom_columns_kept_in_file_order_and_stripped() -> None:
    report = run(f"zip,phone, city ,name\n 75001 ,{A}, Paris ,Ada\n")
    assert report.custom_columns == ["zip", "city"]
    assert report.contacts[0].variables == {"zip": "75001", "city": "Paris"}


def test_blank_header_cell_warned_and_ignored() -> None:
    report = run(f"phone,,city\n{A},ignored,Paris\n")
    assert report.custom_columns == ["city"]
    assert report.contacts[0].variables == {"city": "Paris"}
    assert any("blank header" in w for w in report.warnings)


def test_duplicate_header_renamed_with_suffix() -> None:
    report = run(f"phone,tag,Tag,tag\n{A},a,b,c\n")
    assert report.custom_columns == ["tag", "Tag_2", "tag_3"]
    assert report.contacts[0].variables == {"tag": "a", "Tag_2": "b", "tag_3": "c"}
    assert sum("duplicate column" in w for w in report.warnings) == 2


def test_second_phone_column_becomes_custom() -> None:
    report = run(f"phone,phone\n{A},{B}\n")
    assert report.contacts[0].phone == A
    assert report.contacts[0].variables == {"phone_2": B}


# --- lengths ----------------------------------------------------------------


def test_cell_longer_than_limit_makes_row_invalid() -> None:
    report = run(f"phone,note\n{A},{'x' * 1001}\n{B},ok\n")
    assert "longer than 1000" in report.invalid_rows[0].reason
    assert len(report.invalid_rows[0].value) == 100


def test_cell_at_limit_is_fine() -> None:
    assert run(f"phone,note\n{A},{'x' * 1000}\n").valid_rows == 1


def test_name_longer_than_200_invalid() -> None:
    report = run(f"phone,name\n{A},{'n' * 201}\n{B},{'n' * 200}\n")
    assert report.invalid_rows[0].reason == "name is longer than 200 characters"
    assert report.valid_rows == 1


def test_invalid_value_truncated_to_100() -> None:
    report = run(f"phone\n+{'1' * 30}{'a' * 200}\n{A}\n")
    assert len(report.invalid_rows[0].value) == 100


# --- whole-file rejections ----------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"   \n\n", b"\xef\xbb\xbf", b",,,\n,,\n", b"\t\t\n"])
def test_empty_file(content: bytes) -> None:
    assert rejected(content).reason == "EMPTY_FILE"


def test_header_only_is_no_valid_rows() -> None:
    err = rejected("phone,name\n")
    assert err.reason == "NO_VALID_ROWS"


def test_no_valid_rows_message_has_counts() -> None:
    err = rejected("phone\nbad\n+1\n\n")
    assert err.reason == "NO_VALID_ROWS"
    assert "3 rows" in err.message and "2 invalid" in err.message and "1 empty" in err.message


def test_require_valid_false_returns_empty_report() -> None:
    report = run("phone\nbad\n", require_valid=False)
    assert report.valid_rows == 0 and len(report.invalid_rows) == 1
    assert run("phone\n", require_valid=False).total_rows == 0


def test_rejection_is_picklable_and_comparable() -> None:
    import pickle

    err = rejected("name\nx\n")
    assert pickle.loads(pickle.dumps(err)) == err


# --- structure of the API ---------------------------------------------------


def test_dataclasses_are_frozen() -> None:
    contact = run(f"phone\n{A}\n").contacts[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        contact.phone = B  # type: ignore[misc]
    assert contact == dataclasses.replace(contact)


def test_phases_compose_to_validate_csv() -> None:
    content = f"phone,name\n{A},Ada\nbad,Bob\n{A},Cy\n".encode()
    split = split_csv(content, "a.csv")
    report = assemble_report(split, phone_outcomes(split.phones, None))
    assert report == validate_csv(content, "a.csv")


def test_ten_thousand_rows_validate() -> None:
    numbers = [f"+1415555{i:04d}" for i in range(10_000)]
    content = ("phone,name\n" + "\n".join(f"{n},P{i}" for i, n in enumerate(numbers))).encode()
    report = validate_csv(content, "big.csv")
    assert_counts(report)
    assert report.total_rows == 10_000


def test_excel_sep_line_sets_delimiter() -> None:
    report = run(f"sep=;\nphone;name\n{A};Lovelace, Ada\n")
    assert report.delimiter == ";" and report.contacts[0].row_number == 3
    assert report.contacts[0].name == "Lovelace, Ada"


def test_excel_workbook_is_not_text_with_hint() -> None:
    err = rejected(b"PK\x03\x04\x14\x00\x06\x00rest-of-zip")
    assert err.reason == "NOT_TEXT" and "Excel" in err.message


def test_unterminated_quote_in_header_is_malformed() -> None:
    assert rejected(f'phone,"name\n{A},Ada\n').reason == "MALFORMED"


def test_multiline_last_record_that_is_closed_is_fine() -> None:
    report = run(f'phone,note\n{A},"two\nlines"\n')
    assert report.contacts[0].variables == {"note": "two\nlines"}


def test_cell_beyond_csv_field_limit_is_malformed() -> None:
    err = rejected(f"phone,note\n{A},{'x' * 200_000}\n")
    assert err.reason == "MALFORMED" and "line 2" in err.message
