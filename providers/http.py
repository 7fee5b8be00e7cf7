"""The one HTTP path to Google and Microsoft: pooled session, timeouts, retries, status → error.

Every provider request goes through `ProviderHttp.request`, which (1) holds a slot of the
cross-process `RequestBudget`, (2) adds the bearer token and refreshes it once on a 401,
(3) turns the answer into meaning with the provider's `raise_for_status` (the only place
that reads status codes and error bodies), and (4) retries `RetryableError`s with tenacity.
It must not know about calendars, events or our database.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
)
from yarl import URL

from providers import errors
from providers.base import NoBudget, NoObserver, RequestBudget, RequestObserver
from providers.google.wire import CURSOR_EXPIRED_REASONS, RATE_LIMIT_REASONS
from providers.outlook.wire import CURSOR_EXPIRED_CODES, RETRYABLE_STATUSES

log = structlog.get_logger(__name__)

StatusMapper = Callable[[int, Any, Mapping[str, str]], None]
# Turns a successful response's bytes into a typed body (msgspec decoders do); raises ValueError.
Decoder = Callable[[bytes], Any]
Page = TypeVar("Page")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Request-level retry: `attempts` in all, full-jitter backoff from `base` to `cap`
    seconds, and never sleeping past `deadline` seconds after the first try."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    deadline: float = 60.0


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A successful answer: status, decoded JSON body (None when empty) and headers."""

    status: int
    body: Any
    headers: Mapping[str, str]


class Authenticator(Protocol):
    """Supplies bearer tokens (providers/tokens.py implements it)."""

    async def bearer(self) -> str:
        """A currently valid access token."""
        ...

    async def refresh_after_unauthorized(self, rejected: str) -> None:
        """The provider refused `rejected`; refresh unless someone already has."""
        ...


async def read_ahead(first: Awaitable[Page], follow: Callable[[Page], Awaitable[Page] | None]) -> AsyncIterator[Page]:
    """Yield each page's body while the request for the next one (which `follow` makes from
    this body, or None on the last page) is already on the wire: the provider serves page
    N+1 while page N is parsed and stored, instead of idling between our requests."""
    pending: asyncio.Future[Page] | None = asyncio.ensure_future(first)
    try:
        while pending is not None:
            body = await pending
            following = follow(body)
            pending = asyncio.ensure_future(following) if following is not None else None
            yield body
    finally:
        if pending is not None:  # the reader stopped early, or a page failed: drop the next request
            pending.cancel()
            pending.add_done_callback(_discard)


def _discard(future: asyncio.Future[Any]) -> None:
    """Consume a dropped request's outcome, so asyncio does not report it as never retrieved."""
    if not future.cancelled():
        future.exception()


def quote_segment(value: str) -> str:
    """One path segment, percent-encoded completely (ids may contain '/', '@', '=')."""
    return quote(value, safe="")


class ProviderHttp:
    """Shared request machinery for one provider (one per provider per process)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_base: str,
        raise_for_status: StatusMapper,
        policy: RetryPolicy = RetryPolicy(),
        timeout_seconds: float = 20.0,
        budget: RequestBudget | None = None,
        provider: str = "",
        observer: RequestObserver | None = None,
    ):
        self.api_base = api_base.rstrip("/")
        self.provider = provider
        self._session = session
        self._raise_for_status = raise_for_status
        self._policy = policy
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._budget: RequestBudget = budget or NoBudget()
        self.observer: RequestObserver = observer or NoObserver()
        self._origin = _origin(self.api_base)
        self._rng = random.Random()

    def url(self, path: str) -> str:
        """An API URL from a path below the configured base."""
        return self.api_base + path

    def check_link(self, link: str) -> str:
        """Return `link` if it points at the configured API host, else raise ForeignLinkError."""
        if _origin(link) != self._origin:
            raise errors.ForeignLinkError(f"refusing link to {urlsplit(link).netloc!r}")
        return link

    async def request(
        self,
        method: str,
        url: str,
        *,
        auth: Authenticator | None = None,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        budget_key: str | None = None,
        interactive: bool = False,
        raise_for_status: StatusMapper | None = None,
        decode: Decoder | None = None,
    ) -> HttpResponse:
        """Send one logical request (retried as the policy allows) and return its answer.

        A successful body is decoded by `decode` when given (an unreadable one raises
        MalformedResponseError), else as plain JSON; error bodies are always plain JSON.
        """
        call = _Call(
            method=method,
            url=_with_query(url, params),
            auth=auth,
            json_body=json_body,
            form=form,
            headers=headers or {},
            budget_key=budget_key,
            interactive=interactive,
            raise_for_status=raise_for_status or self._raise_for_status,
            decode=decode,
        )
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(errors.RetryableError),
            stop=stop_after_attempt(self._policy.attempts) | stop_before_delay(self._policy.deadline),
            wait=self._wait,
            before_sleep=self._log_retry(call),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._authorised(call)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _authorised(self, call: _Call) -> HttpResponse:
        """One attempt; a 401 refreshes the token once and tries again at once."""
        if call.auth is None:
            return await self._send(call, None)
        token = await call.auth.bearer()
        try:
            return await self._send(call, token)
        except errors.UnauthorizedError:
            await call.auth.refresh_after_unauthorized(token)
        return await self._send(call, await call.auth.bearer())

    async def _send(self, call: _Call, token: str | None) -> HttpResponse:
        headers = {"Accept": "application/json", **call.headers}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if call.budget_key is None:
            status, raw, resp_headers = await self._exchange(call, headers)
        else:
            async with self._budget.slot(call.budget_key, interactive=call.interactive):
                status, raw, resp_headers = await self._exchange(call, headers)
        body = _typed(call.decode, raw) if call.decode is not None and status < 300 else _decode(raw)
        try:
            call.raise_for_status(status, body, resp_headers)
        except errors.RateLimitedError as exc:
            if call.budget_key is not None:
                await self._budget.penalise(call.budget_key, exc.retry_after or self._policy.base)
            raise
        if status >= 400:
            raise errors.PermanentError(f"unmapped HTTP {status}", status=status)
        return HttpResponse(status, body, resp_headers)

    async def _exchange(self, call: _Call, headers: dict[str, str]) -> tuple[int, bytes, Mapping[str, str]]:
        try:
            async with self._session.request(
                call.method,
                URL(call.url, encoded=True),
                json=call.json_body,
                data=call.form,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                raw = await resp.read()
        except TimeoutError as exc:
            self.observer.response(self.provider, "error")
            raise errors.UnavailableError("request timed out") from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            self.observer.response(self.provider, "error")
            raise errors.UnavailableError(f"connection failed: {type(exc).__name__}") from exc
        self.observer.response(self.provider, str(resp.status))
        return resp.status, raw, resp.headers

    def _wait(self, state: RetryCallState) -> float:
        """Honour the provider's Retry-After; otherwise full-jitter exponential backoff."""
        exc = state.outcome.exception() if state.outcome else None
        hint = getattr(exc, "retry_after", None)
        if hint is not None:
            return max(0.0, float(hint))
        ceiling = min(self._policy.cap, self._policy.base * 2 ** (state.attempt_number - 1))
        return self._rng.uniform(0.0, ceiling)

    def _log_retry(self, call: _Call) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            self.observer.retry(self.provider, type(exc).__name__)
            log.info(
                "provider.retry",
                provider=self.provider,
                method=call.method,
                path=urlsplit(call.url).path,  # never the query: it may hold sync tokens
                attempt=state.attempt_number,
                sleep_seconds=round(state.upcoming_sleep, 3),
                error=type(exc).__name__,
                status=getattr(exc, "status", None),
            )

        return before_sleep


@dataclass(frozen=True, slots=True)
class _Call:
    method: str
    url: str
    auth: Authenticator | None
    json_body: Any
    form: Mapping[str, str] | None
    headers: Mapping[str, str]
    budget_key: str | None
    interactive: bool
    raise_for_status: StatusMapper
    decode: Decoder | None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _with_query(url: str, params: Mapping[str, str] | None) -> str:
    if not params:
        return url
    joiner = "&" if urlsplit(url).query else "?"
    return url + joiner + urlencode(params, quote_via=quote)


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _typed(decode: Decoder, raw: bytes) -> Any:
    try:
        return decode(raw)
    except ValueError as exc:
        raise errors.MalformedResponseError(f"unreadable response: {exc}") from exc


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The Retry-After header in seconds (it may be a number, fractional, or an HTTP date)."""
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_fields(body: Any) -> tuple[str, str]:
    """(reason or code, message) from a Google or Graph error body; empty when absent."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    code = error.get("code")
    reason = code if isinstance(code, str) else ""
    details = error.get("errors")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        reason = str(details[0].get("reason", "")) or reason
    return reason, str(error.get("message", ""))


_PERMANENT_BY_STATUS: dict[int, type[errors.PermanentError]] = {
    400: errors.BadRequestError,
    403: errors.ForbiddenError,
    404: errors.NotFoundError,
    409: errors.ConflictError,
    410: errors.GoneError,
    412: errors.PreconditionFailedError,
}


def raise_for_google_status(status: int, body: Any, headers: Mapping[str, str]) -> None:
    """Google Calendar's status + `errors[0].reason` → the provider error tree."""
    if status < 400:
        return
    reason, message = _error_fields(body)
    kw: dict[str, Any] = {"status": status, "reason": reason or None}
    if status == 401:
        raise errors.UnauthorizedError(message, **kw)
    if status == 429 or (status == 403 and reason in RATE_LIMIT_REASONS):
        raise errors.RateLimitedError(message, retry_after=retry_after_seconds(headers), **kw)
    if status >= 500:
        raise errors.UnavailableError(message, retry_after=retry_after_seconds(headers), **kw)
    if status == 410 and reason in CURSOR_EXPIRED_REASONS:
        raise errors.CursorExpiredError(message, **kw)
    raise _PERMANENT_BY_STATUS.get(status, errors.BadRequestError)(message, **kw)


def raise_for_graph_status(status: int, body: Any, headers: Mapping[str, str]) -> None:
    """Microsoft Graph's status + `error.code` → the provider error tree."""
    if status < 400:
        return
    code, message = _error_fields(body)
    kw: dict[str, Any] = {"status": status, "reason": code or None}
    if status == 401:
        raise errors.UnauthorizedError(message, **kw)
    if status == 429:
        raise errors.RateLimitedError(message, retry_after=retry_after_seconds(headers), **kw)
    if status in RETRYABLE_STATUSES:
        raise errors.UnavailableError(message, retry_after=retry_after_seconds(headers), **kw)
    # Graph ends a delta chain with 410 (+ Location) or a 4xx naming the lost sync state.
    if status == 410 or code.lower() in CURSOR_EXPIRED_CODES:
        raise errors.CursorExpiredError(message, **kw)
    if code == "ErrorItemNotFound":
        raise errors.NotFoundError(message, **kw)
    raise _PERMANENT_BY_STATUS.get(status, errors.BadRequestError)(message, **kw)
