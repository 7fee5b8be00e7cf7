"""The provider error tree: every HTTP answer a client cannot use becomes one of these types.

Callers react to the type, never to a status code or message text::

    ProviderError
    ├── RetryableError              the request may succeed later (retried by providers/http.py)
    │   ├── RateLimitedError        429 / Google rate-limit 403s; carries retry_after
    │   └── UnavailableError        5xx, timeouts, dropped connections
    ├── PermanentError              the same request will fail again
    │   ├── NotFoundError           404
    │   ├── ForbiddenError          403 (not a rate limit)
    │   ├── ConflictError           409 (Google: duplicate id)
    │   ├── PreconditionFailedError 412 (stale etag)
    │   ├── BadRequestError         400 and other 4xx
    │   ├── GoneError               410 for a resource (Google: already deleted)
    │   ├── MissingScopeError       the user did not grant a scope calsync needs
    │   └── MalformedResponseError  the provider answered something we cannot read
    ├── CursorExpiredError          sync token / delta link is dead: drop it and full-sync
    ├── ReauthRequiredError         the grant is gone (invalid_grant): the user must reconnect
    ├── UnauthorizedError           401 on an API call: refresh the access token once
    └── ForeignLinkError            a link handed back points at a host we were not configured for
"""

from __future__ import annotations


class ProviderError(Exception):
    """Base of every provider failure; `status` and `reason` are for logs only."""

    def __init__(self, message: str = "", *, status: int | None = None, reason: str | None = None):
        super().__init__(message or self.__class__.__name__)
        self.status = status
        self.reason = reason


class RetryableError(ProviderError):
    """The request may succeed if repeated after a pause."""

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        reason: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, status=status, reason=reason)
        self.retry_after = retry_after


class RateLimitedError(RetryableError):
    """The provider asked us to slow down; `retry_after` is its hint in seconds, if any."""


class UnavailableError(RetryableError):
    """Server error, timeout or dropped connection."""


class PermanentError(ProviderError):
    """Repeating the same request will not help."""


class NotFoundError(PermanentError):
    """The calendar or event does not exist (or is not visible to this account)."""


class ForbiddenError(PermanentError):
    """The account may not do this."""


class ConflictError(PermanentError):
    """The resource already exists or conflicts with another."""


class PreconditionFailedError(PermanentError):
    """The etag sent with If-Match is stale."""


class BadRequestError(PermanentError):
    """The provider rejected the request as malformed."""


class GoneError(PermanentError):
    """The resource was deleted."""


class MissingScopeError(PermanentError):
    """The grant lacks a scope calsync needs (the user unticked it on the consent page)."""


class MalformedResponseError(PermanentError):
    """The provider's answer could not be parsed."""


class CursorExpiredError(ProviderError):
    """The sync token or delta link is no longer valid; a full sync is required."""


class ReauthRequiredError(ProviderError):
    """The refresh token was revoked or expired; only the user can fix this."""


class UnauthorizedError(ProviderError):
    """The access token was rejected (401)."""


class ForeignLinkError(ProviderError):
    """A provider-supplied link points outside the configured API host; it was not followed."""
