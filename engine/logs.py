"""How every process writes its log: plain lines, or with THROUGHLINE_LOG_FORMAT=json one JSON
object per line, with the trace id of the work it is about (engine.tracing)."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

from engine import tracing

PLAIN = "%(asctime)s %(name)s %(message)s"


class JsonLines(logging.Formatter):
    """`{"time", "level", "logger", "message", "trace_id"?, "error"?}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        trace_id = tracing.current_trace_id()
        if trace_id:
            entry["trace_id"] = trace_id
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def json_wanted(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return env.get("THROUGHLINE_LOG_FORMAT", "").strip().lower() == "json"


def formatter(plain: str = PLAIN) -> logging.Formatter:
    return JsonLines() if json_wanted() else logging.Formatter(plain)


def setup(level: int = logging.INFO) -> None:
    """Send this process's log to standard error in the format asked for."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
