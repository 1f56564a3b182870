"""The carrier's record file: one JSON line per change of a call, appended.

Format (read by :func:`simcarrier.analysis.load_record`, the e2e invariant
tests and ``bench/dispatch.py``): JSON Lines, each line one
:meth:`simcarrier.calls.Call.record` written compactly; a call appears once
when placed, again when it ends and again on each duplicate POST, and the
last line per ``call_id`` wins.
"""

from __future__ import annotations

import json
from typing import Any, TextIO


class RecordFile:
    """Appends call records to a file, or does nothing without a path."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        # Open for the life of the process; close() closes it.
        self._fh: TextIO | None = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115

    def append(self, record: dict[str, Any]) -> None:
        """Writes one line and flushes it, so a reader (or a kill -9) sees every call."""
        if self._fh is None:
            return
        self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._fh.flush()

    def truncate(self) -> None:
        """Empties the file (``POST /reset``)."""
        if self._fh is None:
            return
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
