"""The JSON log formatter: fields, exceptions, one line per record."""

from __future__ import annotations

import json
import logging
import sys

from cloudseat.logs import JsonFormatter, uvicorn_log_config


def _record(name: str, msg: str, args: tuple = (), exc_info=None) -> logging.LogRecord:
    return logging.getLogger(name).makeRecord(name, logging.ERROR, __file__, 1, msg, args, exc_info)


def test_an_exception_is_one_line_with_its_traceback_text():
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record = _record("cloudseat.test", "failed %s", ("受理",), sys.exc_info())
    line = JsonFormatter("node-7").format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "failed 受理" and entry["level"] == "ERROR" and entry["node"] == "node-7"
    assert entry["logger"] == "cloudseat.test"
    assert entry["exception"].startswith("Traceback") and "ValueError: bad\nthing" in entry["exception"]


def test_an_access_record_carries_its_fields():
    record = _record("uvicorn.access", '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5000", "GET", "/healthz", "1.1", 200))
    entry = json.loads(JsonFormatter("n").format(record))
    assert entry["message"] == '127.0.0.1:5000 - "GET /healthz HTTP/1.1" 200'
    assert (entry["client"], entry["method"], entry["path"], entry["status"]) == ("127.0.0.1:5000", "GET", "/healthz", 200)
    assert "exception" not in entry


def test_uvicorn_keeps_its_own_config_for_text_and_none_for_json():
    assert uvicorn_log_config("json") is None
    assert "uvicorn.access" in uvicorn_log_config("text")["loggers"]
