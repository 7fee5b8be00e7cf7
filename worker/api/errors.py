"""The API's error tree; each maps to a status and renders {"error": {"code", "message"}}.

ApiError
├── BadRequest (400)          malformed JSON, wrong types, invalid values
├── Unauthorized (401)        missing/invalid bearer token (adds WWW-Authenticate)
├── Forbidden (403)
├── NotFound (404)            unknown ids, and resources of another company
├── Conflict (409)            a state that forbids the call (pending connection...)
├── PayloadTooLarge (413)
└── ServiceUnavailable (503)
"""

from __future__ import annotations

from typing import Any

from aiohttp import web


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details

    def response(self) -> web.Response:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return web.json_response({"error": body}, status=self.status, headers=self.headers())

    def headers(self) -> dict[str, str]:
        return {}


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="calsync", error="invalid_token"'}


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class ServiceUnavailable(ApiError):
    status = 503
    code = "unavailable"


def error_response(status: int, code: str, message: str) -> web.Response:
    """An error envelope for statuses raised by aiohttp itself (404 route, 405, 413)."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status)
