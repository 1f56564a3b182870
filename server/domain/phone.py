"""Phone number normalisation (to E.164) and masking for logs.

Pure functions over :mod:`phonenumbers`. ``phonenumbers.parse`` dominates the
cost of validating a CSV, so :func:`normalize_phone` calls it exactly once per
number and rejects obviously bad input (letters, stray symbols, absurd length)
with cheap string checks *before* reaching it.

Policy (the seed requires E.164, ``+12025550123``):

* ``+`` followed by digits only, valid for its country -> accepted as is.
* ``+`` number written with spaces, dashes, dots or brackets
  (``+1 (415) 555-2671``) -> normalised to E.164, ``normalized=True``.
* no ``+``: rejected ("missing country code") unless a ``default_region`` is
  given, in which case it is parsed as a national number of that region and
  counted as normalised.
* ``00`` international prefix (``0044...``): always rejected. Its meaning
  depends on the dialling country (``00`` is not the IDD prefix in the US), so
  guessing would silently call the wrong number; the reason tells the operator
  to write ``+44...`` instead.
* letters anywhere (vanity numbers ``+1-800-FLOWERS``, ``ext 12``, the
  ``1.4E+10`` a spreadsheet writes) -> invalid. ``phonenumbers`` would quietly
  translate or drop them.
* ``phonenumbers.is_valid_number`` false -> invalid.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

import phonenumbers
from phonenumbers import NumberParseException

# One masking rule for every process: re-exported so server code imports it
# from the domain like the other phone helpers.
from contract.masking import mask_phone

__all__ = [
    "PhoneResult",
    "normalize_phone",
    "normalize_phones",
    "phone_outcome",
    "phone_outcomes",
    "mask_phone",
    "check_region",
    "looks_like_phone",
    "REASON_EMPTY",
    "REASON_FORMAT",
    "REASON_INVALID",
    "REASON_NO_COUNTRY_CODE",
]

# Reasons are module constants: rows share one string object each, which keeps
# reports small and pickles compactly when results cross process boundaries.
REASON_EMPTY = "phone is empty"
REASON_FORMAT = "phone must be in E.164 format (+12025550123)"
REASON_INVALID = "not a valid phone number for its country"
REASON_NO_COUNTRY_CODE = (
    "missing country code (+…); set default_region to accept national numbers"
)
REASON_LETTERS = "phone contains letters"
REASON_SCIENTIFIC = (
    "phone was saved as a spreadsheet number (like 1.4E+10); "
    "format the column as text"
)
REASON_CHARS = "phone contains characters other than digits, spaces, + - . ( )"
REASON_IDD_00 = "international prefix 00 is not accepted; write +<country code> instead"
REASON_TOO_LONG = "phone number is too long"
REASON_TOO_SHORT = "phone number is too short"
REASON_COUNTRY = "unknown country code"

_MAX_PHONE_CHARS = 40  # E.164 is at most 16 chars; leave room for punctuation
_PUNCTUATION = frozenset(" -.()\t\u00a0")
_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: REASON_COUNTRY,
    NumberParseException.TOO_SHORT_NSN: REASON_TOO_SHORT,
    NumberParseException.TOO_SHORT_AFTER_IDD: REASON_TOO_SHORT,
    NumberParseException.TOO_LONG: REASON_TOO_LONG,
    NumberParseException.NOT_A_NUMBER: REASON_FORMAT,
}
_parse = phonenumbers.parse
_is_valid_number = phonenumbers.is_valid_number


class PhoneResult(NamedTuple):
    """Outcome of normalising one phone cell.

    A NamedTuple rather than a dataclass: tens of thousands of these are
    created per upload and sent back from worker processes, and tuples are the
    cheapest thing to build and pickle.
    """

    e164: str | None
    """Canonical E.164 form when valid, else None."""
    reason: str | None
    """Short human-readable reason when invalid, else None."""
    normalized: bool
    """True when the input was valid but not already written as exact E.164."""

    @property
    def ok(self) -> bool:
        """Whether the number is valid."""
        return self.e164 is not None


def check_region(default_region: str | None) -> str | None:
    """Validate and upper-case a default region (ISO 3166 alpha-2, e.g. "US").

    Raises ValueError for an unknown region: it is a caller mistake, not a
    problem with the file, and silently ignoring it would reject every
    national number with a misleading reason.
    """
    if default_region is None or default_region == "":
        return None
    region = default_region.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown default_region {default_region!r}; use a code like 'US'")
    return region


def _precheck(raw: str) -> str | None:
    """Cheap character-level rejection; returns a reason or None if parseable."""
    if len(raw) > _MAX_PHONE_CHARS:
        return REASON_TOO_LONG
    if not raw.isascii():
        # Allow a no-break space (spreadsheets love them); anything else
        # non-ASCII (full-width digits, letters) is rejected below.
        if any(ch.isalpha() for ch in raw):
            return REASON_LETTERS
        if any(not (ch.isascii() or ch == "\u00a0") for ch in raw):
            return REASON_CHARS
    for ch in raw:
        if ch.isdigit():
            continue
        if ch.isalpha():
            if "E+" in raw.upper() and "." in raw:
                return REASON_SCIENTIFIC
            return REASON_LETTERS
        if ch not in _PUNCTUATION and ch != "+":
            return REASON_CHARS
    if raw.count("+") > 1 or ("+" in raw and raw[0] != "+"):
        return REASON_FORMAT
    if not any(ch.isdigit() for ch in raw):
        return REASON_FORMAT
    return None


def phone_outcome(raw: str, default_region: str | None) -> str:
    """Normalise one phone cell; return its E.164 form or the reason it is invalid.

    The bulk form of :func:`normalize_phone`: a single string per number
    (E.164 strings start with ``+``, reasons never do) is the cheapest thing to
    keep for 10,000 rows and to pickle back from a worker process, and
    creates no objects the garbage collector has to track. Whether the number
    was normalised is ``outcome != raw.strip()``.

    ``default_region`` must already be checked (see :func:`check_region`); it
    is used only for numbers written without a leading ``+``.
    """
    raw = raw.strip()
    if not raw:
        return REASON_EMPTY
    if raw[0] == "+" and raw.isascii() and raw[1:].isdigit():
        if len(raw) > 16:
            return REASON_TOO_LONG
        region = None
    else:
        reason = _precheck(raw)
        if reason is not None:
            return reason
        if raw[0] == "+":
            region = None
        else:
            if raw.lstrip(" -.()\t\u00a0").startswith("00"):
                return REASON_IDD_00
            if default_region is None:
                return REASON_NO_COUNTRY_CODE
            region = default_region
    try:
        number = _parse(raw, region)
    except NumberParseException as exc:
        return _PARSE_ERRORS.get(exc.error_type, REASON_FORMAT)
    if not _is_valid_number(number):
        return REASON_INVALID
    return _format_e164(number)


def normalize_phone(raw: str, default_region: str | None) -> PhoneResult:
    """Normalise one phone cell to E.164, or say why it is invalid."""
    outcome = phone_outcome(raw, default_region)
    if outcome[0] == "+":
        return PhoneResult(outcome, None, outcome != raw.strip())
    return PhoneResult(None, outcome, False)


def phone_outcomes(raws: Iterable[str], default_region: str | None) -> list[str]:
    """:func:`phone_outcome` for many cells; the unit of work sent to workers."""
    return [phone_outcome(raw, default_region) for raw in raws]


def normalize_phones(raws: Iterable[str], default_region: str | None) -> list[PhoneResult]:
    """:func:`normalize_phone` for many cells (convenience; bulk code uses outcomes)."""
    return [normalize_phone(raw, default_region) for raw in raws]


def _format_e164(number: phonenumbers.PhoneNumber) -> str:
    """``format_number(number, E164)`` without its generic dispatch.

    Same result (``+`` country code, national significant number including
    Italian leading zeros) at a fifth of the cost; it runs once per row.
    Checked against format_number in tests.
    """
    if number.italian_leading_zero:
        zeros = number.number_of_leading_zeros
        lead = "0" * (1 if zeros is None else zeros)
        return f"+{number.country_code}{lead}{number.national_number}"
    return f"+{number.country_code}{number.national_number}"


def looks_like_phone(cell: str) -> bool:
    """Cheap guess that a cell holds a phone number (7-15 digits, phone symbols).

    Used for header auto-detection, where calling phonenumbers on every cell of
    every candidate column would cost more than the validation itself.
    """
    cell = cell.strip()
    if not cell or len(cell) > _MAX_PHONE_CHARS or not cell.isascii():
        return False
    digits = 0
    for i, ch in enumerate(cell):
        if ch.isdigit():
            digits += 1
        elif ch == "+":
            if i != 0:
                return False
        elif ch not in _PUNCTUATION:
            return False
    return 7 <= digits <= 15
