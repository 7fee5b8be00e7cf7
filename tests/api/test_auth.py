"""verifyToken and verifyCompany on every /v3 route of the app's router.

Missing, expired, forged, mis-addressed and unsigned tokens are 401 with WWW-Authenticate;
a resource of another company is a 404, indistinguishable from a resource that does not exist.
"""

from __future__ import annotations

import re
import time
from typing import Any

import jwt
import pytest

from tests.conftest import Api
from tests.factories import make_resource
from worker.api.app import build_app

RESOURCE_PARAMS = {"id", "resource_id", "resourceId"}
# Routes that take the resource in the query: a well-formed query, so only the token is wrong.
QUERIES = {
    "/v3/availability": "?resourceId={rid}&startDate=2026-01-05&endDate=2026-01-06",
    "/v3/availability/explain": "?resourceId={rid}&at=2026-01-05T10:00:00Z",
}


def _v3_routes(api: Api) -> list[tuple[str, str]]:
    app = build_app(api.deps)
    found = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/v3/") and route.method != "HEAD"
    }
    return sorted(found)


def _fill(template: str, resource_id: str) -> str:
    path = re.sub(r"\{([^}]+)\}", lambda m: resource_id if m.group(1) in RESOURCE_PARAMS else "1", template)
    return path + QUERIES.get(template, "").format(rid=resource_id)


def _claims(api: Api, company: str, **changes: Any) -> dict[str, Any]:
    s = api.deps.settings.auth
    now = int(time.time())
    claims = {s.company_claim: company, "iss": s.issuer, "aud": s.audience, "iat": now, "exp": now + 600}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _secret(api: Api) -> str:
    return api.deps.settings.auth.jwt_secret.get_secret_value()


def _bad_tokens(api: Api, company: str) -> dict[str, str | None]:
    leeway = api.deps.settings.auth.leeway_seconds
    past = int(time.time()) - leeway - 60
    return {
        "missing": None,
        "expired": jwt.encode(_claims(api, company, exp=past, iat=past - 600), _secret(api), algorithm="HS256"),
        "wrong signature": jwt.encode(_claims(api, company), "another-secret-" + "y" * 32, algorithm="HS256"),
        "wrong audience": jwt.encode(_claims(api, company, aud="someone-else"), _secret(api), algorithm="HS256"),
        "wrong issuer": jwt.encode(_claims(api, company, iss="https://evil.example"), _secret(api), algorithm="HS256"),
        "no exp": jwt.encode(_claims(api, company, exp=None), _secret(api), algorithm="HS256"),
        "alg none": jwt.encode(_claims(api, company), None, algorithm="none"),
        "no company claim": jwt.encode(
            _claims(api, company, **{api.deps.settings.auth.company_claim: None}), _secret(api), algorithm="HS256"
        ),
        "garbage": "not-a-jwt",
    }


async def _request(api: Api, method: str, path: str, token: str | None) -> tuple[int, dict[str, str], Any]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    body = {} if method in ("POST", "PUT", "PATCH") else None
    async with api.session.request(method, api.url + path, json=body, headers=headers) as resp:
        data = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, dict(resp.headers), data


async def test_the_router_has_v3_routes_to_check(api: Api) -> None:
    routes = _v3_routes(api)
    assert ("POST", "/v3/resource/{id}/externalCalendar") in routes
    assert ("DELETE", "/v3/resource/{id}/externalCalendar/{externalCalendarId}") in routes


async def test_every_v3_route_refuses_bad_tokens(api: Api) -> None:
    resource = await make_resource(api.deps.sessions)
    failures = []
    for method, template in _v3_routes(api):
        path = _fill(template, resource.id)
        for case, token in _bad_tokens(api, resource.company_id).items():
            status, headers, body = await _request(api, method, path, token)
            ok = status == 401 and "Bearer" in headers.get("WWW-Authenticate", "")
            ok = (
                ok
                and isinstance(body, dict)
                and body["error"]["code"] in ("missing_token", "invalid_token", "token_expired")
            )
            if not ok:
                failures.append((method, template, case, status))
    assert failures == []


async def test_expired_token_is_named_as_such(api: Api) -> None:
    resource = await make_resource(api.deps.sessions)
    token = _bad_tokens(api, resource.company_id)["expired"]
    status, _, body = await _request(api, "GET", f"/v3/resource/{resource.id}/externalCalendars", token)
    assert status == 401 and body["error"]["code"] == "token_expired"


async def test_token_within_leeway_is_accepted(api: Api) -> None:
    resource = await make_resource(api.deps.sessions)
    just_expired = int(time.time()) - api.deps.settings.auth.leeway_seconds // 2
    token = jwt.encode(_claims(api, resource.company_id, exp=just_expired), _secret(api), algorithm="HS256")
    status, _, _ = await _request(api, "GET", f"/v3/resource/{resource.id}/externalCalendars", token)
    assert status == 200


async def test_a_valid_token_passes_every_v3_route(api: Api) -> None:
    """The positive control: the same requests with a good token are never a 401."""
    resource = await make_resource(api.deps.sessions)
    token = api.token(resource.company_id)
    refused = []
    for method, template in _v3_routes(api):
        status, _, _ = await _request(api, method, _fill(template, resource.id), token)
        if status in (401, 500):
            refused.append((method, template, status))
    assert refused == []


def _resource_routes(api: Api) -> list[tuple[str, str]]:
    return [(m, t) for m, t in _v3_routes(api) if t in QUERIES or any("{" + p + "}" in t for p in RESOURCE_PARAMS)]


async def test_another_companys_resource_is_a_404_like_a_missing_one(api: Api) -> None:
    mine = await make_resource(api.deps.sessions)
    theirs = await make_resource(api.deps.sessions)
    token = api.token(mine.company_id)
    wrong = []
    for method, template in _resource_routes(api):
        foreign = await _request(api, method, _fill(template, theirs.id), token)
        missing = await _request(api, method, _fill(template, "no-such-resource"), token)
        if foreign[0] != 404 or missing[0] != 404 or foreign[2]["error"]["code"] != missing[2]["error"]["code"]:
            wrong.append((method, template, foreign[0], missing[0]))
    assert wrong == []


@pytest.mark.parametrize("provider", ["google", "outlook"])
async def test_another_companys_connection_is_not_reachable(api: Api, provider: str) -> None:
    from tests.factories import make_connection

    mine = await make_resource(api.deps.sessions)
    theirs = await make_resource(api.deps.sessions)
    other = await make_connection(api.deps.sessions, resource=theirs, provider=provider)
    token = api.token(mine.company_id)
    for method, suffix in (
        ("DELETE", f"/externalCalendar/{other.id}"),
        ("PUT", f"/externalCalendar/{other.id}/regenerateAuthUrl"),
        ("POST", f"/externalCalendars/{other.id}/select"),
        ("GET", f"/externalCalendars/list?externalCalendarId={other.id}"),
    ):
        status, _, body = await _request(api, method, f"/v3/resource/{mine.id}{suffix}", token)
        assert (status, body["error"]["code"]) == (404, "external_calendar_not_found"), suffix
    async with api.deps.sessions() as session:
        from worker.db.tables import ExternalCalendar

        assert await session.get(ExternalCalendar, other.id) is not None


async def test_ids_that_cannot_name_a_resource_are_404_after_the_token_check(api: Api) -> None:
    resource = await make_resource(api.deps.sessions)
    token = api.token(resource.company_id)
    for raw in ("%00", "a%00b", "x" * 65, "%E2%80%8F"):
        for method, suffix in (("GET", "/externalCalendars"), ("DELETE", ""), ("POST", "/externalCalendar")):
            path = f"/v3/resource/{raw}{suffix}"
            status, _, _ = await _request(api, method, path, None)
            assert status == 401, (method, path)
            status, _, body = await _request(api, method, path, token)
            assert (status, body["error"]["code"]) == (404, "resource_not_found"), (method, path)
