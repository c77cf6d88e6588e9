"""Configuration: small frozen dataclasses, one per concern, and named presets.

The model sees `ModelConfig` only, generation `GenerateConfig` only. Configs serialise to plain dicts
(`asdict`) and back with `from_dict`, which rejects unknown keys so typos do not pass silently.
"""

from __future__ import annotations

import dataclasses
import math
import re
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
    kind = kind.removesuffix(" | None")  # an optional number is still a number when given
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


ROPE_TYPES = ("default", "linear", "llama3", "yarn")


@dataclass(frozen=True)
class ModelConfig:
    """A decoder-only transformer. Defaults are GPT-2 small (124M) as the book trains it (no qkv bias).

    The modern families differ from GPT-2 by a few choices, each a field here (defaults: GPT-2's):
    `positions` "rope" (rotary, scratchlm.model.rope) instead of learned absolute, `norm` "rmsnorm",
    `mlp` "swiglu" (gated, `ff_dim` wide), `n_kv_heads` < n_heads (grouped-query attention), no `bias`
    on the output projection and MLP, an explicit `head_size`, `qk_norm`. Gemma 3 adds a norm after each
    sublayer too (`norm_placement` "sandwich"), RMSNorm's gain as 1 + w ("rmsnorm_offset"), the GELU-gated
    MLP ("geglu"), embeddings scaled by sqrt(emb_dim), its own attention scale, soft-capped logits, and
    sliding-window attention on some layers (`sliding_window`, `layer_types`) with their own rope base. Olmo
    2 and 3 normalise only each sublayer's output ("post") and the whole query and key projections."""

    vocab_size: int = 50257
    context_length: int = 1024
    emb_dim: int = 768
    n_heads: int = 12
    n_layers: int = 12
    dropout: float = 0.1
    qkv_bias: bool = False  # OpenAI's GPT-2 weights have it; the book trains without it
    tie_embeddings: bool = True  # the output head shares the token embedding matrix, as in GPT-2
    norm_eps: float = 1e-5
    # The modern choices.
    positions: Literal["learned", "rope"] = "learned"
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    mlp: Literal["gelu", "relu2", "swiglu", "geglu"] = "gelu"  # relu2: relu(x)² in place of GELU (Primer)
    ff_dim: int | None = None  # the MLP's hidden width; None: 4 × emb_dim
    bias: bool = True  # biases on the attention's output projection and the MLP (GPT-2 has them)
    n_kv_heads: int | None = None  # key/value heads (grouped-query attention); None: n_heads
    head_size: int | None = None  # per-head width; None: emb_dim / n_heads (Qwen3 sets it apart)
    qk_norm: bool = False  # RMSNorm on each query and key head before the rotation (Qwen3)
    rope_theta: float = 10000.0
    rope_type: str = "default"  # "default", "linear" or "llama3" (see scratchlm.model.rope)
    rope_factor: float = 1.0
    rope_low_freq_factor: float = 1.0  # llama3 only
    rope_high_freq_factor: float = 4.0  # llama3 only
    rope_original_context: int = 8192  # llama3 and yarn: the context the model was first trained at
    rope_beta_fast: float = 32.0  # yarn: pairs turning more than this often in the original context are kept
    rope_beta_slow: float = 1.0  # yarn: pairs turning less than this often are divided by rope_factor
    rope_attention_factor: float = 1.0  # yarn: cos and sin scaled by it (0.1 ln(factor) + 1 by default)
    rope_truncate: bool = True  # yarn: the blended range rounded out to whole pairs
    # Gemma 3's choices (and sliding windows, which Mistral and others use too).
    # pre: a norm before each sublayer (GPT-2, Llama); sandwich: and one on its output (Gemma); post: only
    # one on its output, before the residual add (Olmo 2 and 3)
    norm_placement: Literal["pre", "sandwich", "post"] = "pre"
    qk_norm_scope: Literal["head", "projection"] = "head"  # QK-norm per head (Qwen3, Gemma 3) or over the
    # whole query and key projections (Olmo 2 and 3)
    emb_scale: bool = False  # token embeddings x sqrt(emb_dim), rounded in the weights' dtype (Gemma)
    attn_scalar: float | None = None  # attention scores x attn_scalar ** -0.5; None: head_dim ** -0.5
    attn_softcap: float | None = None  # scores -> cap * tanh(scores / cap) before the softmax
    logit_softcap: float | None = None  # the same on the output logits
    sliding_window: int | None = None  # a sliding layer's query sees the keys at distance < window
    layer_types: tuple[str, ...] | None = None  # "full" or "sliding" per layer; None: all sliding if a
    # window is set (Mistral), else all full
    rope_local_theta: float | None = None  # the rope base of sliding layers (Gemma 3: 10k); None: rope_theta
    # Initialisation (no effect on a loaded model): the projections into the residual stream (attention
    # output, MLP output) start at zero, so each block starts as the identity (modded-nanogpt)
    zero_init_residual: bool = False
    # Value embeddings (modded-nanogpt): k extra token-embedding tables, table j mixed into the attention
    # values of layer j and of layer n_layers - k + j (the first k and the last k layers): each of those
    # layers gets v = a * v + b * table[token] with two learned scalars (0.5 each at the start). 0: none
    value_embeddings: int = 0

    def value_table(self, layer: int) -> int | None:
        """The value-embedding table that `layer` mixes into its values, or None."""
        k = self.value_embeddings
        if layer < k:
            return layer
        if layer >= self.n_layers - k:
            return layer - (self.n_layers - k)
        return None

    def __post_init__(self) -> None:
        for name in ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ScratchLMError(f"ModelConfig.{name} must be a positive integer, got {value!r}")
        for name in ("ff_dim", "n_kv_heads", "head_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ScratchLMError(f"ModelConfig.{name} must be a positive integer or null, got {value!r}")
        if self.head_size is None and self.emb_dim % self.n_heads:
            raise ScratchLMError(
                f"ModelConfig: emb_dim {self.emb_dim} is not divisible by n_heads {self.n_heads}"
            )
        if self.n_heads % self.kv_heads:
            raise ScratchLMError(
                f"ModelConfig: n_heads {self.n_heads} is not a multiple of n_kv_heads {self.kv_heads}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ScratchLMError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout}")
        k = self.value_embeddings
        if not isinstance(k, int) or isinstance(k, bool) or k < 0 or 2 * k > self.n_layers:
            raise ScratchLMError(
                f"ModelConfig.value_embeddings must be an integer from 0 to n_layers / 2 = "
                f"{self.n_layers // 2} (a table for each of the first and the last that many layers), "
                f"got {k!r}"
            )
        _check_choice("ModelConfig", "positions", self.positions, ("learned", "rope"))
        _check_choice("ModelConfig", "norm", self.norm, ("layernorm", "rmsnorm", "rmsnorm_offset"))
        _check_choice("ModelConfig", "mlp", self.mlp, ("gelu", "relu2", "swiglu", "geglu"))
        _check_choice("ModelConfig", "norm_placement", self.norm_placement, ("pre", "sandwich", "post"))
        _check_choice("ModelConfig", "qk_norm_scope", self.qk_norm_scope, ("head", "projection"))
        self._check_layers()
        if self.rope_type not in ROPE_TYPES:
            raise ScratchLMError(
                f"ModelConfig.rope_type {self.rope_type!r} is not supported "
                f"(supported: {', '.join(ROPE_TYPES)})"
            )
        if self.positions == "rope" and self.head_dim % 2:
            raise ScratchLMError(f"ModelConfig: rotary positions need an even head_dim, got {self.head_dim}")
        if self.rope_type == "llama3" and self.rope_high_freq_factor <= self.rope_low_freq_factor:
            raise ScratchLMError(
                "ModelConfig: llama3 rope needs rope_high_freq_factor > rope_low_freq_factor"
            )

    def _check_layers(self) -> None:
        """The sliding-window settings: a positive window, one known type per layer."""
        if self.layer_types is not None:
            object.__setattr__(self, "layer_types", tuple(self.layer_types))  # JSON and YAML give lists
            if len(self.layer_types) != self.n_layers:
                raise ScratchLMError(
                    f"ModelConfig.layer_types has {len(self.layer_types)} entries for {self.n_layers} layers"
                )
            unknown = sorted(set(self.layer_types) - {"full", "sliding"})
            if unknown:
                raise ScratchLMError(f"ModelConfig.layer_types: {unknown} (each is 'full' or 'sliding')")
        window = self.sliding_window
        if window is not None and (not isinstance(window, int) or isinstance(window, bool) or window < 1):
            raise ScratchLMError(
                f"ModelConfig.sliding_window must be a positive integer or null, got {window!r}"
            )
        if window is None and "sliding" in (self.layer_types or ()):
            raise ScratchLMError("ModelConfig: sliding layers need a sliding_window")
        for name in ("attn_scalar", "attn_softcap", "logit_softcap", "rope_local_theta"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0
            ):
                raise ScratchLMError(f"ModelConfig.{name} must be positive or null, got {value!r}")

    @property
    def kinds(self) -> tuple[str, ...]:
        """Each layer's attention: "full" or "sliding"."""
        if self.layer_types is not None:
            return self.layer_types
        return ("sliding" if self.sliding_window is not None else "full",) * self.n_layers

    @property
    def head_dim(self) -> int:
        return self.head_size or self.emb_dim // self.n_heads

    @property
    def kv_heads(self) -> int:
        """Key/value heads: n_kv_heads, or n_heads (plain multi-head attention)."""
        return self.n_kv_heads or self.n_heads

    @property
    def hidden_dim(self) -> int:
        """The MLP's hidden width."""
        return self.ff_dim or 4 * self.emb_dim

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
    # for `inputs`: "gpt2", a tokenizer directory or file; None: the tokenizer of train.init's model (a
    # Llama's or Qwen's own, for continued pretraining), else GPT-2's
    tokenizer: str | None = None
    val_fraction: float = 0.1  # for `inputs`: the last part of the text is held out
    # tokens per training window; None: the model's context length (a 32k-context model can be trained
    # on shorter windows: rotary positions have no table to fill)
    seq_len: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        if not 0.0 < self.val_fraction < 1.0:
            raise ScratchLMError(f"data.val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.seq_len is not None and (not isinstance(self.seq_len, int) or self.seq_len < 1):
            raise ScratchLMError(f"data.seq_len must be a positive integer or null, got {self.seq_len!r}")


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation and the bookkeeping of one run (steps are optimizer updates)."""

    max_steps: int = 1000
    # pretraining: train for about this many minutes instead. A probe of a few seconds measures the step
    # time at the start and sets max_steps (so the schedule fits the budget); config.json records the
    # steps chosen, so --resume continues the same schedule. Evaluations and checkpoints come on top.
    max_minutes: float | None = None
    batch_size: int = 8  # sequences per micro-batch and process
    grad_accum_steps: int = 1
    lr: float = 6e-4
    min_lr: float | None = None  # the floor of the decay; None: 0.1 × lr (GPT-3's and nanoGPT's ratio)
    warmup_steps: int = 100
    decay: Literal["cosine", "linear", "constant"] = "cosine"
    weight_decay: float = 0.1
    # AdamW's betas: (0.9, 0.95) is GPT-3's pretraining recipe (Brown et al. 2020, appendix B), which
    # nanoGPT uses; the book's presets below keep torch's default 0.999, as its chapters call AdamW.
    beta1: float = 0.9
    beta2: float = 0.95
    # "muon": Muon (torch.optim.Muon) for the 2-D weights inside the blocks, AdamW (lr above) for the rest.
    # Its rate 0.02 and momentum 0.95 warmed up from 0.85 over 300 steps are Keller Jordan's recipe
    # (modded-nanogpt); the schedule scales muon_lr as it scales lr.
    optimizer: Literal["adamw", "muon"] = "adamw"
    muon_lr: float = 0.02
    muon_momentum: float = 0.95
    muon_momentum_warmup: int = 300
    grad_clip: float = 1.0  # 0 turns clipping off (the norm is still measured and logged)
    eval_interval: int | None = 100  # steps; None: once per epoch (fine-tunes, whose data have epochs)
    eval_batches: int = 20
    log_interval: int = 10
    checkpoint_interval: int = 200
    keep_last: int = 3
    max_bad_steps: int = 3  # non-finite steps in a row before rolling back to the last checkpoint
    sample_prompt: str = "\n"
    sample_tokens: int = 64
    seed: int = 1337
    device: str = "auto"
    # auto: bf16 on GPUs that have it, else fp32; fastest: the same on GPUs, and on a CPU whichever of fp32
    # and bf16 it runs faster (measured at the start; scratchlm.precision).
    precision: Literal["auto", "fastest", "fp32", "bf16", "fp16"] = "auto"
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
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ScratchLMError(f"train.max_minutes must be > 0 (or null), got {self.max_minutes}")
        if self.lr <= 0 or self.lr_floor < 0 or self.lr_floor > self.lr:
            raise ScratchLMError(
                f"train: need 0 <= min_lr <= lr and lr > 0, got lr {self.lr}, min_lr {self.min_lr}"
            )
        _check_choice("train", "precision", self.precision, ("auto", "fastest", "fp32", "bf16", "fp16"))
        if self.optimizer not in ("adamw", "muon"):
            raise ScratchLMError(f"train.optimizer is adamw or muon, got {self.optimizer!r}")
        if self.muon_lr <= 0 or not 0 <= self.muon_momentum < 1:
            raise ScratchLMError(
                f"train: need muon_lr > 0 and 0 <= muon_momentum < 1, "
                f"got {self.muon_lr}, {self.muon_momentum}"
            )
        for name in ("warmup_steps", "checkpoint_interval", "muon_momentum_warmup"):
            if getattr(self, name) < 0:
                raise ScratchLMError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if self.eval_interval is not None and self.eval_interval < 1:
            raise ScratchLMError(
                f"train.eval_interval must be at least 1 (or null), got {self.eval_interval}"
            )

    @property
    def lr_floor(self) -> float:
        """Where the decay ends: `min_lr`, or a tenth of `lr` when it is not set."""
        return self.lr * 0.1 if self.min_lr is None else self.min_lr


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
    """A LoRA adapter (scratchlm.model.lora): rank, alpha, dropout, which Linear layers, which blocks."""

    rank: int = 8
    alpha: float | None = None  # None: 2 × rank
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
        if self.alpha is None:
            object.__setattr__(self, "alpha", 2.0 * self.rank)
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


Split = tuple[float, float, float]


def _check_split(owner: str, split: Any) -> Split:
    parts = split.split(",") if isinstance(split, str) else split
    try:
        fractions = tuple(float(f) for f in parts)
    except (TypeError, ValueError):
        fractions = ()
    if len(fractions) != 3 or any(not 0 <= f <= 1 for f in fractions) or fractions[0] <= 0:
        raise ScratchLMError(
            f"{owner}.split: three fractions train,val,test (train > 0), e.g. 0.7,0.1,0.2; got {split!r}"
        )
    return fractions  # type: ignore[return-value]


def _check_choice(owner: str, name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ScratchLMError(f"{owner}.{name} must be one of {', '.join(allowed)}, got {value!r}")


@dataclass(frozen=True)
class ClassifyConfig:
    """The classification task (the book's chapter 6): labelled texts, how to split them, which layers train.

    `train_layers`: head | last-N (N blocks + final norm + head) | all | lora (the head in full, adapters
    elsewhere). `epochs` sets the number of steps unless it is null (then `train.max_steps` does)."""

    data: str | None = None  # a .tsv, .csv, .jsonl or .json table
    val: str | None = None  # given validation / test tables; otherwise they are split off `data`
    test: str | None = None
    text_field: str = "text"  # a column name, or a 0-based index (then the table has no header row)
    label_field: str = "label"
    header: bool | None = None  # None: a header row exactly when a field is given by name
    labels: tuple[str, ...] | None = None  # the classes in id order (default: sorted training labels)
    split: Split = (0.7, 0.1, 0.2)  # train / val / test, stratified per class
    split_seed: int = 123
    balance: Literal["none", "undersample", "weights"] = "none"  # of the training split only
    max_length: int | None = None  # default: the longest training text, capped at the context length
    train_layers: str = "last-1"
    select: Literal["accuracy", "macro_f1", "loss"] = "accuracy"  # which validation score picks the best
    epochs: float | None = 5

    def __post_init__(self) -> None:
        object.__setattr__(self, "split", _check_split("classify", self.split))
        labels = self.labels.split(",") if isinstance(self.labels, str) else self.labels
        if labels is not None:
            object.__setattr__(self, "labels", tuple(str(x).strip() for x in labels))
        for name in ("text_field", "label_field"):
            object.__setattr__(self, name, str(getattr(self, name)))
        if not re.fullmatch(r"head|all|lora|last-[1-9][0-9]*", str(self.train_layers)):
            raise ScratchLMError(
                f"classify.train_layers must be head, last-N (N >= 1), all or lora; got {self.train_layers!r}"
            )
        _check_choice("classify", "balance", self.balance, ("none", "undersample", "weights"))
        _check_choice("classify", "select", self.select, ("accuracy", "macro_f1", "loss"))
        if self.max_length is not None and self.max_length < 1:
            raise ScratchLMError(f"classify.max_length must be at least 1, got {self.max_length}")
        if self.epochs is not None and self.epochs <= 0:
            raise ScratchLMError(f"classify.epochs must be > 0 (or null), got {self.epochs}")


@dataclass(frozen=True)
class InstructConfig:
    """The instruction-tuning task (the book's chapter 7): conversations, their template, what is learned.

    `epochs` sets the number of steps unless it is null (then `train.max_steps` does)."""

    data: str | None = None  # Alpaca JSON/JSONL (instruction, input, output) or chat JSONL (messages)
    val: str | None = None  # given validation / test files; otherwise they are split off `data`
    test: str | None = None
    split: Split = (0.85, 0.05, 0.10)  # the book's
    split_seed: int | None = 123  # shuffle before splitting; None keeps the file order
    template: str = "alpaca"
    mask_prompt: bool = False  # learn only the responses (the book's exercise 7.2; TRL's completion-only)
    max_length: int | None = None  # truncate examples to this many tokens; default: the context length
    epochs: float | None = 2.0  # the book trains 2 epochs
    max_test: int | None = None  # generate and score at most this many test examples
    baseline: bool = False  # also answer the test split with the base model first, to score before/after
    eval_batch_size: int = 8

    def __post_init__(self) -> None:
        object.__setattr__(self, "split", _check_split("instruct", self.split))
        if abs(sum(self.split) - 1) > 1e-6:
            raise ScratchLMError(f"instruct.split: the fractions must sum to 1, got {self.split}")
        if self.epochs is not None and self.epochs <= 0:
            raise ScratchLMError(f"instruct.epochs must be > 0 (or null), got {self.epochs}")
        if self.max_length is not None and self.max_length < 2:
            raise ScratchLMError(f"instruct.max_length must be at least 2, got {self.max_length}")
        if self.eval_batch_size < 1:
            raise ScratchLMError(f"instruct.eval_batch_size must be at least 1, got {self.eval_batch_size}")


@dataclass(frozen=True)
class JudgeConfig:
    """An LLM judge behind any OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp). The API key is never
    written to a run's config.json."""

    url: str = ""  # the API base, e.g. http://127.0.0.1:11434/v1 (or the full …/chat/completions URL)
    model: str = ""
    api_key: str | None = None
    timeout: float = 60.0  # seconds per request
    retries: int = 3  # further tries after the first
    backoff: float = 1.0  # seconds before the first retry, doubled after each
    temperature: float = 0.0  # the book asks with temperature 0 and seed 123, for repeatable scores
    seed: int | None = 123
    max_tokens: int | None = None
    max_failures: int = 3  # responses in a row the judge failed on before giving up on the endpoint

    def __post_init__(self) -> None:
        if not self.url or not self.model:
            raise ScratchLMError("judge: both judge.url and judge.model are needed")

    @property
    def endpoint(self) -> str:
        base = self.url.rstrip("/")
        return base if base.endswith("/chat/completions") else base + "/chat/completions"


Kind = Literal["pretrain", "classify", "instruct"]
KINDS: tuple[str, ...] = ("pretrain", "classify", "instruct")
SECTIONS = {
    "model": ModelConfig,
    "data": DataConfig,
    "train": TrainConfig,
    "lora": LoRAConfig,
    "classify": ClassifyConfig,
    "instruct": InstructConfig,
    "generate": GenerateConfig,
    "judge": JudgeConfig,
}


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs, whatever its kind; saved as config.json in the run directory.

    A run from `train.init` (every fine-tune, and continued pretraining) takes its architecture from those
    weights: `model` then holds what was loaded, with `model.dropout` from this config."""

    kind: Kind = "pretrain"
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()  # pretraining's text
    train: TrainConfig = TrainConfig()
    lora: LoRAConfig | None = None  # train a LoRA adapter on the frozen model
    classify: ClassifyConfig | None = None
    instruct: InstructConfig | None = None
    generate: GenerateConfig = GenerateConfig()  # how a run answers (instruct's test responses)
    judge: JudgeConfig | None = None  # score instruct's test responses with an LLM

    def __post_init__(self) -> None:
        _check_choice("config", "kind", self.kind, KINDS)
        if self.kind != "pretrain" and getattr(self, self.kind) is None:
            raise ScratchLMError(f"a {self.kind} run needs its {self.kind} section")
        if self.kind != "pretrain" and self.train.max_minutes is not None:
            raise ScratchLMError(
                f"train.max_minutes is for pretraining, not {self.kind}: a fine-tune's steps come from "
                "its epochs (or train.max_steps)"
            )

    @property
    def task(self) -> ClassifyConfig | InstructConfig | None:
        """The task section of this kind (None for pretraining)."""
        return None if self.kind == "pretrain" else getattr(self, self.kind)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["judge"] is not None:
            data["judge"]["api_key"] = None  # a secret: never on disk
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        if not isinstance(data, Mapping):
            raise ScratchLMError("a run config must be a mapping of sections")
        unknown = sorted(set(data) - {"kind", *SECTIONS})
        if unknown:
            raise ScratchLMError(f"config: unknown section(s) {unknown}; known: kind, {', '.join(SECTIONS)}")
        sections: dict[str, Any] = {}
        for name, section_cls in SECTIONS.items():
            values = data.get(name)
            if values is not None and not isinstance(values, Mapping):
                raise ScratchLMError(f"config section {name!r} must be a mapping, got {values!r}")
            if name == "model" and values and "preset" in values:
                values = dict(values)
                values = {**preset(values.pop("preset")).to_dict(), **values}
            if values is None and name in ("lora", "classify", "instruct", "judge"):
                sections[name] = None  # an absent optional section
            else:
                sections[name] = from_dict(section_cls, values or {})
        return cls(kind=data.get("kind", "pretrain"), **sections)


def deep_merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`changes` over `base`, section by section (a section set to null in `changes` is removed).

    >>> deep_merge({"train": {"lr": 1, "seed": 2}}, {"train": {"lr": 3}, "lora": {"rank": 4}})
    {'train': {'lr': 3, 'seed': 2}, 'lora': {'rank': 4}}
    """
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = dict(value) if isinstance(value, Mapping) else value
    return merged


def compose(kind: str, settings: Mapping[str, Any] | None = None) -> RunConfig:
    """The run config of `kind`: its preset (`pretrain_preset`, `book_classify`, `book_instruct`) with
    `settings` (a YAML file's sections, then command-line overrides, already merged) over it.

    The rules that join the sections live here, not in the CLI:
    - a task's `epochs` decides the number of steps, unless `train.max_steps` is given and `epochs` is not;
    - a `lora` section turns LoRA on: instruction tuning's default lr becomes 5e-4 (the adapters learn
      from zero), and a classifier's `train_layers` becomes "lora";
    - a run from `train.init` takes the architecture from those weights (`model.dropout` from here).
    """
    _check_choice("config", "kind", kind, KINDS)
    settings = dict(settings or {})
    if settings.get("kind", kind) != kind:
        raise ScratchLMError(f"the config is of a {settings['kind']} run, not {kind}")
    given = {name: dict(settings.get(name) or {}) for name in SECTIONS}
    has_lora = "lora" in settings and settings["lora"] is not None
    presets = {"pretrain": pretrain_preset, "classify": book_classify, "instruct": book_instruct}
    base = presets[kind](lora=has_lora).to_dict()
    if "preset" in given["model"]:  # a named architecture replaces the preset's, then takes overrides
        base["model"] = {}
    if has_lora and "alpha" not in given["lora"]:
        given["lora"]["alpha"] = None  # 2 × the rank given, not the preset's
    if kind != "pretrain" and "max_steps" in given["train"] and "epochs" not in given[kind]:
        given[kind]["epochs"] = None
    if kind == "classify" and has_lora and "train_layers" not in given["classify"]:
        given["classify"]["train_layers"] = "lora"
    if kind == "classify" and given["classify"].get("train_layers", "") == "lora" and not has_lora:
        settings["lora"] = {}  # LoRA's defaults
    changes: dict[str, Any] = {}
    for name in SECTIONS:
        if name in settings:
            changes[name] = None if settings[name] is None else given[name]
        elif given[name]:  # filled in by a rule above
            changes[name] = given[name]
    merged = deep_merge(base, changes)
    merged["kind"] = kind
    return RunConfig.from_dict(merged)


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


def modern_cpu(**overrides: Any) -> ModelConfig:
    """The modern small-model recipe of the nanoGPT speedrun (modded-nanogpt) at the demo's CPU size: 4
    layers, 192 wide, 6 heads, context 128, and each part a switch of its own: rotary positions, RMSNorm,
    QK-norm, a ReLU² MLP, an untied head, the residual projections zero at the start, logits soft-capped at
    15, no biases, no dropout. Train it with `train.optimizer: muon`. Value embeddings are the one part it
    leaves off (`value_embeddings=1` or 2 to try them: +vocab x width parameters per table)."""
    settings = dict(context_length=128, emb_dim=192, n_heads=6, n_layers=4, dropout=0.0, bias=False)
    settings |= dict(positions="rope", norm="rmsnorm", qk_norm=True, mlp="relu2", tie_embeddings=False)
    settings |= dict(zero_init_residual=True, logit_softcap=15.0)
    return ModelConfig(**{**settings, **overrides})


# The modern skeleton (scratchlm.model.rope, norms, SwiGLU, grouped-query attention), without biases.
MODERN = {"positions": "rope", "norm": "rmsnorm", "mlp": "swiglu", "bias": False, "dropout": 0.0}


def llama32_1b(**overrides: Any) -> ModelConfig:
    """Llama-3.2-1B's published shape: 16 layers, 2048 wide, 32 query heads sharing 8 key/value heads,
    SwiGLU 8192, rope theta 500k with llama3 scaling (factor 32 from 8k), tied head; 1.24 B parameters."""
    return dataclasses.replace(
        ModelConfig(
            vocab_size=128256, context_length=131072, emb_dim=2048, n_heads=32, n_kv_heads=8, n_layers=16,
            ff_dim=8192, rope_theta=500000.0, rope_type="llama3", rope_factor=32.0, rope_low_freq_factor=1.0,
            rope_high_freq_factor=4.0, rope_original_context=8192, norm_eps=1e-5, **MODERN,
        ),
        **overrides,
    )  # fmt: skip


def qwen25_05b(**overrides: Any) -> ModelConfig:
    """Qwen2.5-0.5B's published shape: 24 layers, 896 wide, 14 query heads sharing 2, SwiGLU 4864, q/k/v
    biases, rope theta 1M, tied head; 494 M parameters."""
    return dataclasses.replace(
        ModelConfig(
            vocab_size=151936, context_length=32768, emb_dim=896, n_heads=14, n_kv_heads=2, n_layers=24,
            ff_dim=4864, qkv_bias=True, rope_theta=1000000.0, norm_eps=1e-6, **MODERN,
        ),
        **overrides,
    )  # fmt: skip


def qwen3_06b(**overrides: Any) -> ModelConfig:
    """Qwen3-0.6B's published shape: 28 layers, 1024 wide, 16 query heads of 128 sharing 8, QK-norm,
    SwiGLU 3072, rope theta 1M, tied head; 596 M parameters."""
    return dataclasses.replace(
        ModelConfig(
            vocab_size=151936, context_length=40960, emb_dim=1024, n_heads=16, n_kv_heads=8, head_size=128,
            n_layers=28, ff_dim=3072, qk_norm=True, rope_theta=1000000.0, norm_eps=1e-6, **MODERN,
        ),
        **overrides,
    )  # fmt: skip


# Gemma 3's choices on top of MODERN: see ModelConfig and scratchlm.interop.hf_gemma.
GEMMA3 = {
    **MODERN, "norm": "rmsnorm_offset", "mlp": "geglu", "norm_placement": "sandwich", "qk_norm": True,
    "emb_scale": True, "rope_theta": 1_000_000.0, "rope_local_theta": 10_000.0, "norm_eps": 1e-6,
}  # fmt: skip


def gemma3_layers(n_layers: int, pattern: int = 6) -> tuple[str, ...]:
    """Gemma 3's layer pattern: five sliding-window layers, then one full one, repeated."""
    return tuple("sliding" if (i + 1) % pattern else "full" for i in range(n_layers))


def olmo3_layers(n_layers: int) -> tuple[str, ...]:
    """Olmo 3's layer pattern: three sliding-window layers, then one full one, repeated."""
    return tuple("sliding" if (i + 1) % 4 else "full" for i in range(n_layers))


def gemma3_270m(**overrides: Any) -> ModelConfig:
    """Gemma-3-270M's published shape: 18 layers, 640 wide, 4 query heads of 256 sharing 1, GeGLU 2048, a
    512-token window on 5 layers of 6, rope 1M (full) and 10k (sliding), tied head; 268 M parameters
    (168 M of them the 262k-token embedding)."""
    return _gemma3(
        dict(vocab_size=262144, context_length=32768, emb_dim=640, n_heads=4, n_kv_heads=1, head_size=256,
             n_layers=18, ff_dim=2048, attn_scalar=256.0, sliding_window=512),
        overrides,
    )  # fmt: skip


def gemma3_1b(**overrides: Any) -> ModelConfig:
    """Gemma-3-1B's published shape: 26 layers, 1152 wide, 4 query heads of 256 sharing 1, GeGLU 6912, a
    512-token window on 5 layers of 6, rope 1M (full) and 10k (sliding), tied head; 1.0 B parameters."""
    return _gemma3(
        dict(vocab_size=262144, context_length=32768, emb_dim=1152, n_heads=4, n_kv_heads=1, head_size=256,
             n_layers=26, ff_dim=6912, attn_scalar=256.0, sliding_window=512),
        overrides,
    )  # fmt: skip


def _gemma3(shape: dict[str, Any], overrides: dict[str, Any]) -> ModelConfig:
    """A Gemma 3 config; its layer pattern follows n_layers unless `overrides` give layer_types."""
    settings = {**GEMMA3, **shape, **overrides}
    settings.setdefault("layer_types", gemma3_layers(settings["n_layers"]))
    return ModelConfig(**settings)


def modern_small(family: str) -> Callable[..., ModelConfig]:
    """A CPU-sized model of `family` to train from scratch, the size of `small`: 6 layers, 384 wide, 6 query
    heads sharing 2 key/value heads, SwiGLU 1024 (~8/3 x), context 256; Qwen2's q/k/v biases, Qwen3's
    QK-norm, Gemma 3's block (GeGLU, four norms, a 64-token window on five layers of six), Olmo 3's
    (post-norm, QK-norm over the whole projections, a 64-token window on three layers of four)."""
    extra = {
        "llama": MODERN,
        "qwen2": {**MODERN, "qkv_bias": True},
        "qwen3": {**MODERN, "qk_norm": True},
        # Gemma 3's block, a 64-token window on 5 layers of 6, the scores scaled by the head size
        "gemma3": {**GEMMA3, "sliding_window": 64, "attn_scalar": 64.0},
        # Olmo 3's post-norm block with whole-projection QK-norm, a 64-token window on 3 layers of 4
        "olmo3": {
            **MODERN,
            "norm_placement": "post",
            "qk_norm": True,
            "qk_norm_scope": "projection",
            "sliding_window": 64,
            "layer_types": olmo3_layers(6),
        },
    }[family]

    def make(**overrides: Any) -> ModelConfig:
        shape = dict(context_length=256, emb_dim=384, n_heads=6, n_kv_heads=2, n_layers=6, ff_dim=1024)
        if family == "gemma3":
            return _gemma3({**extra, **shape}, overrides)
        settings = {"norm_eps": 1e-6, **extra, **shape, **overrides}
        if family == "olmo3" and "layer_types" not in overrides:  # the pattern follows n_layers
            settings["layer_types"] = olmo3_layers(settings["n_layers"])
        return ModelConfig(**settings)

    make.__doc__ = f"{family}-small: " + (modern_small.__doc__ or "")
    return make


PRESETS: dict[str, Callable[..., ModelConfig]] = {
    "gpt2-small": gpt2_small,
    "gpt2-medium": gpt2_medium,
    "gpt2-large": gpt2_large,
    "gpt2-xl": gpt2_xl,
    "small": small,
    "tiny": tiny,
    "modern-cpu": modern_cpu,
    "llama3.2-1b": llama32_1b,
    "qwen2.5-0.5b": qwen25_05b,
    "qwen3-0.6b": qwen3_06b,
    "gemma3-270m": gemma3_270m,
    "gemma3-1b": gemma3_1b,
    "llama-small": modern_small("llama"),
    "qwen2-small": modern_small("qwen2"),
    "qwen3-small": modern_small("qwen3"),
    "gemma3-small": modern_small("gemma3"),
    "olmo3-small": modern_small("olmo3"),
}


def preset(name: str, **overrides: Any) -> ModelConfig:
    try:
        make = PRESETS[name]
    except KeyError:
        raise ScratchLMError(f"unknown model preset {name!r}; choose from {sorted(PRESETS)}") from None
    return make(**overrides)


# ---- run presets: a kind's defaults, with their sources ---------------------------------------------------


def pretrain_preset(lora: bool = False) -> RunConfig:
    """Pretraining's defaults: GPT-2 small, GPT-3's AdamW and cosine schedule (TrainConfig's defaults)."""
    return RunConfig()


def book_classify(lora: bool = False) -> RunConfig:
    """The book's chapter 6: AdamW (torch's betas 0.9/0.999) at a constant 5e-5, weight decay 0.1, batch 8,
    5 epochs, the last block + final norm + head trained (LoRA: adapters + head), dropout 0, evaluation
    once per epoch, seed 123."""
    return RunConfig(
        kind="classify",
        model=ModelConfig(dropout=0.0),
        train=_book_train(),
        lora=LoRAConfig() if lora else None,
        classify=ClassifyConfig(train_layers="lora" if lora else "last-1"),
    )


def book_instruct(lora: bool = False) -> RunConfig:
    """The book's chapter 7: AdamW (0.9/0.999) at a constant 5e-5 (5e-4 with LoRA, whose B matrices start
    at zero), weight decay 0.1, batch 8, 2 epochs, dropout 0, validation every 50 steps, answers of up to
    256 tokens, seed 123."""
    return RunConfig(
        kind="instruct",
        model=ModelConfig(dropout=0.0),
        train=_book_train(lr=5e-4 if lora else 5e-5, eval_interval=50),
        lora=LoRAConfig() if lora else None,
        instruct=InstructConfig(),
        generate=GenerateConfig(max_new_tokens=256),
    )


def _book_train(**overrides: Any) -> TrainConfig:
    book = dict(
        lr=5e-5,
        warmup_steps=0,
        decay="constant",
        weight_decay=0.1,
        beta2=0.999,
        batch_size=8,
        eval_interval=None,
        seed=123,
    )
    return TrainConfig(**{**book, **overrides})
