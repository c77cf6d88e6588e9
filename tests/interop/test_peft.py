"""PEFT adapters both ways: ours saved in PEFT's format load in `peft` on our HF export with the same
logits; adapters made by `peft` load into ours with the same logits."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from scratchlm.errors import ScratchLMError
from scratchlm.interop.hf import load_hf_gpt2, save_hf_gpt2
from scratchlm.interop.peft import load_peft_adapter, save_peft_adapter
from scratchlm.model.lora import apply_lora, merge_lora
from tests.tiny import tiny_gpt

peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

X = torch.randint(0, 120, (2, 24), generator=torch.Generator().manual_seed(3))
ALL = ("qkv", "out_proj", "ff_in", "ff_out", "head")


def base(tmp_path, seed=0):
    m = tiny_gpt(seed, vocab_size=120, context_length=24, n_heads=4)
    save_hf_gpt2(m, tmp_path / "base")
    return m


def randomize_b(m):
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("lora_B") or name.endswith("lora_B.weight"):
                p.normal_(0, 0.05)


@pytest.mark.parametrize(("targets", "rslora"), [(("qkv", "out_proj"), False), (ALL, True)])
def test_ours_loads_in_peft_with_the_same_logits(tmp_path, targets, rslora):
    ours = base(tmp_path)
    apply_lora(ours, rank=4, alpha=8, targets=targets, rslora=rslora)
    randomize_b(ours)
    save_peft_adapter(ours, tmp_path / "adapter", base_model_name_or_path=str(tmp_path / "base"))
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "base")
    model = peft.PeftModel.from_pretrained(hf, tmp_path / "adapter").eval()
    with torch.no_grad():
        expected = ours(X)
        assert (model(X).logits - expected).abs().max() <= 1e-4
        if "head" not in targets:  # PEFT merges a tied lm_head into the embedding too (it warns): skip
            merged = model.merge_and_unload()
            assert (merged(X).logits - expected).abs().max() <= 1e-4


def test_peft_made_adapter_loads_into_ours(tmp_path):
    ours = base(tmp_path)
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "base")
    config = peft.LoraConfig(
        r=4,
        lora_alpha=12,
        target_modules=["c_attn", "mlp.c_proj"],
        fan_in_fan_out=True,
        task_type="CAUSAL_LM",
    )
    model = peft.get_peft_model(hf, config)
    randomize_b(model)
    model.save_pretrained(tmp_path / "made")
    model.eval()
    report = load_peft_adapter(ours, tmp_path / "made")
    assert ours.lora_config.targets == ("qkv", "ff_out") and ours.lora_config.alpha == 12
    assert report["trainable"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    with torch.no_grad():
        assert (ours(X) - model(X).logits).abs().max() <= 1e-4


def test_round_trip_and_merge(tmp_path):
    ours = base(tmp_path)
    apply_lora(ours, rank=2, alpha=4, targets=ALL, layers=(1,))
    randomize_b(ours)
    save_peft_adapter(ours, tmp_path / "adapter")
    again = load_hf_gpt2(tmp_path / "base")
    load_peft_adapter(again, tmp_path / "adapter")
    assert again.lora_config.layers == (1,)
    with torch.no_grad():
        assert (again(X) - ours(X)).abs().max() <= 1e-6
        merge_lora(again, unload=True)
        assert (again(X) - ours(X)).abs().max() <= 1e-5


def test_adapters_that_do_not_fit_are_refused(tmp_path):
    ours = base(tmp_path)
    apply_lora(ours, rank=2, alpha=4)
    save_peft_adapter(ours, tmp_path / "adapter")
    wider = tiny_gpt(vocab_size=120, context_length=24, emb_dim=64, n_heads=4)
    with pytest.raises(ScratchLMError, match="another base model"):
        load_peft_adapter(wider, tmp_path / "adapter")
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(ScratchLMError, match="use_dora"):
        load_peft_adapter(base(tmp_path), tmp_path / "adapter")
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps(config))
    tensors = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    tensors["base_model.model.transformer.wte.lora_A.weight"] = torch.zeros(2, 2)
    save_file(tensors, str(tmp_path / "adapter" / "adapter_model.safetensors"))
    with pytest.raises(ScratchLMError, match="not a LoRA weight"):
        load_peft_adapter(base(tmp_path), tmp_path / "adapter")
    with pytest.raises(ScratchLMError, match="not a PEFT adapter"):
        load_peft_adapter(base(tmp_path), tmp_path)
    plain = base(tmp_path)
    with pytest.raises(ScratchLMError, match="apply_lora first"):
        save_peft_adapter(plain, tmp_path / "none")


def test_an_architecture_without_a_transformers_family_gets_no_adapter(tmp_path):
    from scratchlm.config import preset
    from scratchlm.interop.peft import adapter_format_problem, save_adapter_if_possible
    from scratchlm.model.gpt import GPT

    modern = GPT(preset("modern-cpu", vocab_size=64, n_layers=1, emb_dim=48, n_heads=2))  # ReLU²: no family
    apply_lora(modern, rank=2, alpha=4)
    assert "mlp" in adapter_format_problem(modern)
    with pytest.raises(ScratchLMError, match="no PEFT adapter for this model"):
        save_peft_adapter(modern, tmp_path / "adapter")
    events: list[dict] = []
    assert save_adapter_if_possible(modern, tmp_path / "adapter", None, events.append) is None
    assert events[0]["event"] == "no_peft_adapter" and not (tmp_path / "adapter").exists()
    ours = base(tmp_path)  # GPT-2: written as ever
    apply_lora(ours, rank=2, alpha=4)
    assert adapter_format_problem(ours) is None
    assert save_adapter_if_possible(ours, tmp_path / "gpt2", None, events.append) == tmp_path / "gpt2"
    assert len(events) == 1
