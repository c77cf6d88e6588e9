"""Fuzzing the API from its own OpenAPI schema (schemathesis): requests that fit the schema and requests
that break it, on every operation; the server must answer each with JSON below 500, never crash or hang."""

from __future__ import annotations

import json
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings

from scratchlm.serve.openai_api import Limits
from scratchlm.serve.server import BackgroundServer

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.generation import GenerationMode  # noqa: E402


@pytest.fixture(scope="module")
def server(make_service):
    service = make_service(context_length=64, emb_dim=16)
    with BackgroundServer(service, limits=Limits(max_tokens=8, token_timeout_s=30)) as url:
        with urllib.request.urlopen(url + "/openapi.json") as r:
            schema = schemathesis.openapi.from_dict(json.loads(r.read()))
        yield url, schema


POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
POSTS = ("POST /v1/completions", "POST /v1/chat/completions", "POST /v1/classify")
# A GET without parameters has no invalid form to generate: positive cases only.
CASES = [(op, mode) for op in POSTS for mode in (POSITIVE, NEGATIVE)]
CASES += [("GET /v1/models", POSITIVE), ("GET /health", POSITIVE)]


@pytest.mark.slow
@pytest.mark.parametrize(("label", "mode"), CASES)
def test_no_request_makes_the_server_fail(server, label, mode):
    url, schema = server
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(operation.as_strategy(generation_mode=mode))
    def check(case):
        if isinstance(case.body, dict):
            case.body["stream"] = False  # one JSON answer per case; streams have their own tests
            if isinstance(case.body.get("max_tokens"), int):
                case.body["max_tokens"] = min(case.body["max_tokens"], 4)
        response = case.call(base_url=url, timeout=60)
        assert response.status_code < 500, response.text[:300]
        body = response.json()
        if response.status_code >= 400:
            assert set(body["error"]) >= {"message", "type"}

    check()
