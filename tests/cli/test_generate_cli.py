"""`scratchlm generate` and `scratchlm export` end to end on a tiny model directory."""

from __future__ import annotations

import json

import pytest
import torch

from scratchlm.cli.main import main
from scratchlm.config import tiny
from scratchlm.formats.model_files import load_model, save_model
from scratchlm.model import GPT


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, gpt2):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("model")
    save_model(GPT(tiny(context_length=64, n_layers=2)).eval(), d, gpt2)
    return d


def test_generate_greedy_is_deterministic_and_cache_independent(model_dir, capsys):
    argv = ["generate", "-m", str(model_dir), "-p", "Every effort moves you", "-n", "12", "--device", "cpu"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert first.startswith("Every effort moves you")
    assert main([*argv, "--no-cache"]) == 0
    assert capsys.readouterr().out == first


def test_generate_in_bf16_on_a_rope_model(tmp_path, gpt2, capsys):
    """--dtype bf16: the weights cast as loaded, the rotary frequencies kept in fp32, and the CLI generates
    with them; an unknown dtype is refused by the parser."""
    from scratchlm.config import MODERN

    torch.manual_seed(0)
    save_model(GPT(tiny(context_length=64, n_layers=2, n_kv_heads=2, **MODERN)).eval(), tmp_path, gpt2)
    model, _ = load_model(tmp_path, "bf16")
    assert model.emb.tok_emb.weight.dtype == torch.bfloat16 and model.inv_freq.dtype == torch.float32
    argv = ["generate", "-m", str(tmp_path), "-p", "Every effort moves you", "-n", "4", "--device", "cpu"]
    assert main([*argv, "--dtype", "bf16"]) == 0
    bf16 = capsys.readouterr().out
    assert bf16.startswith("Every effort moves you") and len(bf16) > len("Every effort moves you")
    with pytest.raises(SystemExit):
        main([*argv, "--dtype", "int8"])
    assert "invalid choice: 'int8'" in capsys.readouterr().err


def test_generate_sampling_with_seed(model_dir, capsys):
    argv = [
        "generate",
        "-m",
        str(model_dir),
        "-p",
        "Hi",
        "-n",
        "8",
        "-T",
        "1.0",
        "--top-k",
        "20",
        "--seed",
        "5",
    ]
    assert main(argv) == 0
    a = capsys.readouterr().out
    assert main(argv) == 0
    assert capsys.readouterr().out == a


def test_export_to_hf_and_back(model_dir, tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    assert main(["export", "-m", str(model_dir), "-o", str(tmp_path / "hf")]) == 0
    names = {p.name for p in (tmp_path / "hf").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= names
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    ours, tok = load_model(model_dir)
    ids = tok.encode("Every effort moves you")
    assert hf_tok("Every effort moves you")["input_ids"] == ids
    with torch.no_grad():
        assert (hf(torch.tensor([ids])).logits - ours(torch.tensor([ids]))).abs().max() <= 1e-4
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["eos_token_id"] == 50256


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["generate", "-m", "/no/model", "-p", "x"], "no such model directory"),
        (["generate", "-m", "{model}", "-p", ""], "the prompt is empty"),
        (["generate", "-m", "{model}", "-p", "x", "--top-p", "2"], "top_p"),
        (["generate", "-m", "{model}", "-p", "x", "--device", "cuda:7"], "CUDA"),
        (["export", "-m", "/no/model", "-o", "x"], "no such model directory"),
    ],
)
def test_errors_are_one_line(model_dir, capsys, argv, message):
    if "--device" in argv and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    argv = [a.replace("{model}", str(model_dir)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("scratchlm: error: ") and err.count("\n") == 1 and message in err


def test_generate_and_chat_share_one_sampling_vocabulary():
    """The same names for the same ideas: generate and chat take one sampling group (defaults differ only
    where the uses do), and serve's request cap is named as a cap."""
    import argparse

    from scratchlm.cli import chat, generate, serve

    def flags(module) -> dict[str, argparse.Action]:
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        return {option: action for action in parser._actions for option in action.option_strings}

    sampling = ["--max-new-tokens", "--max-tokens", "--temperature", "--top-k", "--top-p"]
    sampling += ["--repetition-penalty", "--seed"]
    gen, talk = flags(generate), flags(chat)
    for name in sampling:
        assert gen[name].dest == talk[name].dest, name
    assert gen["--temperature"].default == 0.0 and talk["--temperature"].default == 0.7
    assert flags(serve)["--max-tokens-cap"].dest == "max_tokens"
