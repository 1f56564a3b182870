"""The do-not-call page's input parsing."""

from __future__ import annotations

import re


def split_numbers(text: str) -> list[str]:
    """Phone numbers typed one per line or separated by commas/semicolons."""
    parts = re.split(r"[\s,;]+", text or "")
    seen: dict[str, None] = {}
    for p in parts:
        p = p.strip()
        if p:
            seen.setdefault(p, None)
    return list(seen)
