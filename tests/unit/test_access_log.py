"""The access log: every request but accepted webhooks."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from werkzeug.test import Client

from webapp import access_log
from webapp.access_log import AccessLog


def _answering(status: int) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(f"{status} X", [("Content-Length", "2")])
        return [b"{}"]

    return app


def _logged(
    caplog: pytest.LogCaptureFixture, path: str, status: int, query: str = ""
) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="throughline.access"):
        answer = Client(AccessLog(_answering(status))).post(
            path, query_string=query, environ_base={"REMOTE_ADDR": "10.0.0.7"}
        )
    assert answer.status_code == status
    return [r.getMessage() for r in caplog.records if r.name == "throughline.access"]


@pytest.mark.parametrize("status", [200, 202])
def test_an_accepted_webhook_is_not_logged(
    caplog: pytest.LogCaptureFixture, status: int
) -> None:
    assert _logged(caplog, "/hooks/web", status) == []
    assert _logged(caplog, "/hooks/web/batch", status) == []


@pytest.mark.parametrize("status", [400, 401, 404, 409, 413, 429, 500])
def test_a_refused_webhook_is_logged_with_its_status(
    caplog: pytest.LogCaptureFixture, status: int
) -> None:
    (line,) = _logged(caplog, "/hooks/web", status)
    assert f'"POST /hooks/web HTTP/1.1" {status} 2 ' in line


def test_other_requests_are_logged_with_their_query(
    caplog: pytest.LogCaptureFixture,
) -> None:
    (line,) = _logged(caplog, "/journeys", 200, "page=2")
    assert line.startswith("10.0.0.7 ")
    assert '"POST /journeys?page=2 HTTP/1.1" 200 2 ' in line
    assert line.endswith("ms")


def test_nothing_is_formatted_when_the_log_is_off(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[str] = []
    monkeypatch.setattr(access_log, "_write", lambda *args: written.append("line"))
    with caplog.at_level(logging.WARNING, logger="throughline.access"):
        Client(AccessLog(_answering(200))).get("/journeys")
    assert written == []
    with caplog.at_level(logging.INFO, logger="throughline.access"):
        Client(AccessLog(_answering(200))).get("/journeys")
    assert written == ["line"]


@pytest.mark.security
@pytest.mark.parametrize(
    ("path", "query", "written"),
    [
        ("/api/v1/customers/email:x@y.test", "", "/api/v1/customers/email:***"),
        (
            "/api/v1/customers/email:x@y.test/timeline",
            "limit=50&before=12",
            "/api/v1/customers/email:***/timeline?limit=50&before=12",
        ),
        ("/api/v1/customers/id:a/b/consent", "", "/api/v1/customers/id:***/consent"),
        ("/api/v1/customers/42", "", "/api/v1/customers/42"),
        ("/customers/", "q=ada%40example.com&page=2", "/customers/?q=***&page=2"),
        (
            "/admin/audit",
            "actor=ada@example.com&target=17&action=customer.erase",
            "/admin/audit?actor=***&target=***&action=customer.erase",
        ),
        ("/login", "next=/customers/?q=ada", "/login?next=***"),
    ],
)
def test_identifiers_in_paths_and_queries_are_masked(
    caplog: pytest.LogCaptureFixture, path: str, query: str, written: str
) -> None:
    (line,) = _logged(caplog, path, 404, query)
    assert f'"POST {written} HTTP/1.1" 404 ' in line
