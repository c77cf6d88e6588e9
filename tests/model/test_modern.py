"""The modern families' parts as config choices: rotary positions (with linear and llama3 scaling), RMSNorm,
SwiGLU, grouped-query attention, no biases, an explicit head size. Each alone against its definition or
Hugging Face's implementation, then the whole model: the KV cache, padding and sizing stay exact."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from scratchlm.config import ModelConfig
from scratchlm.errors import ScratchLMError
from scratchlm.generate.generate import generate, generate_batch
from scratchlm.model import GPT
from scratchlm.model.attention import MultiHeadAttention
from scratchlm.model.blocks import RMSNorm, SwiGLU
from scratchlm.model.kv_cache import KVCache
from scratchlm.model.lora import apply_lora, lora_modules
from scratchlm.model.rope import apply_rotary, inverse_frequencies, rope_scale, rotary_angles
from scratchlm.model.sizing import flops_per_token, kv_cache_bytes, parameter_count
from tests.tiny import tiny_config, tiny_gpt

MODERN = {
    "positions": "rope",
    "norm": "rmsnorm",
    "mlp": "swiglu",
    "bias": False,
    "n_heads": 4,
    "n_kv_heads": 2,
    "ff_dim": 88,
    "norm_eps": 1e-6,
}


def modern(**overrides) -> ModelConfig:
    return tiny_config(**{"vocab_size": 97, "context_length": 48, **MODERN, **overrides})


# ---- rotary positions --------------------------------------------------------------------------------------


def test_rotation_keeps_lengths_and_scores_depend_only_on_distance():
    cfg = modern()
    inv_freq = inverse_frequencies(cfg)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, cfg.head_dim, generator=g), torch.randn(1, 1, 1, cfg.head_dim, generator=g)

    def at(x, pos):
        return apply_rotary(x, *rotary_angles(inv_freq, torch.tensor([[pos]])))

    assert torch.allclose(at(q, 7).norm(), q.norm(), atol=1e-6)
    scores = [(at(q, p + 5) * at(k, p)).sum() for p in (0, 3, 20)]  # the same distance, 5, anywhere
    assert all(torch.allclose(s, scores[0], atol=1e-5) for s in scores)
    assert not torch.allclose((at(q, 9) * at(k, 0)).sum(), scores[0], atol=1e-3)


def test_frequencies_are_theta_powers_in_the_half_split_layout():
    cfg = modern(rope_theta=500000.0)
    D = cfg.head_dim
    expected = torch.tensor([500000.0 ** (-2 * i / D) for i in range(D // 2)])
    assert torch.allclose(inverse_frequencies(cfg), expected, rtol=1e-6)
    cos, _ = rotary_angles(inverse_frequencies(cfg), torch.tensor([[2]]))
    assert torch.equal(cos[..., : D // 2], cos[..., D // 2 :])  # pair i is coordinates (i, i + D/2)


transformers = pytest.importorskip("transformers")


@pytest.mark.parametrize(
    ("scaling", "ours"),
    [
        (None, {}),
        ({"rope_type": "linear", "factor": 4.0}, {"rope_type": "linear", "rope_factor": 4.0}),
        (
            {
                "rope_type": "llama3",
                "factor": 32.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            },
            {
                "rope_type": "llama3",
                "rope_factor": 32.0,
                "rope_low_freq_factor": 1.0,
                "rope_high_freq_factor": 4.0,
                "rope_original_context": 64,
            },
        ),
        # yarn, read by our importer (its attention factor resolved as transformers resolves it)
        ({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}, None),
        (
            {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 256, "beta_fast": 16.0,
             "beta_slow": 2.0, "attention_factor": 1.3, "truncate": False},
            None,
        ),
        (
            {"rope_type": "yarn", "factor": 16.0, "original_max_position_embeddings": 128, "mscale": 1.0,
             "mscale_all_dim": 0.5},
            None,
        ),
    ],
)  # fmt: skip
def test_rotary_equals_hugging_faces(scaling, ours):
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    hf_cfg = LlamaConfig(
        hidden_size=64,
        num_attention_heads=2,
        max_position_embeddings=2048,
        rope_theta=500000.0,
        rope_scaling=scaling,
    )
    if ours is None:
        from scratchlm.interop.hf_llama import rope_settings

        ours = rope_settings(
            {"rope_theta": 500000.0, "rope_scaling": scaling, "max_position_embeddings": 2048}
        )
    cfg = modern(**{"emb_dim": 64, "n_heads": 2, "n_kv_heads": None, "rope_theta": 500000.0, **ours},
                 context_length=2048)  # fmt: skip
    hf_rope = LlamaRotaryEmbedding(hf_cfg)
    assert torch.allclose(hf_rope.inv_freq, inverse_frequencies(cfg), rtol=1e-6, atol=0)
    assert rope_scale(cfg) == pytest.approx(hf_rope.attention_scaling, rel=1e-9)
    positions = torch.tensor([[0, 1, 5, 63, 100, 2047]])
    x = torch.randn(1, 2, 6, 32, generator=torch.Generator().manual_seed(1))
    cos, sin = hf_rope(x, positions)
    expected, _ = apply_rotary_pos_emb(x, x, cos, sin)
    ours_cos, ours_sin = rotary_angles(inverse_frequencies(cfg), positions, rope_scale(cfg))
    assert torch.allclose(apply_rotary(x, ours_cos, ours_sin), expected, atol=1e-6)


def test_an_unknown_rope_type_is_a_clear_error():
    with pytest.raises(ScratchLMError, match=r"rope_type 'dynamic' is not supported \(supported: default"):
        modern(rope_type="dynamic")
    with pytest.raises(ScratchLMError, match="even head_dim"):
        modern(head_size=7)


# ---- norms, MLP, attention ---------------------------------------------------------------------------------


def test_rms_norm_equals_llamas():
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    ours, theirs = RMSNorm(16, eps=1e-6), LlamaRMSNorm(16, eps=1e-6)
    with torch.no_grad():
        ours.scale.copy_(torch.linspace(0.5, 2, 16))
        theirs.weight.copy_(ours.scale)
    x = torch.randn(3, 5, 16, generator=torch.Generator().manual_seed(2)) * 10
    assert torch.equal(ours(x), theirs(x))
    assert torch.allclose(RMSNorm(16)(x).pow(2).mean(-1), torch.ones(3, 5), atol=1e-4)


def test_swiglu_is_down_of_silu_gate_times_up():
    ff = SwiGLU(modern())
    x = torch.randn(2, 3, 32, generator=torch.Generator().manual_seed(3))
    gate, up = x @ ff.gate.weight.T, x @ ff.up.weight.T
    expected = (gate * torch.sigmoid(gate) * up) @ ff.down.weight.T
    assert torch.allclose(ff(x), expected, atol=1e-6)
    assert ff.gate.bias is None and ff.down.bias is None


def test_grouped_query_attention_equals_multi_head_with_shared_heads():
    # GQA with 2 key/value heads for 4 query heads = MHA whose k/v heads come in identical consecutive pairs.
    torch.manual_seed(0)
    gqa = MultiHeadAttention(modern()).eval()
    mha = MultiHeadAttention(modern(n_kv_heads=4)).eval()
    D, H = 8, 4
    with torch.no_grad():
        q, k, v = gqa.qkv.weight.split([H * D, 2 * D, 2 * D])
        wide = [t.view(2, D, -1).repeat_interleave(2, dim=0).reshape(H * D, -1) for t in (k, v)]
        mha.qkv.weight.copy_(torch.cat([q, *wide]))
        mha.out_proj.weight.copy_(gqa.out_proj.weight)
    x = torch.randn(2, 6, 32)
    cfg = modern()
    rope = rotary_angles(inverse_frequencies(cfg), torch.arange(6)[None])
    assert torch.allclose(gqa(x, rope=rope), mha(x, rope=rope), atol=1e-6)


@pytest.mark.parametrize(("heads", "kv_heads", "qkv_bias"), [(4, 2, False), (4, 1, True), (2, 2, False)])
def test_the_readable_ladder_equals_the_fast_path(heads, kv_heads, qkv_bias):
    from scratchlm.model.attention_reference import BookGroupedQueryAttention, gqa_to_fused

    torch.manual_seed(5)
    cfg = modern(n_heads=heads, n_kv_heads=kv_heads, qkv_bias=qkv_bias, rope_theta=1000.0)
    book = BookGroupedQueryAttention(32, heads, kv_heads, cfg.head_dim, 48, theta=1000.0, qkv_bias=qkv_bias)
    fast = MultiHeadAttention(cfg).eval()
    gqa_to_fused(book, fast)
    x = torch.randn(2, 11, 32)
    rope = rotary_angles(inverse_frequencies(cfg), torch.arange(11)[None])
    assert torch.allclose(book(x), fast(x, rope=rope), atol=1e-5)


def test_the_kv_cache_keeps_only_the_shared_heads():
    cfg = modern(n_heads=8, n_kv_heads=2, emb_dim=64)
    cache = KVCache.for_model(cfg, batch_size=1)
    assert cache.k.shape == (cfg.n_layers, 1, 2, cfg.context_length, cfg.head_dim)
    assert kv_cache_bytes(cfg, 48) * 4 == kv_cache_bytes(dataclasses.replace(cfg, n_kv_heads=None), 48)


# ---- the whole model ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"n_kv_heads": 1},
        {"head_size": 16},
        {"qkv_bias": True},
        {"tie_embeddings": False},
        {"mlp": "gelu"},
        {"qk_norm": True, "head_size": 16},
    ],
)
def test_cached_decoding_and_padded_batches_equal_the_full_pass(overrides):
    model = tiny_gpt(seed=1, vocab_size=97, context_length=48, **{**MODERN, **overrides})
    x = torch.randint(0, 97, (2, 9), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        full = model(x)
        cache = KVCache.for_model(model.cfg, batch_size=2)
        chunks = [model(x[:, :4], kv_cache=cache), model(x[:, 4:7], kv_cache=cache)]
        chunks += [model(x[:, t : t + 1], kv_cache=cache) for t in (7, 8)]
    assert torch.allclose(torch.cat(chunks, dim=1), full, atol=1e-5)
    assert torch.equal(
        generate(model, x, max_new_tokens=20), generate(model, x, max_new_tokens=20, use_cache=False)
    )
    prompts = [[1, 2, 3, 4, 5, 6, 7], [9, 8], [50, 60, 70]]
    assert generate_batch(model, prompts, max_new_tokens=8) == [
        generate_batch(model, [p], max_new_tokens=8)[0] for p in prompts
    ]


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"n_kv_heads": 1},
        {"head_size": 16, "qkv_bias": True},
        {"tie_embeddings": False},
        {"qk_norm": True},
    ],
)
def test_sizing_counts_what_the_model_stores(overrides):
    cfg = modern(**overrides)
    model = GPT(cfg)
    assert parameter_count(cfg) == model.num_parameters()
    assert not any("pos_emb" in name for name, _ in model.named_parameters())
    assert "inv_freq" not in model.state_dict()  # a constant of the config, not a weight
    C, F, L, T = cfg.emb_dim, cfg.hidden_dim, cfg.n_layers, cfg.context_length
    q, kv = cfg.n_heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
    forward = 2 * (L * (C * (q + 2 * kv) + q * C + 3 * C * F) + cfg.vocab_size * C) + 4 * L * T * q
    assert flops_per_token(cfg, training=False) == forward


def test_the_modern_model_learns_and_lora_finds_the_gated_mlp():
    from scratchlm.config import TrainConfig
    from scratchlm.data.shards import WindowSampler
    from scratchlm.train.loop import train
    from scratchlm.train.losses import next_token_loss
    from scratchlm.train.optim import build_optimizer

    model = tiny_gpt(vocab_size=50, context_length=16, **MODERN)
    ids = torch.tensor([i % 7 + (i // 7) % 3 for i in range(2000)]).numpy()
    cfg = TrainConfig(max_steps=40, batch_size=8, warmup_steps=2, lr=3e-3, min_lr=3e-4)
    losses = []
    train(model, WindowSampler([ids], 16, seed=0), next_token_loss, build_optimizer(model, cfg), cfg,
          on_step=lambda s, r: losses.append(r.loss))  # fmt: skip
    assert sum(losses[-5:]) < 0.5 * sum(losses[:5])
    assert math.isfinite(losses[-1])
    apply_lora(model, rank=2, targets=("qkv", "ff_in", "ff_out"))
    names = sorted(n.split(".", 2)[2] for n in lora_modules(model))
    assert names == sorted(["att.qkv", "ff.gate", "ff.up", "ff.down"] * model.cfg.n_layers)


def test_gpt2_cannot_be_written_as_a_modern_model_or_back():
    from scratchlm.interop.hf import save_hf_gpt2

    with pytest.raises(ScratchLMError, match="not GPT-2-shaped"):
        save_hf_gpt2(GPT(modern()), "/nonexistent/never-written")


@pytest.mark.parametrize(
    ("name", "published"),
    [("llama3.2-1b", 1_235_814_400), ("qwen2.5-0.5b", 494_032_768), ("qwen3-0.6b", 596_049_920)],
)
def test_family_presets_have_the_published_sizes(name, published):
    from scratchlm.config import preset

    assert parameter_count(preset(name)) == published


@pytest.mark.parametrize("family", ["llama", "qwen2", "qwen3"])
def test_small_presets_build_what_they_count(family):
    from scratchlm.config import preset

    cfg = preset(f"{family}-small", vocab_size=300)
    assert GPT(cfg).num_parameters() == parameter_count(cfg)
    assert (
        cfg.kv_heads < cfg.n_heads
        and cfg.qkv_bias == (family == "qwen2")
        and cfg.qk_norm == (family == "qwen3")
    )


# ---- Gemma 3's choices: sandwich norms, the offset gain, GeGLU, scaled embeddings, windows, soft-caps ------
GEMMA = {
    **MODERN,
    "norm": "rmsnorm_offset",
    "mlp": "geglu",
    "norm_placement": "sandwich",
    "qk_norm": True,
    "emb_scale": True,
    "attn_scalar": 12.0,
    "head_size": 16,
    "sliding_window": 5,
    "layer_types": ("sliding", "full"),
    "rope_local_theta": 100.0,
}


def test_the_offset_rmsnorm_starts_at_gain_one_and_equals_rmsnorm_with_one_plus_w():
    plain, offset = RMSNorm(8), RMSNorm(8, offset=1.0)
    assert torch.equal(offset.scale, torch.zeros(8))
    x = torch.randn(3, 8)
    assert torch.equal(offset(x), plain(x))
    with torch.no_grad():
        offset.scale.uniform_(-0.5, 0.5)
        plain.scale.copy_(1.0 + offset.scale)
    assert torch.allclose(offset(x), plain(x), atol=1e-6)
    model = tiny_gpt(**GEMMA)
    gains = [m.offset + m.scale for m in model.modules() if isinstance(m, RMSNorm)]
    assert len(gains) == 2 * (4 + 2) + 1  # 4 a block + 2 QK-norms, and the final norm
    assert all(torch.equal(g, torch.ones_like(g)) for g in gains)


def test_the_sliding_mask_sees_keys_less_than_a_window_back():
    from scratchlm.model.gpt import attention_mask

    assert attention_mask(0, 4, None, torch.device("cpu"), window=4) is None  # the window never binds
    mask = attention_mask(0, 6, None, torch.device("cpu"), window=3)[0, 0]
    expected = torch.tensor([[0 <= q - k < 3 for k in range(6)] for q in range(6)])
    assert torch.equal(mask, expected)
    decode = attention_mask(6, 1, None, torch.device("cpu"), window=3)[0, 0]  # one query at position 6
    assert decode.tolist() == [[False] * 4 + [True] * 3]


def test_softcapped_attention_is_attention_when_the_cap_is_far_and_bounded_when_near():
    from scratchlm.model.attention import softcapped_attention

    q, k, v = (torch.randn(2, 3, 5, 8, generator=torch.Generator().manual_seed(i)) for i in range(3))
    causal = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.allclose(softcapped_attention(q, k, v, None, None, cap=1e6), causal, atol=1e-5)
    mask = torch.rand(2, 1, 5, 5, generator=torch.Generator().manual_seed(3)) > 0.3
    mask |= torch.eye(5, dtype=torch.bool)
    masked = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.2)
    assert torch.allclose(softcapped_attention(q, k, v, mask, 0.2, cap=1e6), masked, atol=1e-5)
    assert not torch.allclose(softcapped_attention(q * 50, k, v, None, None, cap=1.0), causal, atol=1e-2)


OLMO3 = {"norm": "rmsnorm", "norm_placement": "post", "qk_norm_scope": "projection", "emb_scale": False}


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"attn_softcap": 2.0, "logit_softcap": 5.0},
        {"layer_types": None},
        OLMO3,
        {**OLMO3, "head_size": None},
    ],
)
def test_gemma_and_olmo_choices_decode_past_the_window_as_the_full_pass(overrides):
    cfg = {**GEMMA, **overrides}
    model = tiny_gpt(seed=2, vocab_size=97, context_length=48, **cfg)
    x = torch.randint(0, 97, (2, 17), generator=torch.Generator().manual_seed(4))  # 3 windows and more
    with torch.no_grad():
        full = model(x)
        cache = KVCache.for_model(model.cfg, batch_size=2)
        chunks = [model(x[:, :7], kv_cache=cache), model(x[:, 7:9], kv_cache=cache)]
        chunks += [model(x[:, t : t + 1], kv_cache=cache) for t in range(9, 17)]
    assert torch.allclose(torch.cat(chunks, dim=1), full, atol=1e-5)
    assert torch.equal(
        generate(model, x, max_new_tokens=20), generate(model, x, max_new_tokens=20, use_cache=False)
    )
    prompts = [[1, 2, 3, 4, 5, 6, 7, 8, 9], [9, 8], [50, 60, 70]]
    assert generate_batch(model, prompts, max_new_tokens=12) == [
        generate_batch(model, [p], max_new_tokens=12)[0] for p in prompts
    ]
    assert parameter_count(model.cfg) == model.num_parameters()


def test_bad_window_settings_are_named():
    with pytest.raises(ScratchLMError, match="sliding layers need a sliding_window"):
        modern(layer_types=("sliding", "full"))
    with pytest.raises(ScratchLMError, match="2 entries for 3 layers"):
        modern(n_layers=3, sliding_window=4, layer_types=("sliding", "full"))
    with pytest.raises(ScratchLMError, match="'local'"):
        modern(sliding_window=4, layer_types=("local", "full"))
    with pytest.raises(ScratchLMError, match="sliding_window must be a positive integer"):
        modern(sliding_window=0)


def test_lora_finds_gemmas_gated_mlp():
    model = tiny_gpt(**GEMMA)
    apply_lora(model, rank=2, targets=("ff_in", "ff_out"))
    names = sorted(n.split(".", 2)[2] for n in lora_modules(model))
    assert names == sorted(["ff.gate", "ff.up", "ff.down"] * model.cfg.n_layers)
