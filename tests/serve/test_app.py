"""The OpenAI-compatible server, driven by the official `openai` client and by raw HTTP on 127.0.0.1."""

from __future__ import annotations

import concurrent.futures
import json
import urllib.error
import urllib.request

import pytest
import torch

from scratchlm.config import GenerateConfig
from scratchlm.data.templates import get_template
from scratchlm.generate.generate import generate_text
from scratchlm.serve.app import Service
from scratchlm.serve.engine import Engine
from scratchlm.serve.openai_api import Limits
from scratchlm.serve.server import BackgroundServer
from tests.tiny import tiny_gpt

openai = pytest.importorskip("openai")

KEY = "sk-test-key"


@pytest.fixture(scope="module")
def model_and_tokenizer(trained):
    return tiny_gpt(vocab_size=trained.vocab_size, context_length=128), trained


@pytest.fixture(scope="module")
def server(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    engine = Engine(model, tokenizer, max_batch=4, max_queue=8).start()
    service = Service(engine, tokenizer, "tiny", template=get_template("chatml"))
    with BackgroundServer(service, api_key=KEY, limits=Limits(max_body_bytes=20_000, max_tokens=40)) as url:
        yield url


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server + "/v1", api_key=KEY, max_retries=0, timeout=60)


def raw(server, path, body=None, key=KEY, data=None, method=None):
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    payload = data if data is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(server + path, data=payload, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_models_and_health(client, server):
    assert [m.id for m in client.models.list().data] == ["tiny"]
    status, body = raw(server, "/health")
    assert status == 200 and json.loads(body)["status"] == "ok"


def test_completion_is_what_generation_gives(client, model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompt = "def parse(text):"
    result = client.completions.create(model="tiny", prompt=prompt, max_tokens=12, temperature=0)
    expected = generate_text(model, tokenizer, prompt, GenerateConfig(max_new_tokens=12))
    assert result.choices[0].text == expected
    assert result.usage.prompt_tokens == len(tokenizer.encode_ordinary(prompt))
    assert result.usage.completion_tokens <= 12
    assert result.choices[0].finish_reason in ("length", "stop")


def test_streaming_completion_matches_and_reports_usage(client):
    kwargs = dict(model="tiny", prompt="import os\n", max_tokens=10, temperature=0)
    whole = client.completions.create(**kwargs).choices[0].text
    chunks = list(client.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens >= 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("length", "stop")


def test_chat_streaming_and_not(client):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is a list?"}]
    whole = client.chat.completions.create(model="tiny", messages=messages, max_tokens=8, temperature=0)
    assert whole.choices[0].message.role == "assistant"
    stream = client.chat.completions.create(
        model="tiny", messages=messages, max_tokens=8, temperature=0, stream=True
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole.choices[0].message.content


def test_n_choices_with_a_seed_are_reproducible(client):
    kwargs = dict(model="tiny", prompt="class ", max_tokens=6, temperature=1.0, n=3, seed=7)
    a = client.completions.create(**kwargs)
    b = client.completions.create(**kwargs)
    assert [c.index for c in a.choices] == [0, 1, 2]
    assert [c.text for c in a.choices] == [c.text for c in b.choices]


def test_stop_sequences(client):
    base = (
        client.completions.create(model="tiny", prompt="x = ", max_tokens=20, temperature=0).choices[0].text
    )
    if len(base) < 4:
        pytest.skip("the random model stopped too early to cut")
    stop = base[2:4]
    cut = client.completions.create(model="tiny", prompt="x = ", max_tokens=20, temperature=0, stop=[stop])
    assert cut.choices[0].text == base[: base.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_echo_logprobs_score_a_text(client, model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    text = "return value + 1"
    result = client.completions.create(model="tiny", prompt=text, max_tokens=0, echo=True, logprobs=2)
    lp = result.choices[0].logprobs
    ids = tokenizer.encode_ordinary(text)
    assert result.choices[0].text == text and len(lp.token_logprobs) == len(ids)
    assert lp.token_logprobs[0] is None
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids]))[0], dim=-1)
    assert lp.token_logprobs[1] == pytest.approx(float(logp[0, ids[1]]), abs=1e-4)
    assert len(lp.top_logprobs[1]) <= 2


def test_token_id_prompts_and_generated_logprobs(client):
    result = client.completions.create(
        model="tiny", prompt=[5, 6, 7], max_tokens=3, temperature=0, logprobs=1
    )
    lp = result.choices[0].logprobs
    assert len(lp.tokens) == result.usage.completion_tokens
    assert all(v <= 0 for v in lp.token_logprobs)


def test_errors_are_openai_errors(client, server):
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model="tiny", prompt="word " * 300, max_tokens=5)
    assert info.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="tiny", prompt=[5, 10**6], max_tokens=5)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="tiny", prompt="hi", max_tokens=41)  # over the server's cap
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-4", prompt="hi", max_tokens=5)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="tiny", prompt="hi", temperature=5)
    bad = openai.OpenAI(base_url=server + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_raw_http_refusals(server):
    assert raw(server, "/v1/models", key=None)[0] == 401
    status, body = raw(server, "/v1/completions", data=b"{not json", method="POST")
    assert status == 400 and json.loads(body)["error"]["code"] == "invalid_json"
    status, body = raw(server, "/v1/completions", data=b"x" * 30_000, method="POST")
    assert status == 413 and "error" in json.loads(body)
    assert raw(server, "/v1/chat/completions", {"messages": []})[0] == 400
    assert raw(server, "/v1/chat/completions", {"messages": [{"role": "robot", "content": "x"}]})[0] == 400
    assert raw(server, "/nope")[0] == 404
    status, page = raw(server, "/", key=None)
    assert (
        status == 200 and "<title>scratchlm chat</title>" in page and "http" not in page.split("<script>")[0]
    )


def test_concurrent_streams_are_batched(client, server):
    def one(i):
        return client.completions.create(model="tiny", prompt=f"value_{i} = ", max_tokens=20, temperature=0)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, range(8)))
    assert all(r.choices[0].finish_reason in ("length", "stop") for r in results)


def test_a_classifier_answers_classify_only(tmp_path, trained):
    from scratchlm.formats.model_files import save_classifier
    from scratchlm.generate.classifier import Classifier
    from scratchlm.model.heads import add_classifier_head
    from scratchlm.serve.server import build_service

    model = tiny_gpt(vocab_size=trained.vocab_size, n_layers=1)
    save_classifier(add_classifier_head(model, 2).eval(), tmp_path / "clf", trained, ["ham", "spam"], 32)
    service = build_service(str(tmp_path / "clf"))
    assert service.engine is None
    expected = Classifier.from_dir(tmp_path / "clf", device="cpu").predict(["free prize", "see you"])
    with BackgroundServer(service) as url:
        status, body = raw(url, "/v1/classify", {"input": ["free prize", "see you"]}, key=None)
        assert status == 200
        data = json.loads(body)["data"]
        assert [d["label"] for d in data] == [p.label for p in expected]
        assert data[0]["probabilities"]["spam"] == pytest.approx(expected[0].probabilities["spam"], abs=1e-5)
        status, body = raw(url, "/v1/completions", {"prompt": "hi"}, key=None)
        assert status == 400 and json.loads(body)["error"]["code"] == "not_a_language_model"
        assert json.loads(raw(url, "/v1/models", key=None)[1])["data"][0]["context_length"] == 32
    # serve --dtype bf16 applies to a classifier too: its weights in bf16, probabilities still float32
    bf16 = build_service(str(tmp_path / "clf"), dtype="bf16").classifier
    assert bf16.model.out_head.weight.dtype == torch.bfloat16
    probabilities = bf16.probabilities(["free prize"])
    assert probabilities.dtype == torch.float32 and probabilities.sum().item() == pytest.approx(1.0, abs=1e-5)


def test_classify_on_a_language_model_is_404(client, server):
    status, body = raw(server, "/v1/classify", {"input": "x"})
    assert status == 404 and "not a classifier" in json.loads(body)["error"]["message"]
