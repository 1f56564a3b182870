"""The one phone-masking rule of batchcalls, for every log line any process
writes (server, dialer, simulated carrier).

It lives in the contract package because both processes log numbers and must
agree on what a masked number looks like: an operator greps one form.
"""

from __future__ import annotations

import re

__all__ = ["mask_phone", "mask_text"]

#: An E.164-looking token inside free text (``+`` and 7-15 digits).
_E164_IN_TEXT = re.compile(r"\+\d{7,15}\b")


def mask_phone(e164: str) -> str:
    """Mask a phone number for logs: ``+12025550123`` -> ``+1202555••23``.

    Keeps ``+``, the country code and leading digits (useful to spot a
    carrier or region problem) and the last two digits (to tell numbers
    apart), always hiding at least two digits behind a fixed "••" so the
    mask does not reveal how many were hidden. Anything that is not
    ``+`` and 8-15 digits is masked entirely: garbage may be a mistyped real
    number, and logs must not leak it.
    """
    if (
        not isinstance(e164, str)
        or len(e164) < 9
        or len(e164) > 16
        or e164[0] != "+"
        or not e164.isascii()
        or not e164[1:].isdigit()
    ):
        return "••••"
    digits = e164[1:]
    head = min(7, len(digits) - 4)
    return "+" + digits[:head] + "••" + digits[-2:]


def mask_text(text: str) -> str:
    """``text`` with every E.164-looking token masked by :func:`mask_phone`."""
    return _E164_IN_TEXT.sub(lambda m: mask_phone(m.group(0)), text)
