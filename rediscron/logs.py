"""Structured log lines: each scheduler event carries its fields, and a JSON formatter prints them.

A record of a scheduler event has ``record.rediscron``, a dict such as
``{"event": "fire", "job_id": "metric:pm25", "slot": 1795395111, "lag": 0.004, ...}``.
Events: ``fire``, ``already_enqueued``, ``overlap_skip``, ``missed``, ``ended``, ``quarantine``,
``lock_acquired``, ``lock_retaken``, ``lock_lost``, ``lock_released``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any


def fields(event: str, **values: Any) -> dict[str, Any]:
    """The ``extra=`` of a scheduler event's log call."""
    return {"rediscron": {"event": event, **values}}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "rediscron", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
