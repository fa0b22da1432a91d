"""JSON error answers for the API: a status, a code, a sentence, and the field at fault."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from engine.channels import ChannelError
from engine.execution.simulate import SimulationError
from engine.intake import payload
from engine.journeys import JourneyError
from webapp.api import bp

CODES = {
    400: "bad_request",
    401: "unauthorized",
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


def json_body(max_keys: int | None = payload.MAX_KEYS) -> Any:
    """The request's JSON body, or ApiError(400) saying why it is not one (or what in it
    cannot be stored: see engine.intake.payload; `max_keys=None` for a whole journey document)."""
    data = request.get_data()
    if not data:
        raise ApiError(400, "send a JSON body with Content-Type: application/json")
    try:
        return payload.loads(data, max_keys=max_keys)
    except payload.PayloadError as error:
        raise ApiError(400, str(error), error.field) from None
    except ValueError:  # not JSON, or not UTF-8
        raise ApiError(400, "the body is not valid JSON") from None


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
    return answer(error.status, str(error), error.field)
