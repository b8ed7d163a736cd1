"""Process-wide logging set-up: human text lines (default) or one JSON object per line.

`CLOUDSEAT_LOG_FORMAT=json` is for log shippers (Loki, Elasticsearch, journald's JSON
readers): every line of stderr, uvicorn's startup and access lines included, is one object
with `time` (ISO-8601, UTC), `level`, `logger`, `message`, `node`, and `exception` when the
record carries one.  uvicorn normally installs its own handlers (`log_config`); in json mode
it installs none and its records reach the root handler set up here.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ACCESS_LOGGER = "uvicorn.access"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside values are escaped by JSON)."""

    def __init__(self, node_id: str) -> None:
        super().__init__()
        self.node_id = node_id

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "node": self.node_id,
        }
        if record.name == ACCESS_LOGGER:
            entry.update(_access_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _access_fields(record: logging.LogRecord) -> dict[str, Any]:
    """uvicorn's access record as fields: its args are (client, method, path, http version, status)."""
    args = record.args
    if not isinstance(args, tuple) or len(args) != 5:
        return {}
    client, method, path, _version, status = args
    return {"client": str(client), "method": str(method), "path": str(path), "status": status}


def setup_logging(level: str, log_format: str, node_id: str) -> None:
    """Configure the root logger once for the process (the command line calls it first thing)."""
    if log_format != "json":
        logging.basicConfig(level=level, format=TEXT_FORMAT)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(node_id))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # Python warnings become records too, not bare stderr text


def uvicorn_log_config(log_format: str) -> dict[str, Any] | None:
    """What `uvicorn.run(log_config=...)` should get: its own default for text, none for json."""
    if log_format == "json":
        return None  # uvicorn's loggers then propagate to the JSON root handler
    from uvicorn.config import LOGGING_CONFIG

    return LOGGING_CONFIG
