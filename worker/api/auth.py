"""verifyToken and verifyCompany: a bearer JWT, then the resource must be the company's."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web

from worker.api.errors import NotFound, Unauthorized
from worker.config import AuthSettings
from worker.db.resources import owned_resource
from worker.db.tables import Resource


@dataclass(frozen=True)
class Caller:
    company_id: str
    subject: str | None
    claims: dict[str, Any]


class TokenVerifier:
    """Verifies bearer JWTs against a secret or a public key (PEM or JWKS)."""

    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings

    @cached_property
    def _key(self) -> Any:
        s = self._settings
        if s.jwt_public_key_file:
            text = Path(s.jwt_public_key_file).read_text()
            if text.lstrip().startswith("{"):
                return jwt.PyJWKSet.from_json(text)
            return text
        return s.jwt_secret.get_secret_value()

    def _key_for(self, token: str) -> Any:
        key = self._key
        if isinstance(key, jwt.PyJWKSet):
            kid = jwt.get_unverified_header(token).get("kid")
            matches = [k for k in key.keys if k.key_id == kid] or key.keys[:1]
            return matches[0].key if matches else None
        return key

    def verify(self, token: str) -> Caller:
        """Decode and check the token; raise Unauthorized with a reason that leaks nothing."""
        s = self._settings
        try:
            claims = jwt.decode(
                token,
                self._key_for(token),
                algorithms=list(s.algorithms),
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired", code="token_expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("invalid bearer token", code="invalid_token") from None
        company = claims.get(s.company_claim)
        if not isinstance(company, str | int) or str(company) == "":
            raise Unauthorized(f"token has no {s.company_claim} claim", code="invalid_token")
        return Caller(company_id=str(company), subject=claims.get("sub"), claims=claims)


def mint_token(settings: AuthSettings, *, company_id: str, ttl_seconds: int = 3600, now: int) -> str:
    """A development HS256 token for a company (calsync token, tests, the demo)."""
    claims = {
        settings.company_claim: company_id,
        "iss": settings.issuer,
        "aud": settings.audience,
        "iat": now,
        "exp": now + ttl_seconds,
        "sub": f"dev:{company_id}",
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


VERIFIER = web.AppKey("verifier", TokenVerifier)
RESOURCE_ID_MAX = 64  # resources.id is VARCHAR(64)


def verify_token(request: web.Request) -> Caller:
    """The caller named by the request's bearer token (401 otherwise)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token", code="missing_token")
    return request.app[VERIFIER].verify(token.strip())


async def verify_company(request: web.Request, session: Any, resource_id: str) -> Resource:
    """The path's resource if the caller's company owns it; 404 for any other case."""
    caller = verify_token(request)
    # An id no resource can have (too long, control characters) is simply not found.
    plausible = 0 < len(resource_id) <= RESOURCE_ID_MAX and resource_id.isprintable()
    resource = (
        await owned_resource(session=session, resource_id=resource_id, company_id=caller.company_id)
        if plausible
        else None
    )
    if resource is None:
        raise NotFound("resource not found", code="resource_not_found")
    return resource
