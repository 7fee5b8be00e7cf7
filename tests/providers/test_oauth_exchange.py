"""The OAuth code flow of providers/oauth.py against both sandbox identity servers."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from providers import errors, oauth
from providers.http import ProviderHttp, raise_for_google_status, raise_for_graph_status
from providers.oauth import OAuthProvider
from providers.sandbox import Sandbox

from .conftest import FAST_RETRY, oauth_provider

REDIRECT = "http://127.0.0.1:9/oauth/callback"
CLIENTS = {
    "google": ("sandbox-google-client", "sandbox-google-secret"),
    "microsoft": ("sandbox-ms-client", "sandbox-ms-secret"),
}


@pytest.fixture
async def registered(sandbox: Sandbox) -> None:
    for provider, (client_id, secret) in CLIENTS.items():
        await sandbox.control.register_client(provider, client_id, secret, [REDIRECT])


def token_http(sandbox: Sandbox, session: aiohttp.ClientSession, provider: str) -> ProviderHttp:
    """The ProviderHttp the OAuth calls ride on (user info uses the API's error mapping)."""
    if provider == "google":
        return ProviderHttp(
            session, api_base=sandbox.google_api, raise_for_status=raise_for_google_status, policy=FAST_RETRY
        )
    return ProviderHttp(session, api_base=sandbox.graph_api, raise_for_status=raise_for_graph_status, policy=FAST_RETRY)


async def consent(session: aiohttp.ClientSession, url: str, email: str) -> dict[str, str]:
    """Play the user: open the consent page, allow, and return the redirect's query."""
    async with session.get(url) as page:
        assert page.status == 200, await page.text()
    fields = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    form = {**fields, "email": email, "login": email, "decision": "allow"}
    async with session.post(url.split("?")[0], data=form, allow_redirects=False) as answer:
        assert answer.status == 302, await answer.text()
        location = answer.headers["Location"]
    assert location.startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def authorize(session: aiohttp.ClientSession, provider: OAuthProvider, email: str) -> tuple[str, str]:
    """(code, verifier) from a completed consent."""
    verifier, challenge = oauth.pkce_pair()
    url = oauth.authorization_url(
        provider, redirect_uri=REDIRECT, state="st-1", code_challenge=challenge, login_hint=email
    )
    answer = await consent(session, url, email)
    assert answer["state"] == "st-1"
    return answer["code"], verifier


async def test_code_flow_end_to_end(
    sandbox: Sandbox, http_session: aiohttp.ClientSession, registered: None, provider: str
) -> None:
    config = oauth_provider(sandbox, provider)
    http = token_http(sandbox, http_session, provider)
    code, verifier = await authorize(http_session, config, "flow@calsync.test")

    tokens = await oauth.exchange_code(http, config, code=code, redirect_uri=REDIRECT, code_verifier=verifier)

    assert tokens.access_token and tokens.refresh_token
    assert tokens.access_token not in repr(tokens) and tokens.refresh_token not in repr(tokens)
    assert await oauth.account_email(http, config, access_token=tokens.access_token) == "flow@calsync.test"
    again = await oauth.refresh(http, config, refresh_token=tokens.refresh_token)
    assert again.access_token != tokens.access_token


async def test_wrong_pkce_verifier_is_refused(
    sandbox: Sandbox, http_session: aiohttp.ClientSession, registered: None, provider: str
) -> None:
    config = oauth_provider(sandbox, provider)
    code, _ = await authorize(http_session, config, "pkce@calsync.test")
    other_verifier, _ = oauth.pkce_pair()

    with pytest.raises(errors.ReauthRequiredError):
        await oauth.exchange_code(
            token_http(sandbox, http_session, provider),
            config,
            code=code,
            redirect_uri=REDIRECT,
            code_verifier=other_verifier,
        )


async def test_code_is_single_use(
    sandbox: Sandbox, http_session: aiohttp.ClientSession, registered: None, provider: str
) -> None:
    config = oauth_provider(sandbox, provider)
    http = token_http(sandbox, http_session, provider)
    code, verifier = await authorize(http_session, config, "once@calsync.test")
    await oauth.exchange_code(http, config, code=code, redirect_uri=REDIRECT, code_verifier=verifier)

    with pytest.raises(errors.ReauthRequiredError):
        await oauth.exchange_code(http, config, code=code, redirect_uri=REDIRECT, code_verifier=verifier)


@pytest.mark.parametrize(
    ("provider", "scopes"),
    [("google", ("openid", "email")), ("microsoft", ("offline_access", "User.Read"))],
)
async def test_missing_calendar_scope_fails_clearly(
    sandbox: Sandbox, http_session: aiohttp.ClientSession, registered: None, provider: str, scopes: tuple[str, ...]
) -> None:
    config = replace(oauth_provider(sandbox, provider), scopes=scopes)
    code, verifier = await authorize(http_session, config, "scope@calsync.test")

    with pytest.raises(errors.MissingScopeError, match="calendar access not granted"):
        await oauth.exchange_code(
            token_http(sandbox, http_session, provider),
            config,
            code=code,
            redirect_uri=REDIRECT,
            code_verifier=verifier,
        )


async def test_microsoft_without_offline_access_has_no_refresh_token(
    sandbox: Sandbox, http_session: aiohttp.ClientSession, registered: None
) -> None:
    config = replace(oauth_provider(sandbox, "microsoft"), scopes=("User.Read", "Calendars.ReadWrite"))
    code, verifier = await authorize(http_session, config, "online@calsync.test")

    with pytest.raises(errors.MissingScopeError, match="refresh token"):
        await oauth.exchange_code(
            token_http(sandbox, http_session, "microsoft"),
            config,
            code=code,
            redirect_uri=REDIRECT,
            code_verifier=verifier,
        )


async def test_google_revoke_kills_the_grant(
    sandbox: Sandbox, http_session: aiohttp.ClientSession, registered: None
) -> None:
    config = oauth_provider(sandbox, "google")
    http = token_http(sandbox, http_session, "google")
    code, verifier = await authorize(http_session, config, "revoke@calsync.test")
    tokens = await oauth.exchange_code(http, config, code=code, redirect_uri=REDIRECT, code_verifier=verifier)
    assert tokens.refresh_token

    await oauth.revoke(http, config, token=tokens.refresh_token)
    await oauth.revoke(http, config, token=tokens.refresh_token)  # already revoked: fine

    with pytest.raises(errors.ReauthRequiredError):
        await oauth.refresh(http, config, refresh_token=tokens.refresh_token)


def test_authorization_url_carries_provider_specifics(sandbox: Sandbox) -> None:
    google = parse_qs(
        urlsplit(
            oauth.authorization_url(
                oauth_provider(sandbox, "google"), redirect_uri=REDIRECT, state="s", code_challenge="c"
            )
        ).query
    )
    assert (google["access_type"], google["prompt"], google["code_challenge_method"]) == (
        ["offline"],
        ["consent"],
        ["S256"],
    )
    microsoft = parse_qs(
        urlsplit(
            oauth.authorization_url(
                oauth_provider(sandbox, "microsoft"), redirect_uri=REDIRECT, state="s", code_challenge="c"
            )
        ).query
    )
    assert microsoft["response_mode"] == ["query"] and "offline_access" in microsoft["scope"][0].split()
    assert "sandbox-google-secret" not in repr(oauth_provider(sandbox, "google"))
