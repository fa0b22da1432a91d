"""JSON error answers for the API: a status, a code, a sentence, and the field at fault."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from engine.channels import ChannelError
from engine.journeys import JourneyError
from engine.simulate import SimulationError
from webapp.api import bp

CODES = {
    400: "bad_request",
    404: "not_found",
    409: "conflict",
    412: "stale_revision",
    422: "invalid",
}


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, field: str | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status, self.field, self.extra = status, field, extra


def answer(status: int, message: str, field: str | None = None, **extra: Any) -> Any:
    body: dict[str, Any] = {"code": CODES.get(status, "error"), "message": message}
    if field is not None:
        body["field"] = field
    response = jsonify(error=body, **extra)
    response.status_code = status
    return response


def json_body() -> Any:
    """The request's JSON body, or ApiError(400) saying why it is not one."""
    if not request.data:
        raise ApiError(400, "send a JSON body with Content-Type: application/json")
    body = request.get_json(silent=True, force=True)
    if body is None:
        raise ApiError(400, "the body is not valid JSON")
    return body


@bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> Any:
    return answer(error.status, str(error), error.field, **error.extra)


@bp.errorhandler(ChannelError)
def _channel_error(error: ChannelError) -> Any:
    return answer(422, str(error), error.field)


@bp.errorhandler(SimulationError)
def _simulation_error(error: SimulationError) -> Any:
    return answer(422, str(error), error.field or None)


@bp.errorhandler(JourneyError)
def _journey_error(error: JourneyError) -> Any:
    if error.problems:
        return answer(
            error.status, str(error), problems=[p.to_dict() for p in error.problems]
        )
    return answer(error.status, str(error))
