"""Graph and identity-platform (AADSTS) error bodies, raised by state and rendered by the wire.

Graph: https://learn.microsoft.com/graph/errors ; identity platform:
https://learn.microsoft.com/entra/identity-platform/reference-error-codes . Shapes are copied
from `../shared/provider-apis.md` sections 3.8 and 4.4; nothing here talks HTTP beyond
building an `aiohttp` response.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

# The code and message Graph uses for each status when nothing more specific applies.
DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "The request is malformed or incorrect."),
    401: ("InvalidAuthenticationToken", "Access token is empty."),
    403: ("ErrorAccessDenied", "Access is denied. Check credentials and try again."),
    404: ("ErrorItemNotFound", "The specified object was not found in the store."),
    409: ("ErrorConflict", "Conflict."),
    410: ("SyncStateNotFound", "The sync state generation is not found."),
    412: (
        "ErrorIrresolvableConflict",
        "The send or update operation could not be performed because the change key passed "
        "in the request does not match the current change key for the item.",
    ),
    429: (
        "ApplicationThrottled",
        "Application is over its MailboxConcurrency limit.",
    ),
    500: ("InternalServerError", "An internal server error occurred."),
    501: ("NotImplemented", "The requested feature is not implemented."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable."),
    504: ("GatewayTimeout", "The gateway did not receive a timely response."),
}


class GraphError(Exception):
    """A Graph API failure: HTTP status, Graph error code and message, extra headers."""

    def __init__(
        self,
        status: int,
        code: str | None = None,
        message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        default_code, default_message = DEFAULTS.get(status, ("UnknownError", "Unknown error."))
        self.status = status
        self.code = code or default_code
        self.message = message or default_message
        self.headers = headers or {}
        super().__init__(f"{status} {self.code}: {self.message}")


def graph_error_body(
    status: int,
    code: str | None = None,
    message: str | None = None,
    client_request_id: str | None = None,
) -> dict[str, Any]:
    """Graph's `{"error": {code, message, innerError}}` body for a status."""
    default_code, default_message = DEFAULTS.get(status, ("UnknownError", "Unknown error."))
    request_id = str(uuid.uuid4())
    return {
        "error": {
            "code": code or default_code,
            "message": message or default_message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id or request_id,
            },
        }
    }


def graph_error_response(err: GraphError, request: web.Request | None = None) -> web.Response:
    """Render a GraphError as Graph does, echoing client-request-id when sent."""
    client_id = request.headers.get("client-request-id") if request is not None else None
    body = graph_error_body(err.status, err.code, err.message, client_id)
    headers = dict(err.headers)
    if err.status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="", authorization_uri="", error="invalid_token"')
    return web.json_response(body, status=err.status, headers=headers)


# AADSTS codes the sandbox emits, with Microsoft's wording (first sentence).
AADSTS: dict[int, tuple[str, str]] = {
    50011: (
        "invalid_request",
        "The redirect URI specified in the request does not match the redirect URIs configured for the application.",
    ),
    50173: (
        "invalid_grant",
        "The provided grant has expired due to it being revoked, a fresh auth token is needed. "
        "The user might have changed or reset their password.",
    ),
    54005: (
        "invalid_grant",
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or "
        "use an existing refresh token.",
    ),
    65001: ("invalid_grant", "The user or administrator has not consented to use the application."),
    70000: ("invalid_grant", "Provided grant is invalid or malformed."),
    70008: (
        "invalid_grant",
        "The provided authorization code or refresh token has expired due to inactivity. Send "
        "a new interactive authorization request for this user and resource.",
    ),
    70011: (
        "invalid_scope",
        "The provided request must include a 'scope' input parameter. The provided value for "
        "the input parameter 'scope' is not valid.",
    ),
    700016: ("unauthorized_client", "Application with identifier was not found in the directory."),
    700082: ("invalid_grant", "The refresh token has expired due to inactivity."),
    7000218: (
        "invalid_client",
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    ),
    7000215: (
        "invalid_client",
        "Invalid client secret provided. Ensure the secret being sent in the request is the "
        "client secret value, not the client secret ID.",
    ),
    501481: (
        "invalid_grant",
        "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
    ),
    9002313: ("invalid_grant", "Invalid request. Request is malformed or invalid."),
    70003: ("unsupported_grant_type", "The app requested an unsupported grant type."),
    900144: (
        "invalid_request",
        "The request body must contain the following parameter: 'grant_type'.",
    ),
    900971: ("invalid_request", "No reply address provided."),
}


class AadError(Exception):
    """An identity-platform token error, identified by its AADSTS number."""

    def __init__(self, aadsts: int, status: int = 400, detail: str | None = None) -> None:
        self.aadsts = aadsts
        self.status = status
        self.error, self.description = AADSTS[aadsts]
        if detail:
            self.description = f"{self.description} {detail}"
        super().__init__(f"AADSTS{aadsts}")


def aad_error_body(err: AadError) -> dict[str, Any]:
    """The token endpoint's JSON error body (error, error_description, error_codes, ids)."""
    now = datetime.now(UTC)
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    description = (
        f"AADSTS{err.aadsts}: {err.description} Trace ID: {trace_id} "
        f"Correlation ID: {correlation_id} Timestamp: {stamp}"
    )
    return {
        "error": err.error,
        "error_description": description,
        "error_codes": [err.aadsts],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={err.aadsts}",
    }


def aad_error_response(err: AadError) -> web.Response:
    """Render an AadError; Microsoft answers token errors with no-store caching."""
    return web.Response(
        text=json.dumps(aad_error_body(err)),
        status=err.status,
        content_type="application/json",
        headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
    )


def render_fault(status: int) -> dict[str, Any]:
    """Default body for an injected fault on a Microsoft route (the faults renderer hook)."""
    return graph_error_body(status)
