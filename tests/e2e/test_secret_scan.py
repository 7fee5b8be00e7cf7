"""After a full run on both providers, no log line, table row, Redis value or API answer holds a plaintext secret.

Secrets are taken from where they are born: every access and refresh token the sandbox
ever issued (its grant tables), the client secrets, push channel tokens and Graph
clientStates the daemon chose, and the notify signing secret the API returned once.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api.connect_support import consent, open_callback, query_of, unique_email
from tests.e2e.chaos import World, wait_converged
from tests.e2e.harness import Backends, Daemon, daemons
from tests.e2e.world import SANDBOX_NAME, ChangeStream, seed_account
from worker.api.auth import mint_token
from worker.config import AuthSettings
from worker.crypto import TokenCipher

CLIENT_SECRETS = {"sandbox-google-secret", "sandbox-ms-secret"}


def sandbox_secrets(sandbox: Any) -> set[str]:
    """Every token, channel token and clientState the sandbox holds right now."""
    found: set[str] = set()
    for half in sandbox.halves.values():
        grants = half.grants
        found |= set(grants.access) | set(grants.refresh)
        channels = getattr(getattr(half, "state", None), "channels", {})
        found |= {c.token for c in channels.values() if getattr(c, "token", None)}
        subscriptions = getattr(getattr(half, "subscriptions", None), "by_id", {})
        found |= {s.client_state for s in subscriptions.values() if s.client_state}
    return found


async def collect_while(sandbox: Any, stop: asyncio.Event, into: set[str]) -> None:
    """Snapshot the sandbox's secrets every 0.2 s (removed subscriptions vanish from it)."""
    while not stop.is_set():
        into |= sandbox_secrets(sandbox)
        await asyncio.sleep(0.2)


async def database_dump(sessions: async_sessionmaker[AsyncSession]) -> str:
    """Every row of every table, as PostgreSQL's text form of the row."""
    async with sessions() as session:
        tables = (
            await session.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"))
        ).scalars()
        parts = []
        for table in list(tables):
            rows = await session.execute(text(f'SELECT CAST(t AS text) FROM "{table}" t'))
            parts += [f"{table}: {r}" for r in rows.scalars()]
    return "\n".join(parts)


async def redis_dump(redis: Redis, prefix: str) -> str:
    """Every string, hash, list and set value under the daemons' key prefix."""
    parts = []
    async for key in redis.scan_iter(match=f"{prefix}*"):
        kind = await redis.type(key)
        if kind == "string":
            parts.append(str(await redis.get(key)))
        elif kind == "hash":
            parts.append(str(await redis.hgetall(key)))
        elif kind == "list":
            parts.append(str(await redis.lrange(key, 0, -1)))
        elif kind in ("set", "zset"):
            parts.append(str(await redis.zrange(key, 0, -1) if kind == "zset" else await redis.smembers(key)))
    return "\n".join(parts)


async def api_dump(daemon: Daemon, backends: Backends, accounts: list[Any]) -> str:
    """What the read routes answer about the run's connections, webhooks and deliveries."""
    auth = AuthSettings(jwt_secret=backends.jwt_secret)
    parts = []
    async with aiohttp.ClientSession() as http:
        for account in accounts:
            token = mint_token(auth, company_id=account.company_id, ttl_seconds=600, now=int(time.time()))
            headers = {"Authorization": f"Bearer {token}"}
            paths = [f"/v3/resource/{account.resource_id}/externalCalendars", "/v3/webhooks"]
            paths.append(f"/v3/resource/{account.resource_id}/externalCalendars/list")
            for path in paths:
                async with http.get(daemon.url + path, headers=headers) as resp:
                    parts.append(f"{path} {resp.status} {await resp.text()}")
                    if path == "/v3/webhooks" and resp.status == 200:
                        for hook in (await resp.json()).get("webhooks", []):
                            async with http.get(f"{daemon.url}{path}/{hook['id']}/deliveries", headers=headers) as d:
                                parts.append(await d.text())
    return "\n".join(parts)


async def register_notify(daemon: Daemon, backends: Backends, company_id: str, url: str) -> str:
    """Create a notify endpoint through the daemon's API; returns the secret it answers once."""
    auth = AuthSettings(jwt_secret=backends.jwt_secret)
    token = mint_token(auth, company_id=company_id, ttl_seconds=600, now=int(time.time()))
    body = {"url": url, "eventTypes": ["externalCalendar.reauthRequired", "externalCalendar.active"]}
    async with (
        aiohttp.ClientSession() as session,
        session.post(daemon.url + "/v3/webhooks", json=body, headers={"Authorization": f"Bearer {token}"}) as resp,
    ):
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["secret"])


async def connect_through_api(daemon: Daemon, backends: Backends, sandbox: Any, provider: str) -> tuple[str, str]:
    """A resource connected the way a person does it (authUrl, consent page, callback); returns
    (account email, the authorization code the browser carried)."""
    auth = AuthSettings(jwt_secret=backends.jwt_secret)
    headers = {
        "Authorization": "Bearer " + mint_token(auth, company_id="scan-co", ttl_seconds=600, now=int(time.time()))
    }
    email = unique_email(f"scan-{provider}")
    await sandbox.control.create_user(SANDBOX_NAME[provider], email)
    async with aiohttp.ClientSession() as http:
        async with http.post(daemon.url + "/v3/resource", json={}, headers=headers) as resp:
            assert resp.status == 201, await resp.text()
            resource_id = (await resp.json())["id"]
        path = f"/v3/resource/{resource_id}/externalCalendar"
        async with http.post(daemon.url + path, json={"provider": provider}, headers=headers) as resp:
            assert resp.status == 201, await resp.text()
            auth_url = (await resp.json())["authUrl"]
        location = await consent(http, auth_url, email)
        result = await open_callback(http, location)
    assert result.code == "connected", result.html
    return query_of(location)["code"]


async def test_no_plaintext_secret_in_logs_database_or_redis(
    backends: Backends,
    own_sandbox: Any,
    sessions: async_sessionmaker[AsyncSession],
    cipher: TokenCipher,
    http: aiohttp.ClientSession,
    redis: Redis,
    workdir: Path,
) -> None:
    accounts = [await seed_account(sessions, own_sandbox, cipher, provider=p) for p in ("google", "outlook") * 2]
    world = World(own_sandbox, sessions, http, accounts)
    secrets_seen: set[str] = set()
    stop = asyncio.Event()
    collector = asyncio.create_task(collect_while(own_sandbox, stop, secrets_seen))
    async with daemons(backends, own_sandbox, workdir) as (daemon,):
        await daemon.start()
        await daemon.wait_ready()
        notify_secret = await register_notify(daemon, backends, accounts[0].company_id, own_sandbox.url + "/hook")
        for provider in ("google", "outlook"):
            secrets_seen.add(await connect_through_api(daemon, backends, own_sandbox, provider))
        changes = ChangeStream(own_sandbox, accounts, seed=5)
        for _ in range(20):
            await changes.step()
        await wait_converged(world, 30)
        await own_sandbox.control.expire_tokens()  # every connection refreshes (Graph rotates refresh tokens)
        for _ in range(20):
            await changes.step()
        await wait_converged(world, 30)
        await own_sandbox.control.revoke_grant("google", accounts[2].email)  # reauth_required → notify
        await changes.step()
        await asyncio.sleep(2)
        answers = await api_dump(daemon, backends, accounts)
        assert await daemon.stop() == 0
    stop.set()
    await collector
    secrets_seen |= sandbox_secrets(own_sandbox) | CLIENT_SECRETS | {notify_secret}
    secrets_seen = {s for s in secrets_seen if len(s) >= 8}
    logs = daemon.log_path.read_text(errors="replace")
    dump = await database_dump(sessions)
    cache = await redis_dump(redis, backends.redis_prefix)
    # The haystacks are real: the run logged syncs and stored encrypted tokens.
    assert "sync.completed" in logs and accounts[1].email in dump
    assert len(secrets_seen) >= 6 * 2 + len(CLIENT_SECRETS) + 3
    assert "/externalCalendars 200" in answers and "/v3/webhooks 200" in answers, answers[:500]
    for where, haystack in (("logs", logs), ("database", dump), ("redis", cache), ("API answers", answers)):
        leaked = [s[:6] + "…" for s in secrets_seen if s in haystack]
        assert not leaked, f"plaintext secrets found in the {where}: {leaked}"
