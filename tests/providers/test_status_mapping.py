"""The status → error choke points of providers/http.py and providers/oauth.py, as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from providers import errors
from providers.http import raise_for_google_status, raise_for_graph_status, retry_after_seconds
from providers.oauth import raise_for_oauth_status


def google_body(code: int, reason: str) -> dict[str, Any]:
    return {"error": {"errors": [{"domain": "global", "reason": reason, "message": "m"}], "code": code, "message": "m"}}


def graph_body(code: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": "m", "innerError": {"request-id": "r"}}}


GOOGLE = [
    (401, "authError", errors.UnauthorizedError),
    (429, "rateLimitExceeded", errors.RateLimitedError),
    (403, "rateLimitExceeded", errors.RateLimitedError),
    (403, "userRateLimitExceeded", errors.RateLimitedError),
    (403, "quotaExceeded", errors.RateLimitedError),
    (403, "forbiddenForNonOrganizer", errors.ForbiddenError),
    (500, "backendError", errors.UnavailableError),
    (503, "backendError", errors.UnavailableError),
    (410, "fullSyncRequired", errors.CursorExpiredError),
    (410, "updatedMinTooLongAgo", errors.CursorExpiredError),
    (410, "deleted", errors.GoneError),
    (404, "notFound", errors.NotFoundError),
    (409, "duplicate", errors.ConflictError),
    (412, "conditionNotMet", errors.PreconditionFailedError),
    (400, "timeRangeEmpty", errors.BadRequestError),
    (405, "", errors.BadRequestError),
]


@pytest.mark.parametrize(("status", "reason", "error"), GOOGLE)
def test_google_statuses(status: int, reason: str, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        raise_for_google_status(status, google_body(status, reason), {})
    assert type(caught.value) is error


GRAPH = [
    (401, "InvalidAuthenticationToken", errors.UnauthorizedError),
    (429, "ApplicationThrottled", errors.RateLimitedError),
    (503, "ServiceUnavailable", errors.UnavailableError),
    (504, "GatewayTimeout", errors.UnavailableError),
    (410, "SyncStateNotFound", errors.CursorExpiredError),
    (400, "syncStateNotFound", errors.CursorExpiredError),
    (400, "resyncRequired", errors.CursorExpiredError),
    (404, "ErrorItemNotFound", errors.NotFoundError),
    (400, "ErrorItemNotFound", errors.NotFoundError),
    (403, "ErrorAccessDenied", errors.ForbiddenError),
    (412, "ErrorIrresolvableConflict", errors.PreconditionFailedError),
    (400, "BadRequest", errors.BadRequestError),
    (501, "NotImplemented", errors.BadRequestError),
]


@pytest.mark.parametrize(("status", "code", "error"), GRAPH)
def test_graph_statuses(status: int, code: str, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        raise_for_graph_status(status, graph_body(code), {})
    assert type(caught.value) is error


OAUTH = [
    (400, "invalid_grant", errors.ReauthRequiredError),
    (400, "interaction_required", errors.ReauthRequiredError),
    (400, "consent_required", errors.ReauthRequiredError),
    (401, "invalid_client", errors.ForbiddenError),
    (400, "invalid_scope", errors.BadRequestError),
    (503, "temporarily_unavailable", errors.UnavailableError),
    (429, "", errors.RateLimitedError),
]


@pytest.mark.parametrize(("status", "code", "error"), OAUTH)
def test_token_endpoint_statuses(status: int, code: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        raise_for_oauth_status(status, {"error": code, "error_description": "AADSTS70008: secret-ish"}, {})


@pytest.mark.parametrize("mapper", [raise_for_google_status, raise_for_graph_status, raise_for_oauth_status])
@pytest.mark.parametrize("status", [200, 201, 204, 304])
def test_success_passes(mapper: Any, status: int) -> None:
    mapper(status, None, {})


@pytest.mark.parametrize("body", [None, "<html>bad gateway</html>", {"error": "text"}, [1, 2]])
def test_odd_error_bodies_still_map_by_status(body: Any) -> None:
    with pytest.raises(errors.UnavailableError):
        raise_for_google_status(502, body, {})
    with pytest.raises(errors.NotFoundError):
        raise_for_graph_status(404, body, {})


def test_retry_after_header_forms() -> None:
    assert retry_after_seconds({"Retry-After": "7"}) == 7.0
    assert retry_after_seconds({"Retry-After": "0.25"}) == 0.25
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (retry_after_seconds({"Retry-After": later}) or 0) <= 30
    with pytest.raises(errors.RateLimitedError) as error:
        raise_for_graph_status(429, None, {"Retry-After": "3"})
    assert error.value.retry_after == 3.0
