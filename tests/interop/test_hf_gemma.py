"""Gemma 3 (`gemma3_text`) checkpoints from `transformers`: random-weight models with mixed sliding and full
layers and a window shorter than the prompt load with the same logits, decode with the KV cache past three
windows as the full pass and `transformers.generate` do, in both config dialects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from scratchlm.errors import ScratchLMError
from scratchlm.formats.model_files import load_model
from scratchlm.generate.generate import generate
from scratchlm.interop.hf_llama import config_from_hf_llama
from scratchlm.model.kv_cache import KVCache

transformers = pytest.importorskip("transformers")

WINDOW = 8
X = torch.randint(0, 101, (2, 40), generator=torch.Generator().manual_seed(7))  # 5 windows long


def save_gemma3(directory: Path, seed: int = 0, **overrides) -> torch.nn.Module:
    """A random-weight Gemma 3 (4 layers: sliding, full, sliding, sliding; 4 query heads of 16 sharing 2
    key/value heads; a window of 8) saved there, its norms and scales away from their defaults."""
    settings = {
        "vocab_size": 101,
        "hidden_size": 32,
        "intermediate_size": 88,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 128,
        "sliding_window": WINDOW,
        "layer_types": ["sliding_attention", "full_attention", "sliding_attention", "sliding_attention"],
        "query_pre_attn_scalar": 20,
        "rope_parameters": {
            "full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1_000_000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
        },
        "attn_implementation": "eager",
        **overrides,
    }
    torch.manual_seed(seed)
    model = transformers.Gemma3ForCausalLM(transformers.Gemma3TextConfig(**settings)).eval()
    with torch.no_grad():  # Gemma's norms start at 0 (gain 1 + w): a misplaced one must show
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(-0.5, 0.5)
    model.save_pretrained(directory)
    return model


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"tie_word_embeddings": False, "num_key_value_heads": 1},
        {"final_logit_softcapping": 3.0},  # small enough to bite: the logits are squashed
    ],
)
def test_logits_equal_transformers_on_prompts_longer_than_the_window(tmp_path, overrides):
    theirs = save_gemma3(tmp_path, **overrides)
    ours, _ = load_model(tmp_path)
    cfg = ours.cfg
    assert cfg.kinds == ("sliding", "full", "sliding", "sliding") and cfg.sliding_window == WINDOW
    assert cfg.norm_placement == "sandwich" and cfg.mlp == "geglu" and cfg.rope_local_theta == 10_000.0
    assert (ours.out_head.weight is ours.emb.tok_emb.weight) == overrides.get("tie_word_embeddings", True)
    with torch.no_grad():
        expected = theirs(X).logits
        got = ours(X)
    assert (got - expected).abs().max().item() <= 1e-5
    if "final_logit_softcapping" in overrides:
        assert got.abs().max().item() < 3.0


def test_cached_decoding_past_three_windows_and_chunked_prefill_equal_the_full_pass(tmp_path):
    theirs = save_gemma3(tmp_path)
    ours, _ = load_model(tmp_path)
    with torch.no_grad():
        full = ours(X)
        cache = KVCache.for_model(ours.cfg, batch_size=2)
        chunks = [ours(X[:, a:b], kv_cache=cache) for a, b in ((0, 5), (5, 19), (19, 20), (20, 40))]
        assert (torch.cat(chunks, dim=1) - full).abs().max().item() <= 1e-5
        prompt = X[:, :12]  # longer than the window; 3 windows and more of new tokens
        expected = theirs.generate(
            prompt, max_new_tokens=3 * WINDOW + 4, do_sample=False, eos_token_id=None, pad_token_id=0
        )
    got = generate(ours, prompt, max_new_tokens=3 * WINDOW + 4, stop_at_eos=False)
    assert torch.equal(got, expected)
    uncached = generate(ours, prompt, max_new_tokens=3 * WINDOW + 4, stop_at_eos=False, use_cache=False)
    assert torch.equal(uncached, expected)


def test_a_left_padded_batch_decodes_each_row_as_alone(tmp_path):
    save_gemma3(tmp_path)
    ours, _ = load_model(tmp_path)
    from scratchlm.config import GenerateConfig
    from scratchlm.generate.generate import generate_batch

    prompts = [X[0, :15].tolist(), X[1, :4].tolist()]
    config = GenerateConfig(max_new_tokens=2 * WINDOW, stop_at_eos=False)
    together = generate_batch(ours, prompts, config)
    alone = [generate_batch(ours, [p], config)[0] for p in prompts]
    assert together == alone


def test_the_transformers_4_dialect(tmp_path):
    """transformers 4 wrote rope_theta, rope_local_base_freq and rope_scaling, and the layer pattern as
    sliding_window_pattern."""
    theirs = save_gemma3(tmp_path, num_hidden_layers=3, layer_types=None, sliding_window_pattern=3)
    config = json.loads((tmp_path / "config.json").read_text())
    params = config.pop("rope_parameters")
    config.pop("layer_types")
    config["rope_theta"] = params["full_attention"]["rope_theta"]
    config["rope_local_base_freq"] = params["sliding_attention"]["rope_theta"]
    config["rope_scaling"] = {"rope_type": "linear", "factor": 2.0}
    config["sliding_window_pattern"] = 3
    (tmp_path / "config.json").write_text(json.dumps(config))
    ours, _ = load_model(tmp_path)
    assert ours.cfg.kinds == ("sliding", "sliding", "full")
    assert ours.cfg.rope_type == "linear" and ours.cfg.rope_theta == 1_000_000.0
    with torch.no_grad():
        assert (ours(X) - theirs(X).logits).abs().max().item() <= 1e-5


GEMMA = {
    "model_type": "gemma3_text",
    "vocab_size": 10,
    "hidden_size": 8,
    "intermediate_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "head_dim": 4,
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_activation": "silu"}, "hidden_activation 'silu'"),
        ({"use_bidirectional_attention": True}, "use_bidirectional_attention"),
        ({"layer_types": ["chunked_attention", "full_attention"]}, "chunked_attention"),
        (
            {"rope_parameters": {"sliding_attention": {"rope_type": "yarn", "rope_theta": 1e4, "factor": 2}}},
            "on the sliding layers",
        ),
        ({"hidden_size": None}, "the config has no 'hidden_size'"),
    ],
)
def test_unsupported_gemma_configs_are_named(change, message):
    config = {k: v for k, v in {**GEMMA, **change}.items() if v is not None}
    with pytest.raises(ScratchLMError, match=message):
        config_from_hf_llama(config)
