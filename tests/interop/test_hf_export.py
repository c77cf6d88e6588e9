"""Export to Hugging Face for every family: a model read from a `transformers` directory, or built here from
a family preset, written by `export_hf` (`scratchlm export`) loads in `transformers` unchanged with the same
logits; config.json carries both dialects, and each half alone builds the same model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from scratchlm.cli.main import main
from scratchlm.config import preset
from scratchlm.errors import ScratchLMError
from scratchlm.formats.model_files import export_hf, load_model
from scratchlm.interop.hf_export import hf_model_type
from scratchlm.model import GPT
from tests.interop.test_hf_gemma import save_gemma3
from tests.interop.test_hf_llama import LLAMA3_SCALING, save_llama
from tests.interop.test_hf_olmo import save_olmo
from tests.tiny import tiny_config

transformers = pytest.importorskip("transformers")

X = torch.randint(0, 101, (2, 40), generator=torch.Generator().manual_seed(7))
TRANSFORMERS_4_KEYS = ("rope_theta", "rope_scaling", "rope_local_base_freq", "sliding_window_pattern")

FAMILIES = {
    "llama": lambda d: save_llama(d),
    "llama-tied-llama3": lambda d: save_llama(d, tie_word_embeddings=True, rope_scaling=LLAMA3_SCALING),
    "qwen2": lambda d: save_llama(d, family="qwen2"),
    "qwen3": lambda d: save_llama(d, family="qwen3", head_dim=16),
    "qwen3-yarn": lambda d: save_llama(
        d,
        family="qwen3",
        rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16},
    ),
    "mistral": lambda d: save_llama(d, family="mistral", sliding_window=8),
    "gemma3_text": lambda d: save_gemma3(d),
    "gemma3-softcap-untied": lambda d: save_gemma3(d, final_logit_softcapping=3.0, tie_word_embeddings=False),
    "olmo2": lambda d: save_olmo(d, "olmo2"),
    "olmo3": lambda d: save_olmo(d, "olmo3", tie_word_embeddings=True),
}


def load_theirs(directory: Path) -> torch.nn.Module:
    return transformers.AutoModelForCausalLM.from_pretrained(directory).eval()


def rewrite(directory: Path, keep: str) -> None:
    """Leave one dialect in config.json: transformers 4's keys or transformers 5's rope_parameters."""
    config = json.loads((directory / "config.json").read_text())
    drop = ("rope_parameters",) if keep == "transformers 4" else TRANSFORMERS_4_KEYS
    (directory / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k not in drop}))


@pytest.mark.parametrize("name", list(FAMILIES))
def test_a_loaded_model_exports_to_transformers_with_the_same_logits(tmp_path, name):
    theirs = FAMILIES[name](tmp_path / "source")
    ours, _ = load_model(tmp_path / "source")
    export_hf(ours, tmp_path / "out")
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["model_type"] == theirs.config.model_type and "rope_parameters" in config
    assert "rope_theta" in config  # transformers 4 reads this one
    with torch.no_grad():
        expected = theirs(X).logits
        assert (load_theirs(tmp_path / "out")(X).logits - expected).abs().max().item() <= 1e-5
        # Olmo 3's transformers 4 keys are read by transformers 5 with the sliding layers at its default
        # base (a transformers quirk), so that half is checked for the others only
        halves = ["transformers 5"] + ([] if name == "olmo3" else ["transformers 4"])
        for keep in halves:
            rewrite(tmp_path / "out", keep)
            assert (load_theirs(tmp_path / "out")(X).logits - expected).abs().max().item() <= 1e-5, keep
            (tmp_path / "out" / "config.json").write_text(json.dumps(config))
    again, _ = load_model(tmp_path / "out")  # and back into scratchlm
    assert again.cfg == ours.cfg


SMALL = {"n_layers": 4, "emb_dim": 32, "n_heads": 4, "ff_dim": 48, "vocab_size": 101, "context_length": 64}


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("llama-small", "llama"),
        ("qwen2-small", "qwen2"),
        ("qwen3-small", "qwen3"),
        ("gemma3-small", "gemma3_text"),
        ("olmo3-small", "olmo3"),
    ],
)
def test_a_model_built_here_exports_to_its_family(tmp_path, name, family):
    overrides = dict(SMALL)
    if name in ("gemma3-small", "olmo3-small"):
        overrides["sliding_window"] = 8
    torch.manual_seed(0)
    model = GPT(preset(name, **overrides)).eval()
    with torch.no_grad():  # norms away from their starting gain, so that a misplaced one shows
        for param_name, p in model.named_parameters():
            if "norm" in param_name:
                p.uniform_(0.5, 1.5)
    assert hf_model_type(model.cfg) == family
    export_hf(model, tmp_path)
    with torch.no_grad():
        assert (load_theirs(tmp_path)(X).logits - model(X)).abs().max().item() <= 1e-5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"positions": "rope", "norm": "layernorm", "mlp": "swiglu", "bias": False}, "norm='layernorm'"),
        (
            {"positions": "rope", "norm": "rmsnorm", "mlp": "swiglu", "bias": False, "sliding_window": 4,
             "layer_types": ("sliding", "full")},
            "a llama model with sliding-window layers",
        ),
        ({"positions": "rope", "norm": "rmsnorm", "mlp": "gelu", "bias": False}, "mlp='gelu'"),
        (
            {"positions": "rope", "norm": "rmsnorm", "mlp": "swiglu", "bias": False, "norm_placement": "post",
             "qk_norm": True, "qk_norm_scope": "projection", "sliding_window": 4,
             "layer_types": ("sliding", "full"), "rope_type": "yarn", "rope_factor": 2.0,
             "rope_original_context": 16},
            "olmo3 leaves its sliding layers unscaled",
        ),
    ],
)  # fmt: skip
def test_a_model_no_family_describes_is_refused_before_writing(tmp_path, overrides, message):
    model = GPT(tiny_config(**overrides))
    with pytest.raises(ScratchLMError, match=message):
        export_hf(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_cli_exports_a_chat_model_with_its_tokenizer_and_template(tmp_path, capsys):
    from transformers import AutoTokenizer

    from tests.interop.test_hf_tokenizer import CONVERSATION, build_tokenizer

    source = tmp_path / "source"
    build_tokenizer(source, "bytelevel")
    vocab = len(json.loads((source / "tokenizer.json").read_text())["model"]["vocab"]) + 10
    theirs = save_llama(source, family="qwen3", head_dim=16, vocab_size=vocab)
    assert main(["export", "-m", str(source), "-o", str(tmp_path / "out")]) == 0
    assert "tokenizer.json" in capsys.readouterr().out
    with torch.no_grad():
        x = X % vocab
        assert (load_theirs(tmp_path / "out")(x).logits - theirs(x).logits).abs().max().item() <= 1e-5
    before, after = AutoTokenizer.from_pretrained(source), AutoTokenizer.from_pretrained(tmp_path / "out")
    prompt = dict(tokenize=True, add_generation_prompt=True, return_dict=False)
    assert after.apply_chat_template(CONVERSATION, **prompt) == before.apply_chat_template(
        CONVERSATION, **prompt
    )
    generation = json.loads((tmp_path / "out" / "generation_config.json").read_text())
    assert generation["eos_token_id"] == after.convert_tokens_to_ids(after.eos_token)
