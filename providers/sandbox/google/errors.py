"""Google's error bodies: Calendar API errors and OAuth token-endpoint errors.

Calendar errors have the shape
`{"error": {"errors": [{"domain", "reason", "message", ...}], "code", "message"}}`;
`GoogleError` carries one and the wire layer renders it. OAuth endpoints answer
`{"error": "invalid_grant", "error_description": "..."}` instead (`OAuthError`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

# reason -> (status, domain, message) for the catalogue in provider-apis.md §1.10
CATALOGUE: dict[str, tuple[int, str, str]] = {
    "badRequest": (400, "global", "Bad Request"),
    "invalid": (400, "global", "Invalid Value"),
    "required": (400, "global", "Required"),
    "timeRangeEmpty": (400, "calendar", "The specified time range is empty."),
    "authError": (401, "global", "Invalid Credentials"),
    "forbidden": (403, "global", "Forbidden"),
    "insufficientPermissions": (403, "global", "Insufficient Permission"),
    "rateLimitExceeded": (403, "usageLimits", "Rate Limit Exceeded"),
    "userRateLimitExceeded": (403, "usageLimits", "User Rate Limit Exceeded"),
    "quotaExceeded": (403, "usageLimits", "Calendar usage limits exceeded."),
    "notFound": (404, "global", "Not Found"),
    "duplicate": (409, "global", "The requested identifier already exists."),
    "conflict": (409, "global", "Conflict"),
    "fullSyncRequired": (
        410,
        "calendar",
        "Sync token is no longer valid, a full sync is required.",
    ),
    "updatedMinTooLongAgo": (
        410,
        "calendar",
        "The requested minimum modification time lies too far in the past.",
    ),
    "deleted": (410, "global", "Resource has been deleted"),
    "conditionNotMet": (412, "global", "Precondition Failed"),
    "backendError": (500, "global", "Backend Error"),
}

# the reason an injected fault of a bare status gets
DEFAULT_REASON = {
    400: "badRequest",
    401: "authError",
    403: "rateLimitExceeded",
    404: "notFound",
    409: "conflict",
    410: "deleted",
    412: "conditionNotMet",
    429: "rateLimitExceeded",
}


class GoogleError(Exception):
    """A Calendar API error with Google's reason, status and message."""

    def __init__(
        self,
        reason: str,
        message: str | None = None,
        *,
        status: int | None = None,
        location: str | None = None,
        location_type: str = "parameter",
    ) -> None:
        known_status, domain, known_message = CATALOGUE.get(reason, (400, "global", reason))
        self.reason = reason
        self.status = status or known_status
        self.domain = domain
        self.message = message or known_message
        self.location = location
        self.location_type = location_type
        super().__init__(f"{self.status} {reason}: {self.message}")

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        item: dict[str, Any] = {
            "domain": self.domain,
            "reason": self.reason,
            "message": self.message,
        }
        if self.location is not None:
            item["locationType"] = self.location_type
            item["location"] = self.location
        return {"error": {"errors": [item], "code": self.status, "message": self.message}}

    def response(self) -> web.Response:
        """The error as an aiohttp response (401 also carries WWW-Authenticate)."""
        headers = {}
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
        return web.json_response(self.body(), status=self.status, headers=headers)


def auth_error() -> GoogleError:
    """401 for a missing, unknown, expired or revoked bearer token."""
    return GoogleError("authError", location="Authorization", location_type="header")


def status_error(status: int) -> GoogleError:
    """Google's error for a bare status (used by injected faults)."""
    reason = DEFAULT_REASON.get(status, "backendError")
    if status == 401:
        return auth_error()
    if reason == "backendError":
        message = "Backend Error" if status == 500 else "The service is currently unavailable."
        return GoogleError(reason, message, status=status)
    return GoogleError(reason, status=status)


class OAuthError(Exception):
    """An OAuth endpoint error: `{"error": code, "error_description": text}`."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> web.Response:
        """The error as an aiohttp response."""
        body = {"error": self.error, "error_description": self.description}
        return web.json_response(body, status=self.status)


def fault_body(status: int, request: web.Request) -> dict[str, Any]:
    """The body an injected fault carries: OAuth shape on OAuth paths, else Calendar's."""
    if request.path.startswith("/calendar/"):
        return status_error(status).body()
    error = "invalid_request" if status < 500 else "internal_failure"
    return {"error": error, "error_description": "Injected fault"}
