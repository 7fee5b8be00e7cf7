"""Per-connection access tokens: the only code that refreshes them.

One `AccessTokens` per connection hands out a valid bearer token, refreshes it shortly
before expiry or after the provider rejects it, and lets only one refresh run at a time
however many requests are waiting (a lock plus a second look inside it). Clients never
see refresh tokens. A refresh the provider refuses for good raises ReauthRequiredError,
and every later caller gets the same error without another request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from providers import errors, oauth
from providers.http import ProviderHttp

# Called after every successful refresh: (access_token, expires_at, rotated refresh token
# or None). Microsoft rotates refresh tokens, so the caller must persist the new one.
RefreshCallback = Callable[[str, datetime, str | None], Awaitable[None]]

# Refresh this long before the stated expiry so a token never dies in flight.
EXPIRY_MARGIN = timedelta(seconds=60)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AccessTokens:
    """Bearer tokens for one connection, refreshed with a single flight."""

    def __init__(
        self,
        http: ProviderHttp,
        provider: oauth.OAuthProvider,
        *,
        refresh_token: str,
        access_token: str | None = None,
        expires_at: datetime | None = None,
        on_refresh: RefreshCallback | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ):
        self._http = http
        self._provider = provider
        self._refresh_token = refresh_token
        self._access_token = access_token
        self._expires_at = expires_at
        self._on_refresh = on_refresh
        self._clock = clock
        self._lock = asyncio.Lock()
        self._dead: errors.ReauthRequiredError | None = None
        self.refresh_count = 0  # for status pages and tests

    def __repr__(self) -> str:
        return f"AccessTokens(provider={self._provider.name!r}, expires_at={self._expires_at!r})"

    async def bearer(self) -> str:
        """A valid access token, refreshing first if the cached one is (nearly) expired."""
        token = self._access_token
        if token is not None and self._fresh():
            return token
        async with self._lock:
            if self._access_token is None or not self._fresh():
                await self._refresh()
            assert self._access_token is not None
            return self._access_token

    async def refresh_after_unauthorized(self, rejected: str) -> None:
        """The provider refused `rejected`: refresh, unless another request already did."""
        async with self._lock:
            if self._access_token == rejected:
                await self._refresh()

    def _fresh(self) -> bool:
        return self._expires_at is None or self._clock() < self._expires_at - EXPIRY_MARGIN

    async def _refresh(self) -> None:
        if self._dead is not None:
            raise self._dead
        try:
            tokens = await oauth.refresh(
                self._http, self._provider, refresh_token=self._refresh_token, now=self._clock()
            )
        except errors.ReauthRequiredError as exc:
            self._dead = exc
            self._http.observer.token_refresh(self._provider.name, "invalid_grant")
            raise
        except errors.ProviderError:
            self._http.observer.token_refresh(self._provider.name, "error")
            raise
        self._http.observer.token_refresh(self._provider.name, "ok")
        self.refresh_count += 1
        rotated = tokens.refresh_token if tokens.refresh_token not in (None, self._refresh_token) else None
        self._access_token, self._expires_at = tokens.access_token, tokens.expires_at
        if rotated is not None:
            self._refresh_token = rotated
        if self._on_refresh is not None:
            await self._on_refresh(tokens.access_token, tokens.expires_at, rotated)
