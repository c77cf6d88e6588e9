"""Configuration: small frozen dataclasses, one per concern, and named presets.

The model sees `ModelConfig` only, generation `GenerateConfig` only. Configs serialise to plain dicts
(`asdict`) and back with `from_dict`, which rejects unknown keys so typos do not pass silently.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, TypeVar

from scratchlm.errors import ScratchLMError

T = TypeVar("T")


def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """Build a config dataclass from a dict, with a clear error for unknown or badly typed keys."""
    types = {f.name: f.type for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(types))
    if unknown:
        raise ScratchLMError(f"{cls.__name__}: unknown setting(s) {unknown}; known: {sorted(types)}")
    data = {key: _coerce(cls.__name__, key, types[key], value) for key, value in data.items()}
    try:
        return cls(**data)
    except TypeError as exc:
        raise ScratchLMError(f"{cls.__name__}: {exc}") from None


def _coerce(owner: str, key: str, kind: str, value: Any) -> Any:
    """YAML reads `1e-3` as a string and users write `4` for 4.0: make numbers numbers, or say which
    setting is wrong."""
    if kind not in ("int", "float", "bool") or value is None:
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise ScratchLMError(f"{owner}.{key} must be true or false, got {value!r}")
    try:
        number = float(value) if kind == "float" else int(str(value), 10)
    except (TypeError, ValueError):
        raise ScratchLMError(f"{owner}.{key} must be a number ({kind}), got {value!r}") from None
    if isinstance(value, bool):
        raise ScratchLMError(f"{owner}.{key} must be a number ({kind}), got {value!r}")
    return number


@dataclass(frozen=True)
class ModelConfig:
    """A GPT-2-style decoder. Defaults are GPT-2 small (124M) as the book trains it (no qkv bias)."""

    vocab_size: int = 50257
    context_length: int = 1024
    emb_dim: int = 768
    n_heads: int = 12
    n_layers: int = 12
    dropout: float = 0.1
    qkv_bias: bool = False  # OpenAI's GPT-2 weights have it; the book trains without it
    tie_embeddings: bool = True  # the output head shares the token embedding matrix, as in GPT-2
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ScratchLMError(f"ModelConfig.{name} must be a positive integer, got {value!r}")
        if self.emb_dim % self.n_heads:
            raise ScratchLMError(
                f"ModelConfig: emb_dim {self.emb_dim} is not divisible by n_heads {self.n_heads}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ScratchLMError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout}")

    @property
    def head_dim(self) -> int:
        return self.emb_dim // self.n_heads

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GenerateConfig:
    """How to pick each next token. temperature 0 means greedy (argmax)."""

    max_new_tokens: int = 50
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()  # stop strings (text level)
    stop_at_eos: bool = True
    use_cache: bool = True

    def __post_init__(self) -> None:
        if self.max_new_tokens < 0:
            raise ScratchLMError(f"max_new_tokens must be >= 0, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ScratchLMError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ScratchLMError(f"top_k must be >= 1, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ScratchLMError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise ScratchLMError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        object.__setattr__(self, "stop", tuple(self.stop))

    def replace(self, **changes: Any) -> GenerateConfig:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class DataConfig:
    """Where training text comes from: text files/dirs/globs (tokenized on the fly) or a shard directory."""

    inputs: tuple[str, ...] = ()
    shards: str | None = None  # a directory written by `scratchlm data prepare`
    tokenizer: str = "gpt2"  # for `inputs`: "gpt2", a tokenizer directory or file
    val_fraction: float = 0.1  # for `inputs`: the last part of the text is held out

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        if not 0.0 < self.val_fraction < 1.0:
            raise ScratchLMError(f"data.val_fraction must be in (0, 1), got {self.val_fraction}")


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation and the bookkeeping of one run (steps are optimizer updates)."""

    max_steps: int = 1000
    batch_size: int = 8  # sequences per micro-batch and process
    grad_accum_steps: int = 1
    lr: float = 6e-4
    min_lr: float = 6e-5  # the floor of the decay
    warmup_steps: int = 100
    decay: Literal["cosine", "linear", "constant"] = "cosine"
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0 turns clipping off (the norm is still measured and logged)
    eval_interval: int = 100
    eval_batches: int = 20
    log_interval: int = 10
    checkpoint_interval: int = 200
    keep_last: int = 3
    max_bad_steps: int = 3  # non-finite steps in a row before rolling back to the last checkpoint
    sample_prompt: str = "\n"
    sample_tokens: int = 64
    seed: int = 1337
    device: str = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    compile: bool = False  # torch.compile the training forward/backward (evaluation stays eager)
    init: str | None = None  # start from these weights: a model directory or a Hub name ("gpt2")
    peak_flops: float = 0.0  # the device's peak FLOP/s for MFU; 0: a GPU data sheet, or measured
    keep_heap: bool = True  # CPU on glibc: keep freed memory in the process (no page faults each step)
    loggers: tuple[str, ...] = ()  # also log to "tensorboard" and/or "wandb" (installed separately)

    def __post_init__(self) -> None:
        loggers = self.loggers.split(",") if isinstance(self.loggers, str) else self.loggers
        object.__setattr__(self, "loggers", tuple(x.strip() for x in loggers if x.strip()))
        for name in (
            "max_steps",
            "batch_size",
            "grad_accum_steps",
            "eval_batches",
            "log_interval",
            "keep_last",
        ):
            if getattr(self, name) < 1:
                raise ScratchLMError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.min_lr < 0 or self.min_lr > self.lr:
            raise ScratchLMError(
                f"train: need 0 <= min_lr <= lr and lr > 0, got lr {self.lr}, min_lr {self.min_lr}"
            )
        if self.warmup_steps < 0:
            raise ScratchLMError(f"train.warmup_steps must be >= 0, got {self.warmup_steps}")


# Our module names for each target, relative to a transformer block (or the model, for the head).
TARGETS = {
    "qkv": "att.qkv",  # HF GPT-2: attn.c_attn
    "out_proj": "att.out_proj",  # attn.c_proj
    "ff_in": "ff.layers.0",  # mlp.c_fc
    "ff_out": "ff.layers.2",  # mlp.c_proj
    "head": "out_head",  # lm_head (or a classifier's head)
}
DEFAULT_TARGETS = ("qkv", "out_proj")


@dataclass(frozen=True)
class LoRAConfig:
    """A LoRA adapter (scratchlm.finetune.lora): rank, alpha, dropout, which Linear layers, which blocks."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] = DEFAULT_TARGETS
    rslora: bool = False  # scale by alpha / sqrt(rank) (Kalajdzievski 2023), PEFT's use_rslora
    layers: tuple[int, ...] | None = None  # only these block indices (None: all)

    def __post_init__(self) -> None:
        targets = self.targets.split(",") if isinstance(self.targets, str) else self.targets
        object.__setattr__(self, "targets", tuple(t.strip() for t in targets if t.strip()))
        unknown = sorted(set(self.targets) - set(TARGETS))
        if unknown or not self.targets:
            raise ScratchLMError(
                f"lora.targets: unknown {unknown or '(none)'}; choose from {', '.join(TARGETS)}"
            )
        if not isinstance(self.rank, int) or self.rank < 1:
            raise ScratchLMError(f"lora.rank must be a positive integer, got {self.rank}")
        if self.alpha <= 0:
            raise ScratchLMError(f"lora.alpha must be > 0, got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ScratchLMError(f"lora.dropout must be in [0, 1), got {self.dropout}")
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))

    @property
    def scaling(self) -> float:
        return self.alpha / (math.sqrt(self.rank) if self.rslora else self.rank)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs; saved as config.json in the run directory."""

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    lora: LoRAConfig | None = None  # train a LoRA adapter on a frozen model (continued pretraining)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        unknown = sorted(set(data) - {"model", "data", "train", "lora"})
        if unknown:
            raise ScratchLMError(f"config: unknown section(s) {unknown}; known: data, lora, model, train")
        model = dict(data.get("model") or {})
        if "preset" in model:
            base = preset(model.pop("preset")).to_dict()
            model = {**base, **model}
        return cls(
            model=from_dict(ModelConfig, model),
            data=from_dict(DataConfig, data.get("data") or {}),
            train=from_dict(TrainConfig, data.get("train") or {}),
            lora=from_dict(LoRAConfig, data["lora"]) if data.get("lora") else None,
        )


# ---- presets: named functions returning configs; variants via dataclasses.replace -----------------------


def gpt2_small(**overrides: Any) -> ModelConfig:
    return dataclasses.replace(ModelConfig(), **overrides)


def gpt2_medium(**overrides: Any) -> ModelConfig:
    return dataclasses.replace(ModelConfig(emb_dim=1024, n_heads=16, n_layers=24), **overrides)


def gpt2_large(**overrides: Any) -> ModelConfig:
    return dataclasses.replace(ModelConfig(emb_dim=1280, n_heads=20, n_layers=36), **overrides)


def gpt2_xl(**overrides: Any) -> ModelConfig:
    return dataclasses.replace(ModelConfig(emb_dim=1600, n_heads=25, n_layers=48), **overrides)


def small(**overrides: Any) -> ModelConfig:
    """6 layers, 384 wide, 6 heads, context 256: trains on a laptop CPU (about 30M parameters with
    GPT-2's vocabulary, most of them in the embedding)."""
    return dataclasses.replace(
        ModelConfig(context_length=256, emb_dim=384, n_heads=6, n_layers=6, dropout=0.1), **overrides
    )


def tiny(**overrides: Any) -> ModelConfig:
    """4 layers, 128 wide, 4 heads, context 64: seconds per epoch on a CPU; for tests and demos."""
    return dataclasses.replace(
        ModelConfig(context_length=64, emb_dim=128, n_heads=4, n_layers=4, dropout=0.0), **overrides
    )


PRESETS: dict[str, Callable[..., ModelConfig]] = {
    "gpt2-small": gpt2_small,
    "gpt2-medium": gpt2_medium,
    "gpt2-large": gpt2_large,
    "gpt2-xl": gpt2_xl,
    "small": small,
    "tiny": tiny,
}


def preset(name: str, **overrides: Any) -> ModelConfig:
    try:
        make = PRESETS[name]
    except KeyError:
        raise ScratchLMError(f"unknown model preset {name!r}; choose from {sorted(PRESETS)}") from None
    return make(**overrides)
