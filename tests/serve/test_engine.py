"""The continuous-batching engine gives every request exactly what it would get alone."""

from __future__ import annotations

import queue
import threading

import pytest

from scratchlm.config import GenerateConfig
from scratchlm.errors import ScratchLMError
from scratchlm.generate.generate import stream_tokens
from scratchlm.serve.engine import Done, Engine, QueueFull, Request, TokenEvent, prompt_logprobs
from tests.tiny import tiny_gpt


class Letters:
    """A tokenizer stand-in: each id is one letter (enough to test text streaming and stop strings)."""

    eot_id = 0

    def decode(self, ids):
        return "".join(chr(97 + i % 26) for i in ids)


# GPT-2's shape, a modern one whose cache slots hold fewer key/value heads than it has query heads, and
# Gemma 3's block with a 6-token window on alternate layers (prompts and replies run past it).
MODERN = {"positions": "rope", "norm": "rmsnorm", "mlp": "swiglu", "bias": False, "n_heads": 4}
MODERN["n_kv_heads"] = 2
GEMMA = {**MODERN, "norm": "rmsnorm_offset", "mlp": "geglu", "norm_placement": "sandwich", "qk_norm": True}
GEMMA.update(emb_scale=True, sliding_window=6, layer_types=("sliding", "full"), rope_local_theta=100.0)


@pytest.fixture(scope="module", params=["gpt2", "modern", "gemma"])
def model(request):
    shape = {"gpt2": {}, "modern": MODERN, "gemma": GEMMA}[request.param]
    return tiny_gpt(vocab_size=260, context_length=48, **shape)


def collect(engine, prompt, **config):
    events: queue.SimpleQueue = queue.SimpleQueue()
    request = Request(list(prompt), GenerateConfig(stop_at_eos=False, **config), events.put)
    engine.submit(request)
    return request, events


def drain(events, timeout=30):
    tokens, text = [], ""
    while True:
        event = events.get(timeout=timeout)
        if isinstance(event, Done):
            return tokens, text + event.text, event
        tokens.append(event.token)
        text += event.text


def alone(model, prompt, n, **config):
    return list(stream_tokens(model, prompt, GenerateConfig(max_new_tokens=n, stop_at_eos=False, **config)))


def test_concurrent_requests_match_generation_alone(model):
    prompts = [[5, 6, 7], list(range(10, 30)), [99], list(range(40, 47)), [1, 2] * 5, [200, 201, 202, 203]]
    engine = Engine(model, Letters(), max_batch=3).start()
    try:
        jobs = [collect(engine, p, max_new_tokens=12) for p in prompts]
        results = [drain(events) for _, events in jobs]
    finally:
        engine.stop()
    for prompt, (tokens, _, done) in zip(prompts, results):
        assert tokens == alone(model, prompt, 12)
        assert done.finish_reason == "length" and done.completion_tokens == 12
        assert done.prompt_tokens == len(prompt)
    assert engine.stats["max_active"] == 3


def test_rows_that_outgrow_the_cache_shift_and_stay_exact(model):
    # 48 positions: a long prompt joins late, the cache shifts; tokens still match generation alone
    engine = Engine(model, Letters(), max_batch=2).start()
    try:
        first = collect(engine, [3, 4, 5], max_new_tokens=40)
        second = collect(engine, list(range(50, 80)), max_new_tokens=15)
        (a, _, done_a), (b, _, _) = drain(first[1]), drain(second[1])
    finally:
        engine.stop()
    assert a == alone(model, [3, 4, 5], 40) and done_a.finish_reason == "length"
    assert b == alone(model, list(range(50, 80)), 15)


def test_sampling_with_a_seed_is_reproducible_and_per_request(model):
    engine = Engine(model, Letters(), max_batch=4).start()
    try:
        runs = [
            collect(engine, [7, 8, 9], max_new_tokens=10, temperature=1.0, top_k=20, seed=s)
            for s in (1, 1, 2)
        ]
        tokens = [drain(events)[0] for _, events in runs]
    finally:
        engine.stop()
    assert tokens[0] == tokens[1] != tokens[2]
    assert tokens[0] == alone(model, [7, 8, 9], 10, temperature=1.0, top_k=20, seed=1)


def test_stop_strings_cut_the_text_and_end_the_request(model):
    engine = Engine(model, Letters(), max_batch=2).start()
    try:
        tokens, text, _ = drain(collect(engine, [65, 66], max_new_tokens=20)[1])
        full = Letters().decode(tokens)
        assert text == full
        stop = full[3:5]
        _, cut, done = drain(collect(engine, [65, 66], max_new_tokens=20, stop=(stop,))[1])
    finally:
        engine.stop()
    assert done.finish_reason == "stop"
    assert cut == full[: full.index(stop)]


def test_cancel_frees_the_slot(model):
    engine = Engine(model, Letters(), max_batch=1).start()
    try:
        request, events = collect(engine, [1, 2, 3], max_new_tokens=10_000)
        assert isinstance(events.get(timeout=30), TokenEvent)
        request.cancel()
        while not isinstance(event := events.get(timeout=30), Done):
            pass
        assert event.finish_reason in ("cancelled", "length")
        tokens, _, done = drain(collect(engine, [4], max_new_tokens=3)[1])  # the slot serves again
        assert len(tokens) == 3 and done.finish_reason == "length"
    finally:
        engine.stop()


def test_queue_bound_and_bad_prompts(model):
    engine = Engine(model, Letters(), max_batch=1, max_queue=1)  # not started: nothing leaves the queue
    engine.submit(Request([1], GenerateConfig(), lambda e: None))
    with pytest.raises(QueueFull):
        engine.submit(Request([1], GenerateConfig(), lambda e: None))
    with pytest.raises(ScratchLMError, match="context"):
        engine.submit(Request(list(range(48)), GenerateConfig(), lambda e: None))
    with pytest.raises(ScratchLMError, match="empty"):
        engine.submit(Request([], GenerateConfig(), lambda e: None))


def test_logprobs_are_the_models(model):
    engine = Engine(model, Letters(), max_batch=2).start()
    try:
        events: queue.SimpleQueue = queue.SimpleQueue()
        engine.submit(
            Request([10, 11, 12], GenerateConfig(max_new_tokens=2, stop_at_eos=False), events.put, logprobs=3)
        )
        first = events.get(timeout=30)
        scored = engine.run_on_model(lambda: prompt_logprobs(model, [10, 11, 12, first.token], top=3))
    finally:
        engine.stop()
    assert len(first.top) == 3 and first.top[0][0] == first.token  # greedy picks the most likely
    assert first.logprob == pytest.approx(scored[-1][0], abs=1e-4)
    assert scored[0] == (None, [])


def test_many_threads_submitting(model):
    engine = Engine(model, Letters(), max_batch=4).start()
    results = {}

    def client(i):
        results[i] = drain(collect(engine, [i + 1, i + 2], max_new_tokens=5)[1])[0]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(10)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        engine.stop()
    assert all(results[i] == alone(model, [i + 1, i + 2], 5) for i in range(10))


def test_a_failing_request_does_not_stop_the_engine(model, monkeypatch):
    import scratchlm.serve.engine as engine_module

    real = engine_module.sample_next
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_module, "sample_next", flaky)
    engine = Engine(model, Letters(), max_batch=2).start()
    try:
        _, _, failed = drain(collect(engine, [1, 2], max_new_tokens=3)[1])
        tokens, _, done = drain(collect(engine, [1, 2], max_new_tokens=3)[1])
    finally:
        engine.stop()
    assert failed.finish_reason == "error" and "boom" in failed.error
    assert done.finish_reason == "length" and tokens == alone(model, [1, 2], 3)
