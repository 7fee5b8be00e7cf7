"""Connecting a calendar: the authUrl, the code exchange and first links; listing; disconnecting.

The provider I/O of the connect flow lives here; handlers call these functions under a
deadline. Disconnect deletes locally first, then stops push and revokes the grant in the
background with bounded retries, so an unreachable provider never blocks it.

Extension point: `DISCONNECT_HOOKS` run after a connection's rows are deleted and before its
grant is revoked, each guarded and logged; jobs/push.py appends its "stop this connection's
channels/subscriptions" coroutine there (`connect.DISCONNECT_HOOKS.append(stop_for_connection)`).
"""

from __future__ import annotations

import asyncio
import importlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.backoff import next_attempt
from jobs.clients import ProviderKit, client_for, provider_kit
from providers import errors
from providers.base import CalendarInfo
from providers.oauth import TokenSet, account_email, authorization_url, exchange_code, pkce_pair, revoke
from worker import cache
from worker.config import Settings
from worker.db import connections as repo
from worker.db import selection
from worker.db.links import request_sync
from worker.db.resources import delete_resource
from worker.db.tables import CalendarLink, ExternalCalendar
from worker.deps import Deps
from worker.logging import get_logger
from worker.wakeups import wake

log = get_logger(__name__)

CALLBACK_PATH = "/oauth/callback"
REVOKE_ATTEMPTS = 5  # about a minute of retries at the default backoff; then it is logged and dropped
HOOK_TIMEOUT_SECONDS = 30.0  # one hook may not hold the background cleanup longer than this
# Modules that register disconnect hooks when imported; imported lazily so jobs/push.py may
# import this module without a cycle.
HOOK_MODULES = ("jobs.push",)

DisconnectHook = Callable[[Deps, ExternalCalendar, list[CalendarLink]], Awaitable[None]]
DISCONNECT_HOOKS: list[DisconnectHook] = []


class ConnectError(Exception):
    """The connect flow failed in a way the person at the browser should hear about."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NotConfigured(Exception):
    """The provider has no client id: connecting to it is impossible."""


@dataclass(frozen=True, slots=True)
class AuthLink:
    url: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Connected:
    connection_id: int
    resource_id: str
    provider: str
    account_email: str


def redirect_uri(settings: Settings) -> str:
    """Where the provider sends the browser back: our callback under the public URL."""
    return settings.server.public_url + CALLBACK_PATH


def interactive_deadline(settings: Settings) -> float:
    """How long a request handler waits for the provider: inside the request timeout."""
    return settings.server.request_timeout_seconds * 0.8


def _kit(deps: Deps, provider: str) -> ProviderKit:
    section = deps.settings.google if provider == "google" else deps.settings.outlook
    if not section.client_id:
        raise NotConfigured(f"{provider} is not configured (no client_id)")
    return provider_kit(deps, provider)


async def new_auth_link(deps: Deps, *, session: AsyncSession, connection: ExternalCalendar) -> AuthLink:
    """A fresh authUrl for the connection (state + PKCE stored); earlier ones stop working."""
    kit = _kit(deps, connection.provider)
    # The id names the connection for logs; the random part makes it unforgeable.
    state = f"{connection.id}.{secrets.token_urlsafe(32)}"
    verifier, challenge = pkce_pair()
    expires = deps.clock.now() + timedelta(seconds=deps.settings.oauth.state_ttl_seconds)
    await repo.set_auth_request(
        session=session,
        connection_id=connection.id,
        state_hash=repo.state_hash(state),
        pkce_verifier_enc=deps.cipher.encrypt(verifier),
        expires_at=expires,
    )
    url = authorization_url(
        kit.oauth,
        redirect_uri=redirect_uri(deps.settings),
        state=state,
        code_challenge=challenge,
        login_hint=connection.account_email,
    )
    return AuthLink(url=url, expires_at=expires)


async def take_state(deps: Deps, state: str) -> repo.AuthRequest:
    """Consume the state once; ConnectError if it is unknown, reused or expired."""
    if not state or len(state) > 512:
        raise ConnectError("state_invalid", "This link is not valid. Ask for a new one.")
    try:
        async with deps.sessions.begin() as session:
            return await repo.consume_state(session=session, state_hash=repo.state_hash(state), now=deps.clock.now())
    except repo.StateRefused as exc:
        if exc.reason == "expired":
            raise ConnectError("state_expired", "This link has expired. Ask for a new one.") from None
        raise ConnectError("state_invalid", "This link is not valid or was already used. Ask for a new one.") from None


async def complete(deps: Deps, code: str, state: str) -> Connected:
    """Redeem the code (PKCE), store the grant encrypted, mark active, link the primary calendar."""
    request = await take_state(deps, state)
    kit = _kit(deps, request.provider)
    log.info("connect.callback", connection_id=request.connection_id, provider=request.provider)
    try:
        tokens, email = await _redeem(deps, kit, request, code)
        primary = await _primary_calendar(deps, request, tokens, email)
    except ConnectError as exc:
        await _record(deps, request.connection_id, exc.code)
        raise
    connected = await _activate(deps, request, tokens, email, primary)
    log.info("connect.completed", connection_id=request.connection_id, provider=request.provider)
    return connected


async def reject(deps: Deps, state: str, error: str) -> None:
    """The provider reported a refusal (consent denied): spend the state, note the reason."""
    request = await take_state(deps, state)
    await _record(deps, request.connection_id, error[:100])
    log.info("connect.refused", connection_id=request.connection_id, error=error[:100])


async def _record(deps: Deps, connection_id: int, error: str) -> None:
    async with deps.sessions.begin() as session:
        await repo.record_error(session=session, connection_id=connection_id, error=error)


async def _redeem(deps: Deps, kit: ProviderKit, request: repo.AuthRequest, code: str) -> tuple[TokenSet, str]:
    if not request.pkce_verifier_enc:
        raise ConnectError("state_invalid", "This link is not valid. Ask for a new one.")
    verifier = deps.cipher.decrypt(request.pkce_verifier_enc)
    try:
        tokens = await exchange_code(
            kit.http,
            kit.oauth,
            code=code,
            redirect_uri=redirect_uri(deps.settings),
            code_verifier=verifier,
            now=deps.clock.now(),
        )
        return tokens, await account_email(kit.http, kit.oauth, access_token=tokens.access_token)
    except errors.MissingScopeError:
        raise ConnectError("scope_missing", "Calendar access was not granted. Connect again and allow it.") from None
    except (errors.ReauthRequiredError, errors.BadRequestError):
        raise ConnectError("code_refused", "The provider refused the sign-in code. Ask for a new link.") from None
    except errors.ProviderError as exc:
        log.warning("connect.exchange_failed", connection_id=request.connection_id, error=type(exc).__name__)
        raise ConnectError("provider_unavailable", "The provider could not be reached. Try again.") from None


def _transient(request: repo.AuthRequest, tokens: TokenSet, email: str, deps: Deps) -> ExternalCalendar:
    """An unsaved connection row holding the fresh tokens, so client_for can build a client."""
    return ExternalCalendar(
        id=request.connection_id,
        resource_id=request.resource_id,
        provider=request.provider,
        account_email=email,
        refresh_token_enc=deps.cipher.encrypt(tokens.refresh_token or ""),
        access_token_enc=deps.cipher.encrypt(tokens.access_token),
        access_token_expires_at=tokens.expires_at,
    )


async def _primary_calendar(deps: Deps, request: repo.AuthRequest, tokens: TokenSet, email: str) -> selection.Choice:
    try:
        calendars = await client_for(deps, _transient(request, tokens, email, deps)).list_calendars()
    except errors.ProviderError as exc:
        log.warning("connect.list_failed", connection_id=request.connection_id, error=type(exc).__name__)
        raise ConnectError("provider_unavailable", "The provider could not be reached. Try again.") from None
    found = next((c for c in calendars if c.primary), None)
    if found is None:
        return selection.Choice("primary", "Calendar", primary=True, read=True, write=True)
    return selection.Choice(found.id, found.name, primary=True, read=True, write=True)


async def _activate(
    deps: Deps, request: repo.AuthRequest, tokens: TokenSet, email: str, primary: selection.Choice
) -> Connected:
    try:
        alive = await _store(deps, request, tokens, email, primary)
    except IntegrityError:
        # A concurrent connect of the same resource took the write flag first; the retry sees it.
        alive = await _store(deps, request, tokens, email, primary)
    if not alive:
        # Deleted while the person was consenting: the fresh grant must not outlive it.
        deps.tasks.spawn(_revoke_with_retries(deps, _transient(request, tokens, email, deps)))
        raise ConnectError("connection_gone", "This calendar connection was removed. Start again.")
    await cache.purge(deps.redis, deps.prefix, [request.resource_id])
    await wake(deps.redis, deps.prefix)
    return Connected(request.connection_id, request.resource_id, request.provider, email)


async def _store(
    deps: Deps, request: repo.AuthRequest, tokens: TokenSet, email: str, primary: selection.Choice
) -> bool:
    """One transaction: tokens, active status, the primary link and its first sync request."""
    now = deps.clock.now()
    async with deps.sessions.begin() as session:
        alive = await repo.activate(
            session=session,
            connection_id=request.connection_id,
            account_email=email,
            refresh_token_enc=deps.cipher.encrypt(tokens.refresh_token or ""),
            access_token_enc=deps.cipher.encrypt(tokens.access_token),
            expires_at=tokens.expires_at,
            now=now,
        )
        link_ids = await _link_primary(session, request, email, primary) if alive else []
        if link_ids:
            await request_sync(session=session, now=now, link_ids=link_ids, interactive=True)
    return alive


async def _link_primary(
    session: AsyncSession, request: repo.AuthRequest, email: str, primary: selection.Choice
) -> list[int]:
    """First connect (or another account): link the primary calendar; a reconnect keeps links."""
    existing = await selection.links_of(session=session, connection_id=request.connection_id)
    if existing and request.account_email == email:
        return []
    if existing:
        await selection.drop_links(session=session, connection_id=request.connection_id)
    link_id = await selection.add_primary_link(
        session=session,
        connection_id=request.connection_id,
        resource_id=request.resource_id,
        choice=primary,
        take_write=request.provider == "outlook",
    )
    return [link_id]


async def list_calendars(deps: Deps, connection: ExternalCalendar) -> list[CalendarInfo]:
    """Every calendar the connected account can see (provider errors propagate)."""
    _kit(deps, connection.provider)
    return await client_for(deps, connection).list_calendars()


async def revoke_grant(deps: Deps, connection: ExternalCalendar) -> bool:
    """Revoke the grant at the provider (Google); False where there is nothing to revoke.

    Microsoft has no revocation endpoint for this flow: deleting the row forgets the tokens.
    """
    if connection.provider != "google" or not connection.refresh_token_enc:
        return False
    kit = _kit(deps, connection.provider)
    await revoke(kit.http, kit.oauth, token=deps.cipher.decrypt(connection.refresh_token_enc))
    return True


async def disconnect(deps: Deps, connection_id: int, *, wait: bool = False) -> bool:
    """Delete the connection (links, busy rows), purge the cache, then stop push and revoke.

    The provider side runs in the background unless `wait` (the CLI, which exits after).
    Returns False if the connection did not exist (a second DELETE is harmless).
    """
    async with deps.sessions.begin() as session:
        connection = await repo.get_connection(session=session, connection_id=connection_id)
        if connection is None:
            return False
        links = await selection.links_of(session=session, connection_id=connection_id)
        await repo.delete_connection(session=session, connection_id=connection_id)
    await cache.purge(deps.redis, deps.prefix, [connection.resource_id])
    log.info("connect.disconnected", connection_id=connection_id, provider=connection.provider)
    cleanup = _provider_cleanup(deps, connection, links)
    if wait:
        await cleanup
    else:
        deps.tasks.spawn(cleanup, name=f"disconnect:{connection_id}")
    return True


async def remove_resource(deps: Deps, resource_id: str, *, wait: bool = False) -> bool:
    """Disconnect every connection of the resource, then delete it; False if it did not exist."""
    async with deps.sessions.begin() as session:
        connections = await repo.connections_of(session=session, resource_id=resource_id)
    for connection in connections:
        await disconnect(deps, connection.id, wait=wait)
    async with deps.sessions.begin() as session:
        return await delete_resource(session=session, resource_id=resource_id) > 0


async def _provider_cleanup(deps: Deps, connection: ExternalCalendar, links: list[CalendarLink]) -> None:
    """Stop push (hooks), then revoke the grant with bounded retries; failures are logged."""
    _load_hook_modules()
    for hook in list(DISCONNECT_HOOKS):
        try:
            async with asyncio.timeout(HOOK_TIMEOUT_SECONDS):
                await hook(deps, connection, links)
        except Exception as exc:  # a hook's failure must not stop the revoke
            log.warning("connect.hook_failed", connection_id=connection.id, error=type(exc).__name__)
    await _revoke_with_retries(deps, connection)


async def _revoke_with_retries(deps: Deps, connection: ExternalCalendar) -> None:
    s = deps.settings.sync
    for attempt in range(1, REVOKE_ATTEMPTS + 1):
        try:
            if await revoke_grant(deps, connection):
                log.info("connect.revoked", connection_id=connection.id, provider=connection.provider, attempt=attempt)
            return
        except (errors.ProviderError, NotConfigured) as exc:
            retry = isinstance(exc, errors.RetryableError) and attempt < REVOKE_ATTEMPTS
            log.warning(
                "connect.revoke_failed",
                connection_id=connection.id,
                attempt=attempt,
                error=type(exc).__name__,
                will_retry=retry,
            )
            if not retry:
                return
            await asyncio.sleep(next_attempt(attempt, base=s.backoff_base_seconds, cap=s.backoff_cap_seconds))


def _load_hook_modules() -> None:
    for name in HOOK_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
