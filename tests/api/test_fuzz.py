"""Bad input never makes a 5xx: schemathesis over /openapi.json, hypothesis over the webhook receivers.

The daemon runs as a subprocess (tests/e2e/harness.py) against the test database and a
private sandbox, so these synchronous tests talk to it with `requests` over a real socket.
Half of the generated cases get a real resource id and the owner's token, so the fuzzer
reaches past 401/404 into validation and the handlers themselves.
"""

from __future__ import annotations

import itertools
import string
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TEST_JWT_SECRET
from tests.e2e.harness import Backends, Daemon, daemons
from worker.api.auth import mint_token
from worker.config import AuthSettings
from worker.crypto import new_key

FUZZ = settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
COMPANY = "fuzz-co"
sent = itertools.count()  # requests fuzzed in this module (docs/reliability.md quotes it)


def bearer(company: str = COMPANY) -> dict[str, str]:
    auth = AuthSettings(jwt_secret=TEST_JWT_SECRET)
    return {"Authorization": "Bearer " + mint_token(auth, company_id=company, ttl_seconds=3600, now=int(time.time()))}


@pytest.fixture(scope="module")
async def fuzz_sandbox() -> AsyncIterator[Any]:
    from providers.sandbox import start_sandbox

    sb = await start_sandbox()
    yield sb
    await sb.stop()


@pytest.fixture(scope="module")
async def target(
    database_url: str, redis_url: str, redis_prefix: str, fuzz_sandbox: Any, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Daemon]:
    """A running daemon with one resource of COMPANY (id "fuzz-res")."""
    backends = Backends(database_url, redis_url, redis_prefix, TEST_JWT_SECRET, (new_key(),))
    async with daemons(backends, fuzz_sandbox, tmp_path_factory.mktemp("fuzz")) as (daemon,):
        await daemon.start()
        await daemon.wait_ready()
        async with (
            aiohttp.ClientSession() as http,
            http.post(daemon.url + "/v3/resource", json={"id": "fuzz-res"}, headers=bearer()) as resp,
        ):
            assert resp.status == 201, await resp.text()
        yield daemon
        assert daemon.running, f"the daemon died under fuzzing:\n{daemon.tail()}"


def _document() -> dict[str, Any]:
    """The same document /openapi.json serves (built in-process: schemathesis's lazy pytest
    loader does not run under pytest 9; test_served_document_is_the_fuzzed_one checks they agree)."""
    import worker.api.app  # noqa: F401  (importing the routes registers their descriptions)
    from worker.api.openapi import document

    return document()


schema = schemathesis.openapi.from_dict(_document())


def test_served_document_is_the_fuzzed_one(target: Daemon) -> None:
    served = requests.get(target.url + "/openapi.json", timeout=10).json()
    assert served["paths"].keys() == _document()["paths"].keys()


def _aim(case: Any, n: int) -> dict[str, str]:
    """Every other case: the real resource and its owner's token (else the generated ones)."""
    if n % 2:
        return {}
    if "id" in (case.path_parameters or {}):
        case.path_parameters["id"] = "fuzz-res"
    if case.query and "resourceId" in case.query:
        case.query["resourceId"] = "fuzz-res"
    return bearer()


@schema.parametrize()
@FUZZ
def test_no_operation_answers_5xx(case: Any, target: Daemon) -> None:
    n = next(sent)
    response = case.call(base_url=target.url, headers=_aim(case, n), timeout=15)
    assert response.status_code < 500, f"{case.method} {case.formatted_path} → {response.status_code}: {response.text}"


PRINTABLE = st.text(alphabet=string.printable.strip() + " ", max_size=80)
# requests refuses header values with surrounding whitespace; everything else printable goes.
HEADER_VALUE = st.one_of(
    PRINTABLE.map(str.strip), st.integers().map(str), st.just(""), st.text(alphabet="0123456789-", max_size=30)
)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | PRINTABLE,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(PRINTABLE, inner, max_size=4),
    max_leaves=12,
)
GOOGLE_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "X-Goog-Channel-ID": HEADER_VALUE,
        "X-Goog-Channel-Token": HEADER_VALUE,
        "X-Goog-Resource-ID": HEADER_VALUE,
        "X-Goog-Resource-State": st.sampled_from(["sync", "exists", "not_exists", ""]) | HEADER_VALUE,
        "X-Goog-Message-Number": HEADER_VALUE,
        "X-Goog-Channel-Expiration": HEADER_VALUE,
        "Content-Type": st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"]),
    },
)
NOTIFICATION = st.fixed_dictionaries(
    {},
    optional={
        "subscriptionId": HEADER_VALUE,
        "clientState": HEADER_VALUE,
        "changeType": st.sampled_from(["created", "updated", "deleted"]) | PRINTABLE,
        "lifecycleEvent": st.sampled_from(["reauthorizationRequired", "subscriptionRemoved", "missed"]) | PRINTABLE,
        "resource": PRINTABLE,
        "resourceData": JSONISH,
        "tenantId": PRINTABLE,
        "subscriptionExpirationDateTime": HEADER_VALUE,
    },
)
GRAPH_BODY = st.one_of(
    st.fixed_dictionaries({"value": st.lists(NOTIFICATION | JSONISH, max_size=3)}),
    JSONISH,
).map(lambda v: __import__("json").dumps(v).encode())
RAW_BODY = st.one_of(st.binary(max_size=200), GRAPH_BODY)


def _post(url: str, **kwargs: Any) -> requests.Response:
    next(sent)
    return requests.post(url, timeout=15, **kwargs)


@FUZZ
@given(headers=GOOGLE_HEADERS, body=RAW_BODY)
def test_google_webhook_never_5xx(target: Daemon, headers: dict[str, str], body: bytes) -> None:
    response = _post(target.url + "/webhooks/google", headers=headers, data=body)
    assert response.status_code < 500, response.text


@pytest.mark.parametrize("path", ["/webhooks/outlook", "/webhooks/outlook/lifecycle"])
@FUZZ
@given(
    body=RAW_BODY,
    token=st.none() | HEADER_VALUE,
    content_type=st.sampled_from(["application/json", "text/plain", ""]),
)
def test_graph_webhooks_never_5xx(target: Daemon, path: str, body: bytes, token: str | None, content_type: str) -> None:
    params = {"validationToken": token} if token is not None else {}
    headers = {"Content-Type": content_type} if content_type else {}
    response = _post(target.url + path, params=params, headers=headers, data=body)
    assert response.status_code < 500, response.text


def test_fuzzed_enough(target: Daemon) -> None:
    """Runs last in this module: the fuzzer really sent requests (printed for the docs)."""
    count = next(sent)
    print(f"requests fuzzed: {count}")
    assert count > 300
    assert Path(target.log_path).exists()
