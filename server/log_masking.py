"""Phone numbers masked in every log line the server process writes
(docs/design.md §7), with the one rule of ``contract.masking``.

``install()`` wraps the process's LogRecord factory: each record's message
is formatted with its args, then every E.164-looking token in it (and in the
exception text) is masked, whatever logger wrote it (ours, grpc, SQLAlchemy,
alembic) and whatever handler prints it. Idempotent.
"""

from __future__ import annotations

import logging
from typing import Any

from contract.masking import mask_text

__all__ = ["install", "mask_record"]

_FORMATTER = logging.Formatter()


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string: keep what we have, masked
        message = f"{record.msg} {record.args!r}"
    record.msg, record.args = mask_text(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = mask_text(_FORMATTER.formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = mask_text(record.stack_info)
    return record


def install() -> None:
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_batchcalls_masking", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return mask_record(previous(*args, **kwargs))

    factory._batchcalls_masking = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
