"""Structured JSON logs for the dialer, one object per line on stderr.

``log_event(logger, "call.finished", level=logging.INFO, org_id=..., ...)``
writes ``{"ts": ..., "level": "INFO", "logger": ..., "event": "call.finished",
"org_id": ..., ...}``. Phone numbers are masked (``+1202555••23``): fields
whose name says phone/number/to/from are passed through ``mask_phone``, and
any E.164-looking token in a message or string field is masked too.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from contract.masking import mask_phone, mask_text

_PHONE_FIELDS = {"phone", "phone_number", "to", "from", "to_number", "from_number", "from_phone_number", "callee"}

_STD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}



def _clean(key: str, value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if key in _PHONE_FIELDS and isinstance(value, str):
        return mask_phone(value)
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {str(k): _clean(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_clean(key, v) for v in value]
    return mask_text(str(value))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": mask_text(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key in _STD_ATTRS or key.startswith("_"):
                continue
            out[key] = _clean(key, value)
        if record.exc_info:
            out["exc"] = mask_text(self.formatException(record.exc_info))
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", stream=None) -> None:
    """Route the root logger to stderr as JSON lines (idempotent)."""
    root = logging.getLogger()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._batchcalls_json = True  # type: ignore[attr-defined]
    for h in list(root.handlers):
        if getattr(h, "_batchcalls_json", False):
            root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` with structured ``fields`` (masked by the formatter)."""
    if logger.isEnabledFor(level):
        exc_info = fields.pop("exc_info", None)
        safe = {k if k not in _STD_ATTRS else f"{k}_": v for k, v in fields.items()}
        logger.log(level, event, extra=safe, exc_info=exc_info)
