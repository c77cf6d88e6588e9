"""What a demo run is asked to do (`DemoConfig`, from `scratchlm demo`'s flags), and the demo's preset: its
model, each stage's recipe, and how the stages share the time budget. Every number the stages train with is
here, so one file says what the demo is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

STAGE_NAMES = ("tokenize", "pretrain", "classify", "instruct", "chat")


@dataclass
class DemoConfig:
    out: Path = Path("runs/demo")
    minutes: float = 10.0
    stages: tuple[str, ...] = STAGE_NAMES
    vocab_size: int = 4096
    seed: int = 123
    interactive: bool = False  # chat in the terminal at the end (else print answers)
    show_progress: bool = True
    fresh: bool = False  # delete earlier outputs of the chosen stages first
    max_examples: int | None = None  # per split, for classify and instruct (a quick smoke run)
    dataset: str | None = None  # pretrain on this text dataset of the registry instead (scratchlm data list)
    with_source: float | None = None  # also pretrain on this many MB of the standard library's source code
    data_dir: str | None = None  # where to look for it before the cache and the network
    say: Callable[[str], None] = field(default=print)


# ---- the preset ------------------------------------------------------------------------------------------

# The budget's shares (the rest is fixed overhead: tokenizing, evaluations, the chat).
SHARES = {"pretrain": 0.5, "classify": 0.2, "instruct": 0.25}
# A fine-tuning step at batch 16 costs this much of a pretraining step (measured on 2 cores: 0.67 for the
# classifier, whose docstrings are padded only to the batch's longest, and 0.67 for LoRA on short answers).
STEP_COST = {"classify": 0.75, "instruct": 0.75}

VAL_SHARE = 0.05  # of the documentation (or of a named dataset): the held-out tail for validation
TEXT_DATASETS = ("tinyshakespeare", "the-verdict", "tinystories")  # what --dataset may pretrain on

# The model and pretraining recipe are configs/cpu-5min.yaml's (the CPU speedrun's; tests/demo checks that
# they are the same), with the demo's own tokenizer and time share in place of the file's vocab and minutes.
MODEL = dict(preset="modern-cpu", context_length=128, dropout=0.1)
PRETRAIN = dict(
    precision="fastest", optimizer="muon", muon_lr=0.02, muon_momentum_warmup=50, batch_size=16, lr=2e-3,
    min_lr=1e-4, warmup_steps=50, beta2=0.99, weight_decay=0.1,
)  # fmt: skip
SAMPLE_PROMPT = "The json module"  # pretraining shows how the model continues it at each evaluation

# Full fine-tuning of every layer for the classifier.
CLASSIFY = {"batch_size": 16, "lr": 5e-4, "warmup_steps": 20, "decay": "cosine", "precision": "fastest"}
# LoRA on every block's linear layers for instruction tuning; betas (0.9, 0.95) and validation every 100
# steps: this demo's recipe since it was measured.
INSTRUCT = {
    "lr": 2e-3, "batch_size": 16, "beta2": 0.95, "eval_interval": 100, "log_interval": 10,
    "precision": "fastest",
}  # fmt: skip
LORA = {"rank": 16, "alpha": 32, "targets": ["qkv", "out_proj", "ff_in", "ff_out"]}
INSTRUCT_ANSWER_TOKENS = 32
MAX_TEST_QUESTIONS = 40


def redo_command(cfg: DemoConfig, stage: str | None = None) -> str:
    """How to redo this demo, or one stage of it (each stage's run report shows it)."""
    words = ["scratchlm demo", *([f"--stage {stage}"] if stage else []), "--fresh", f"--out {cfg.out}"]
    words.append(f"--minutes {cfg.minutes:g}")
    if cfg.vocab_size != DemoConfig.vocab_size:
        words.append(f"--vocab-size {cfg.vocab_size}")
    if cfg.with_source is not None:
        words.append(f"--with-source {cfg.with_source:g}")
    if cfg.dataset:
        words.append(f"--dataset {cfg.dataset}" + (f" --data-dir {cfg.data_dir}" if cfg.data_dir else ""))
    return " ".join(words)
