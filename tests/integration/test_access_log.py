"""The app writes the access log of its requests (the log itself: tests/unit/test_access_log.py)."""

from __future__ import annotations

import logging

import pytest
from flask import Flask


def test_the_app_logs_its_requests(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="throughline.access"):
        assert app.test_client().get("/healthz").status_code == 200
    (line,) = [r.getMessage() for r in caplog.records if r.name == "throughline.access"]
    assert '"GET /healthz HTTP/1.1" 200 ' in line
