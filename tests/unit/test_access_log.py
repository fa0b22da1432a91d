"""The web server's access log: every request but accepted webhooks."""

from __future__ import annotations

import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from webapp import gunicorn_conf


def _logged(path: str, status: int) -> list[str]:
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", gunicorn_conf.access_log_format)
    logger = gunicorn_conf.AccessLogger(cfg)
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger.access_log.addHandler(handler)
    response = SimpleNamespace(
        status=f"{status} X", status_code=status, sent=2, headers=[]
    )
    environ = {
        "PATH_INFO": path,
        "RAW_URI": path,
        "REQUEST_METHOD": "POST",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "QUERY_STRING": "",
    }
    logger.access(
        response, SimpleNamespace(headers=[]), environ, timedelta(milliseconds=3)
    )
    return lines


@pytest.mark.parametrize("status", [200, 202])
def test_an_accepted_webhook_is_not_logged(status: int) -> None:
    assert _logged("/hooks/web", status) == []
    assert _logged("/hooks/web/batch", status) == []


@pytest.mark.parametrize("status", [400, 401, 404, 409, 413, 429, 500])
def test_a_refused_webhook_is_logged_with_its_status(status: int) -> None:
    (line,) = _logged("/hooks/web", status)
    assert "/hooks/web" in line and f" {status} " in line


def test_other_requests_are_logged() -> None:
    (line,) = _logged("/journeys", 200)
    assert '"POST /journeys HTTP/1.1" 200' in line
