"""Llama-family checkpoints from `transformers` (Llama, Qwen2.5, Qwen3): random-weight models saved with
`save_pretrained` (GQA, tied and untied heads, rope scalings, q/k/v biases, QK-norm, a separate head size,
sharded safetensors, both config dialects) load into scratchlm with the same logits, decode with the KV
cache as `transformers` generates, and bad input is a clear error."""

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

LLAMA3_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 32,
}


def save_llama(
    directory: Path, seed: int = 0, shard: str | None = None, family: str = "llama", **overrides
) -> torch.nn.Module:
    """A random-weight model of `family` (2 layers, 4 query heads sharing 2 key/value heads) saved there."""
    import transformers

    prefix = {"llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2", "qwen3": "Qwen3"}[family]
    config_class = getattr(transformers, f"{prefix}Config")
    model_class = getattr(transformers, f"{prefix}ForCausalLM")
    settings = {
        "vocab_size": 101,
        "hidden_size": 32,
        "intermediate_size": 88,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 128,
        "rope_theta": 500000.0,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
        **overrides,
    }
    torch.manual_seed(seed)
    model = model_class(config_class(**settings)).eval()
    with torch.no_grad():  # norms away from 1 and biases away from 0: a misplaced one cannot pass unnoticed
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
            elif name.endswith("bias"):
                p.normal_(0, 0.1)
    model.save_pretrained(directory, max_shard_size=shard) if shard else model.save_pretrained(directory)
    return model


X = torch.randint(0, 101, (2, 40), generator=torch.Generator().manual_seed(7))


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"tie_word_embeddings": True},
        {"num_key_value_heads": 1},  # multi-query
        {"num_key_value_heads": 4},  # plain multi-head
        {"head_dim": 16},  # heads wider than hidden / heads
        {"rope_scaling": LLAMA3_SCALING},
        {"rope_scaling": {"rope_type": "linear", "factor": 2.0}},
        {"rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16}},
    ],
)
def test_logits_equal_transformers(tmp_path, overrides):
    theirs = save_llama(tmp_path, **overrides)
    ours, tokenizer = load_model(tmp_path)
    assert tokenizer is None  # no tokenizer files in the directory
    assert ours.cfg.tie_embeddings == overrides.get("tie_word_embeddings", False)
    # built on the meta device, then given the loaded tensors: nothing left there, fp32, the tie restored
    tensors = [*ours.parameters(), *ours.buffers()]
    assert all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)
    assert (ours.out_head.weight is ours.emb.tok_emb.weight) == ours.cfg.tie_embeddings
    with torch.no_grad():
        expected = theirs(X).logits
        got = ours(X)
    assert (got - expected).abs().max().item() <= 1e-5


@pytest.mark.parametrize(
    ("family", "overrides"),
    [
        ("qwen2", {}),
        ("qwen2", {"tie_word_embeddings": True, "num_key_value_heads": 1}),
        ("qwen2", {"sliding_window": 32768, "use_sliding_window": False}),  # as Qwen2.5's configs say
        ("qwen3", {"head_dim": 16}),  # 4 heads x 16 = 64 > hidden 32, as Qwen3-0.6B's 16 x 128 > 1024
        ("qwen3", {"head_dim": 16, "tie_word_embeddings": True}),
        ("qwen3", {"rope_scaling": {"rope_type": "linear", "factor": 2.0}}),
        (
            "qwen3",
            {
                "rope_scaling": {
                    "rope_type": "yarn",
                    "factor": 4.0,
                    "original_max_position_embeddings": 16,
                    "attention_factor": 1.2,
                }
            },
        ),  # Qwen3's long-context recipe
        ("mistral", {"sliding_window": None}),  # Mistral with full attention is Llama's skeleton
        ("mistral", {"sliding_window": 8}),  # a window on every layer, 5 times shorter than the prompt
        ("mistral", {"sliding_window": None, "tie_word_embeddings": True, "head_dim": 16}),
    ],
)
def test_qwen_and_mistral_logits_equal_transformers(tmp_path, family, overrides):
    theirs = save_llama(tmp_path, family=family, **overrides)
    ours, _ = load_model(tmp_path)
    assert ours.cfg.qkv_bias == (family == "qwen2") and ours.cfg.qk_norm == (family == "qwen3")
    assert ours.cfg.head_dim == (getattr(theirs.config, "head_dim", None) or 32 // 4)
    with torch.no_grad():
        assert (ours(X) - theirs(X).logits).abs().max().item() <= 1e-5
        cache = KVCache.for_model(ours.cfg, batch_size=2)
        chunked = torch.cat([ours(X[:, :25], kv_cache=cache), ours(X[:, 25:], kv_cache=cache)], dim=1)
        assert (chunked - ours(X)).abs().max().item() <= 1e-5
        expected = theirs.generate(
            X[:, :8], max_new_tokens=20, do_sample=False, eos_token_id=None, pad_token_id=0
        )
    assert torch.equal(generate(ours, X[:, :8], max_new_tokens=20, stop_at_eos=False), expected)


def test_bf16_loading_matches_transformers_in_bf16(tmp_path):
    """--dtype bf16: the weights converted as they are read, the rotary frequencies kept in fp32 (as
    transformers keeps them), logits as close to transformers' bf16 run as bf16 allows."""
    save_llama(tmp_path, family="qwen3", head_dim=16, rope_scaling=LLAMA3_SCALING)
    ours, _ = load_model(tmp_path, dtype="bf16")
    assert all(p.dtype == torch.bfloat16 for p in ours.parameters())
    assert ours.inv_freq.dtype == torch.float32
    theirs = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    exact = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        reference = exact(X).logits
        theirs_error = (theirs(X).logits.float() - reference).abs().max().item()
        got = ours(X)
        assert got.dtype == torch.bfloat16
        ours_error = (got.float() - reference).abs().max().item()
        assert 0 < ours_error <= 2 * theirs_error  # bf16's own rounding, no worse than transformers'
        generated = generate(ours, X[:, :8], max_new_tokens=10, stop_at_eos=False)
    assert generated.shape == (2, 18)
    with pytest.raises(ScratchLMError, match="dtype 'int8': expected fp32, bf16 or fp16"):
        load_model(tmp_path, dtype="int8")


def test_sharded_files_and_the_transformers_4_dialect(tmp_path):
    theirs = save_llama(tmp_path, shard="20KB", rope_scaling=LLAMA3_SCALING)
    assert len(list(tmp_path.glob("model-*.safetensors"))) > 1
    config = json.loads((tmp_path / "config.json").read_text())
    params = config.pop("rope_parameters")  # rewrite it as transformers 4 wrote it
    config["rope_theta"] = params.pop("rope_theta")
    config["rope_scaling"] = {"type" if k == "rope_type" else k: v for k, v in params.items()}
    (tmp_path / "config.json").write_text(json.dumps(config))
    ours, _ = load_model(tmp_path)
    assert ours.cfg.rope_type == "llama3" and ours.cfg.rope_theta == 500000.0
    assert ours.cfg.rope_original_context == 32 and ours.cfg.rope_factor == 8.0
    with torch.no_grad():
        assert (ours(X) - theirs(X).logits).abs().max().item() <= 1e-5


def test_cached_decoding_and_chunked_prefill_equal_the_full_pass_and_transformers_generate(tmp_path):
    theirs = save_llama(tmp_path, num_key_value_heads=1)
    ours, _ = load_model(tmp_path)
    prompt = X[:, :10]
    with torch.no_grad():
        cache = KVCache.for_model(ours.cfg, batch_size=2)
        chunked = torch.cat([ours(prompt[:, :6], kv_cache=cache), ours(prompt[:, 6:], kv_cache=cache)], dim=1)
        assert (chunked - ours(prompt)).abs().max().item() <= 1e-5
        expected = theirs.generate(
            prompt, max_new_tokens=30, do_sample=False, eos_token_id=None, pad_token_id=0
        )
    assert torch.equal(generate(ours, prompt, max_new_tokens=30, stop_at_eos=False), expected)


def test_the_kv_cache_holds_the_shared_heads_only(tmp_path):
    save_llama(tmp_path, num_key_value_heads=1)
    ours, _ = load_model(tmp_path)
    cache = KVCache.for_model(ours.cfg, batch_size=1)
    assert cache.k.shape[2] == 1  # one key/value head for 4 query heads


BASE = {
    "model_type": "llama",
    "vocab_size": 10,
    "hidden_size": 8,
    "intermediate_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_type": "mixtral"}, "not a Llama-family model"),
        ({"num_local_experts": 8}, "mixture-of-experts"),
        ({"attention_sink_size": 4}, "attention sinks"),
        ({"model_type": "qwen3", "sliding_window": 4096, "use_sliding_window": True}, "sliding-window"),
        ({"rope_scaling": {"rope_type": "longrope", "factor": 4.0}}, "rope type 'longrope' is not supported"),
        ({"rope_parameters": {"rope_type": "dynamic", "rope_theta": 1e4}}, "rope type 'dynamic'"),
        ({"hidden_act": "gelu"}, "hidden_act 'gelu'"),
        ({"attention_bias": True}, "attention_bias=true"),
        (
            {"rope_scaling": {"rope_type": "llama3", "factor": 8.0}},
            "rope llama3 scaling has no 'low_freq_factor'",
        ),
        ({"intermediate_size": None}, "the config has no 'intermediate_size'"),  # None: the key left out
        ({"model_type": "qwen2", "sliding_window": 4096, "use_sliding_window": True}, "sliding-window"),
        ({"model_type": "qwen3", "layer_types": ["sliding_attention"]}, "only full attention"),
    ],
)
def test_unsupported_configs_are_named(change, message):
    config = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    with pytest.raises(ScratchLMError, match=message):
        config_from_hf_llama(config)


def test_mistral_with_and_without_a_window():
    cfg = config_from_hf_llama({**BASE, "model_type": "mistral", "sliding_window": None})
    assert cfg.positions == "rope" and cfg.mlp == "swiglu" and cfg.kinds == ("full",)
    cfg = config_from_hf_llama({**BASE, "model_type": "mistral", "sliding_window": 4096})
    assert cfg.kinds == ("sliding",) and cfg.sliding_window == 4096


def test_missing_unexpected_and_misshaped_tensors_are_named(tmp_path):
    from safetensors.torch import load_file, save_file

    save_llama(tmp_path)
    weights = tmp_path / "model.safetensors"
    original = load_file(str(weights))

    def load_with(tensors):
        save_file(tensors, str(weights), metadata={"format": "pt"})
        with pytest.raises(ScratchLMError) as info:
            load_model(tmp_path)
        return str(info.value)

    untied = {k: v for k, v in original.items() if k != "lm_head.weight"}
    assert "lacks" in load_with(untied) and "out_head.weight" in load_with(untied)
    no_k = {k: v for k, v in original.items() if k != "model.layers.1.self_attn.k_proj.weight"}
    assert "layers.1.self_attn.k_proj" in load_with(no_k)
    assert "'model.layers.0.mlp.extra.weight'" in load_with(
        {**original, "model.layers.0.mlp.extra.weight": original["model.norm.weight"].clone()}
    )
    narrow = {**original, "model.norm.weight": original["model.norm.weight"][:16]}
    assert "final_norm.scale has shape (16,)" in load_with(narrow)


def test_a_loaded_model_trains(tmp_path):
    # Its parameters are the loaded tensors themselves (assigned, not copied): they must be writable leaves.
    save_llama(tmp_path, tie_word_embeddings=True)
    model, _ = load_model(tmp_path)
    before = model.emb.tok_emb.weight.detach().clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    model(X[:, :16]).logsumexp(-1).mean().backward()
    optimizer.step()
    assert all(p.requires_grad and p.grad is not None for p in model.parameters())
    assert not torch.equal(model.emb.tok_emb.weight, before)
    assert model.out_head.weight is model.emb.tok_emb.weight  # still one tensor after the step
