"""PEFT adapters for every modern family, both ways: ours (on the fused q/k/v, the gated MLP, the head) load
in `peft` onto the `transformers` model with the same logits, and adapters `peft` makes with its own target
names (`q_proj`, `k_proj`, `v_proj`, `o_proj`, `gate_proj`, `up_proj`, `down_proj`) load into ours."""

from __future__ import annotations

import json

import pytest
import torch

from scratchlm.errors import ScratchLMError
from scratchlm.formats.model_files import load_model
from scratchlm.interop.peft import load_peft_adapter, save_peft_adapter
from scratchlm.model.lora import apply_lora
from tests.interop.test_hf_gemma import save_gemma3
from tests.interop.test_hf_llama import save_llama
from tests.interop.test_hf_olmo import save_olmo

peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

X = torch.randint(0, 101, (2, 40), generator=torch.Generator().manual_seed(7))
ALL = ("qkv", "out_proj", "ff_in", "ff_out", "head")
FAMILIES = {
    "llama": lambda d: save_llama(d),
    "qwen2": lambda d: save_llama(d, family="qwen2", tie_word_embeddings=True),
    "qwen3": lambda d: save_llama(d, family="qwen3", head_dim=16),
    "mistral": lambda d: save_llama(d, family="mistral", sliding_window=8),
    "gemma3_text": lambda d: save_gemma3(d),
    "olmo3": lambda d: save_olmo(d, "olmo3"),
}


def randomize_b(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("lora_B", "lora_B.weight", "lora_B.default.weight")):
                p.normal_(0, 0.05)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_ours_loads_in_peft_with_the_same_logits(tmp_path, name):
    FAMILIES[name](tmp_path / "base")
    ours, _ = load_model(tmp_path / "base")
    rslora = name == "qwen3"
    apply_lora(ours, rank=4, alpha=8, targets=ALL, rslora=rslora)
    randomize_b(ours)
    save_peft_adapter(ours, tmp_path / "adapter", base_model_name_or_path=str(tmp_path / "base"))
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    expected_targets = [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
        "lm_head",
    ]
    assert config["target_modules"] == expected_targets and config["fan_in_fan_out"] is False
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "base")
    model = peft.PeftModel.from_pretrained(hf, tmp_path / "adapter").eval()
    with torch.no_grad():
        assert (model(X).logits - ours(X)).abs().max().item() <= 1e-5


@pytest.mark.parametrize(
    ("name", "targets", "rslora"),
    [
        ("llama", ["q_proj", "v_proj"], False),  # PEFT's usual choice: k's rows of the fused update stay 0
        ("qwen3", ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], True),
        ("gemma3_text", ["k_proj", "gate_proj", "down_proj", "lm_head"], False),  # up keeps a zero update
        ("olmo3", ["q_proj", "k_proj", "v_proj", "o_proj"], False),
    ],
)
def test_a_peft_made_adapter_loads_into_ours(tmp_path, name, targets, rslora):
    FAMILIES[name](tmp_path / "base")
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "base")
    config = peft.LoraConfig(
        r=4, lora_alpha=12, target_modules=targets, use_rslora=rslora, task_type="CAUSAL_LM"
    )
    model = peft.get_peft_model(hf, config)
    randomize_b(model)
    model.save_pretrained(tmp_path / "made")
    model.eval()
    ours, _ = load_model(tmp_path / "base")
    load_peft_adapter(ours, tmp_path / "made")
    with torch.no_grad():
        assert (ours(X) - model(X).logits).abs().max().item() <= 1e-5


def test_an_adapter_on_q_alone_round_trips_and_a_widened_one_is_refused(tmp_path):
    FAMILIES["llama"](tmp_path / "base")
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "base")
    model = peft.get_peft_model(hf, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "o_proj"]))
    randomize_b(model)
    model.save_pretrained(tmp_path / "made")
    ours, _ = load_model(tmp_path / "base")
    load_peft_adapter(ours, tmp_path / "made")
    save_peft_adapter(ours, tmp_path / "again")  # q alone: rank 4 still; k and v get zero B rows
    again, _ = load_model(tmp_path / "base")
    load_peft_adapter(again, tmp_path / "again")
    with torch.no_grad():
        assert (again(X) - ours(X)).abs().max().item() <= 1e-6
    both = peft.get_peft_model(
        transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "base"),
        peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
    )
    both.save_pretrained(tmp_path / "qv")
    widened, _ = load_model(tmp_path / "base")
    load_peft_adapter(widened, tmp_path / "qv")
    with pytest.raises(ScratchLMError, match="rank-8 adapter in a rank-4 LoRA"):
        save_peft_adapter(widened, tmp_path / "out")
