"""Stage 3, the modern way: rotary position embeddings (RoPE; Su et al. 2021, "RoFormer").

Instead of adding a position vector to each token, RoPE turns every query and key by an angle that grows with
the token's position, so the score q·k depends only on how far apart the two tokens are. A head vector of
size D is read as D/2 pairs of coordinates, and pair i turns by `position * inv_freq[i]`, where
`inv_freq[i] = theta ** (-2i / D)`: the first pairs spin fast (they tell neighbours apart), the last ones
slowly (they carry long distances).

The layout is Hugging Face's ("rotate_half"): pair i is coordinates (i, i + D/2), the first half of the
vector against the second, not adjacent coordinates as in the paper. Weights trained in one layout only
work in that layout, and Llama, Qwen, Gemma and Olmo checkpoints on the Hub all use this one.

Longer contexts than a model was trained on stretch the angles (`rope_type`):
- "linear": every frequency divided by `factor` (positions are compressed; Chen et al. 2023).
- "llama3": only the slow frequencies (wavelengths longer than `original_context / low_freq_factor`) are
  divided by `factor`; the fast ones (shorter than `original_context / high_freq_factor`) are kept, and the
  ones between blend the two smoothly. Llama 3.1 and 3.2 ship with it.
- "yarn" (Peng et al. 2023): the same idea counted in turns — pairs that turn more than `beta_fast` times
  over the original context keep their frequency, pairs that turn less than `beta_slow` times are divided by
  `factor`, a linear ramp between; and cos and sin are scaled by an attention factor (0.1 ln(factor) + 1),
  which sharpens the softmax that longer contexts flatten. Olmo 3 and Qwen's long-context models use it.
"""

from __future__ import annotations

import math

import torch

from scratchlm.config import ModelConfig


def inverse_frequencies(cfg: ModelConfig) -> torch.Tensor:
    """(head_dim / 2,) float32: the angle per position of each rotating pair, after the config's scaling."""
    D = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
    if cfg.rope_type == "linear":
        return inv_freq / cfg.rope_factor
    if cfg.rope_type == "llama3":
        return _llama3_scaling(inv_freq, cfg)
    if cfg.rope_type == "yarn":
        return _yarn_scaling(inv_freq, cfg)
    return inv_freq


def rope_scale(cfg: ModelConfig) -> float:
    """What cos and sin are multiplied by: yarn's attention factor, else 1."""
    return cfg.rope_attention_factor if cfg.rope_type == "yarn" else 1.0


def _yarn_scaling(inv_freq: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    D, base, original = cfg.head_dim, cfg.rope_theta, cfg.rope_original_context

    def pair_turning(
        turns: float,
    ) -> float:  # the pair index that turns `turns` times over the original context
        return D * math.log(original / (turns * 2 * math.pi)) / (2 * math.log(base))

    low, high = pair_turning(cfg.rope_beta_fast), pair_turning(cfg.rope_beta_slow)
    if cfg.rope_truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, D - 1)
    if low == high:
        high += 0.001  # a ramp needs a width
    ramp = ((torch.arange(D // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
    keep = 1 - ramp  # 1: the original frequency (fast pairs), 0: divided by the factor (slow pairs)
    return inv_freq / cfg.rope_factor * (1 - keep) + inv_freq * keep


def local_inverse_frequencies(cfg: ModelConfig) -> torch.Tensor:
    """The sliding layers' inv_freq: their own base `rope_local_theta`, unscaled (Gemma 3's local layers
    see at most a window of positions, so no long-context scaling applies to them)."""
    D = cfg.head_dim
    return 1.0 / (cfg.rope_local_theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))


def _llama3_scaling(inv_freq: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    factor, low, high = cfg.rope_factor, cfg.rope_low_freq_factor, cfg.rope_high_freq_factor
    original = cfg.rope_original_context
    wavelength = 2 * math.pi / inv_freq
    slow = wavelength > original / low  # long wavelengths: stretched by the whole factor
    fast = wavelength < original / high  # short ones: unchanged
    # Between the two, blend: weight 0 at the slow edge (all scaled) to 1 at the fast edge (unscaled).
    blend = (original / wavelength - low) / (high - low)
    between = (1 - blend) * inv_freq / factor + blend * inv_freq
    return torch.where(slow, inv_freq / factor, torch.where(fast, inv_freq, between))


def rotary_angles(
    inv_freq: torch.Tensor, position_ids: torch.Tensor, scale: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of every angle: position_ids (B or 1, T) -> two (B or 1, 1, T, head_dim) float32 tensors,
    each pair's angle written twice (once per half), ready to broadcast over the heads; times `scale`
    (yarn's attention factor)."""
    angles = position_ids[:, :, None].float() * inv_freq[None, None, :].float()  # (B, T, D/2)
    angles = torch.cat([angles, angles], dim=-1)[:, None]  # (B, 1, T, D)
    if scale != 1.0:
        return angles.cos() * scale, angles.sin() * scale
    return angles.cos(), angles.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension: a quarter turn of every pair."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Turn every pair of x (B, H, T, D) by its angle: x cos + rotate_half(x) sin, in x's dtype."""
    return (x * cos.to(x.dtype)) + (rotate_half(x) * sin.to(x.dtype))
