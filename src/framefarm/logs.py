"""Logging for the service and nodes: readable lines, or one JSON object per line
(``FRAMEFARM_LOG_JSON=true``) carrying job, task and node ids when a record has them."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os

_CONTEXT = ("job_id", "task_id", "node_id", "tenant_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _CONTEXT:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup(json_lines: bool | None = None, level: int = logging.INFO) -> None:
    if json_lines is None:
        json_lines = os.environ.get("FRAMEFARM_LOG_JSON", "").lower() in ("1", "true", "yes")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
