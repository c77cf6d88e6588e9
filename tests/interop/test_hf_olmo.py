"""Olmo 2 and Olmo 3 checkpoints from `transformers`: post-norm blocks, QK-norm over the whole projections,
and (Olmo 3) sliding windows on three layers of four: random-weight models load with the same logits on
prompts longer than the window, decode with the KV cache past three windows as the full pass and
`transformers.generate` do, in both config dialects."""

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
X = torch.randint(0, 101, (2, 40), generator=torch.Generator().manual_seed(7))


def save_olmo(directory: Path, family: str = "olmo3", seed: int = 0, **overrides) -> torch.nn.Module:
    """A random-weight Olmo 2 or 3 (4 layers; 4 query heads sharing 2 key/value heads; Olmo 3: a window of 8
    on layers 1-3, layer 4 full) saved there, its norms away from 1."""
    settings = {
        "vocab_size": 101,
        "hidden_size": 32,
        "intermediate_size": 88,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 128,
        "rms_norm_eps": 1e-6,
        **({"sliding_window": WINDOW} if family == "olmo3" else {}),
        **overrides,
    }
    prefix = {"olmo2": "Olmo2", "olmo3": "Olmo3"}[family]
    torch.manual_seed(seed)
    config = getattr(transformers, f"{prefix}Config")(**settings)
    model = getattr(transformers, f"{prefix}ForCausalLM")(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    model.save_pretrained(directory)
    return model


@pytest.mark.parametrize(
    ("family", "overrides"),
    [
        ("olmo3", {}),
        ("olmo3", {"tie_word_embeddings": True, "num_key_value_heads": 1}),
        ("olmo3", {"rope_parameters": {  # the full layers scaled, the sliding ones at their own base
            "full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 500_000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
        }}),
        ("olmo3", {"rope_parameters": {  # Olmo 3's long-context recipe: yarn on the full layers only
            "full_attention": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16,
                               "rope_theta": 500_000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 500_000.0},
        }}),
        ("olmo2", {}),
        ("olmo2", {"num_key_value_heads": 4, "rope_theta": 10_000.0}),
    ],
)  # fmt: skip
def test_logits_equal_transformers_on_prompts_longer_than_the_window(tmp_path, family, overrides):
    theirs = save_olmo(tmp_path, family, **overrides)
    ours, _ = load_model(tmp_path)
    cfg = ours.cfg
    assert cfg.norm_placement == "post" and cfg.qk_norm_scope == "projection"
    kinds = ("sliding", "sliding", "sliding", "full") if family == "olmo3" else ("full",) * 4
    assert cfg.kinds == kinds
    with torch.no_grad():
        assert (ours(X) - theirs(X).logits).abs().max().item() <= 1e-5


@pytest.mark.parametrize("family", ["olmo3", "olmo2"])
def test_cached_decoding_past_three_windows_and_chunked_prefill_equal_the_full_pass(tmp_path, family):
    theirs = save_olmo(tmp_path, family)
    ours, _ = load_model(tmp_path)
    with torch.no_grad():
        full = ours(X)
        cache = KVCache.for_model(ours.cfg, batch_size=2)
        chunks = [ours(X[:, a:b], kv_cache=cache) for a, b in ((0, 5), (5, 19), (19, 20), (20, 40))]
        assert (torch.cat(chunks, dim=1) - full).abs().max().item() <= 1e-5
        prompt = X[:, :12]
        expected = theirs.generate(
            prompt, max_new_tokens=3 * WINDOW + 4, do_sample=False, eos_token_id=None, pad_token_id=0
        )
    assert torch.equal(generate(ours, prompt, max_new_tokens=3 * WINDOW + 4, stop_at_eos=False), expected)


def test_the_transformers_4_dialect(tmp_path):
    """transformers 4 wrote one rope_theta (and rope_scaling) for every layer of Olmo 3."""
    theirs = save_olmo(tmp_path, "olmo3")
    config = json.loads((tmp_path / "config.json").read_text())
    params = config.pop("rope_parameters")
    config["rope_theta"] = params["full_attention"]["rope_theta"]
    config.pop("layer_types")  # the default pattern: every fourth layer full
    (tmp_path / "config.json").write_text(json.dumps(config))
    ours, _ = load_model(tmp_path)
    assert ours.cfg.kinds == ("sliding", "sliding", "sliding", "full") and ours.cfg.rope_local_theta is None
    with torch.no_grad():
        assert (ours(X) - theirs(X).logits).abs().max().item() <= 1e-5


OLMO = {
    "model_type": "olmo3",
    "vocab_size": 10,
    "hidden_size": 8,
    "intermediate_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_act": "gelu"}, "hidden_act 'gelu'"),
        ({"attention_bias": True}, "attention_bias"),
        ({"layer_types": ["chunked_attention", "full_attention"]}, "chunked_attention"),
        ({"rope_scaling": {"rope_type": "longrope", "factor": 8.0}}, "rope type 'longrope' is not supported"),
        (
            {"rope_scaling": {"rope_type": "yarn", "factor": 8.0}},
            "yarn scaling has no 'original_max_position",
        ),
        ({"num_experts": 64}, "mixture-of-experts"),
    ],
)
def test_unsupported_olmo_configs_are_named(change, message):
    with pytest.raises(ScratchLMError, match=message):
        config_from_hf_llama({**OLMO, **change})
