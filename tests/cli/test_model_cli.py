"""`scratchlm model info`: a model described from its config alone, presets, directories and errors alike."""

from __future__ import annotations

import pytest

from scratchlm.cli.main import main
from scratchlm.formats.model_files import load_config, save_model
from tests.tiny import tiny_gpt


def info(capsys, *args: str) -> str:
    assert main(["model", "info", *args]) == 0
    return capsys.readouterr().out


def test_a_preset_with_grouped_query_attention(capsys):
    out = info(capsys, "llama3.2-1b", "--context", "8192")
    assert "grouped-query attention, 32 query : 8 key/value heads of 64" in out
    assert "rotary positions (theta 500,000, llama3 scaling x32)" in out
    assert "parameters   1,235,814,400" in out
    assert "512.0 MiB for 1 x 8,192 tokens in float32 (multi-head attention: 2,048.0 MiB" in out
    assert "keeps 25% of it" in out


def test_gemma3_with_its_sliding_windows(capsys):
    out = info(capsys, "gemma3-270m", "--context-length", "32768")  # also --context, as before
    assert "parameters   268,098,176" in out  # the published count
    assert "RMSNorm (gain 1 + w) before and after each sublayer, GeGLU MLP (2,048)" in out
    assert "a 512-token sliding window on 15 of 18 layers, rope theta 10,000 there" in out
    # 3 full layers x 32,768 + 15 sliding x 512 positions, of 1 key/value head of 256, keys and values
    assert (
        f"only the window on sliding layers: {2 * (3 * 32768 + 15 * 512) * 256 * 4 / 2**20:,.1f} MiB" in out
    )
    assert "parameters   999,885,952" in info(capsys, "gemma3-1b")


def test_gpt2_and_a_directory(capsys, tmp_path):
    assert info(capsys, "gpt2-small", "--dtype", "bf16") == info(capsys, "gpt2-small", "--dtype", "bfloat16")
    out = info(capsys, "gpt2-small", "--dtype", "bf16")
    assert "learned positions, LayerNorm, GELU MLP (3,072), multi-head attention, 12 heads of 64" in out
    assert "72.0 MiB" not in out and "36.0 MiB for 1 x 1,024 tokens in bfloat16" in out
    save_model(tiny_gpt(vocab_size=50257, n_kv_heads=1, positions="rope", norm="rmsnorm"), tmp_path / "m")
    assert load_config(tmp_path / "m").kv_heads == 1
    out = info(capsys, str(tmp_path / "m"))
    assert "(config.json)" in out and "multi-query attention, 2 query : 1 key/value heads of 16" in out


def test_errors_are_one_line(capsys, tmp_path):
    assert main(["model", "info", str(tmp_path / "missing")]) == 2
    assert "no such model directory, preset or Hub name" in capsys.readouterr().err
    assert main(["model", "info", "gpt2-small", "--context", "0"]) == 2
    assert "--context-length and --batch-size must be at least 1" in capsys.readouterr().err
    (tmp_path / "config.json").write_text('{"model_type": "mixtral"}')
    assert main(["model", "info", str(tmp_path)]) == 2
    assert "model_type 'mixtral' is not supported" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name",
    [
        "qwen3-0.6b",
        "qwen2.5-0.5b",
        "qwen3-small",
        "tiny",
        "gemma3-270m",
        "gemma3-1b",
        "gemma3-small",
        "olmo3-small",
    ],
)
def test_every_family_preset_describes_itself(capsys, name):
    from scratchlm.config import preset
    from scratchlm.model.sizing import parameter_count

    assert f"parameters   {parameter_count(preset(name)):,} (" in info(capsys, name)


def diff(capsys, *args: str) -> str:
    assert main(["model", "diff", *args]) == 0
    return capsys.readouterr().out


def test_diff_names_what_really_differs_with_both_sizes(capsys):
    out = diff(capsys, "gemma3-1b", "llama3.2-1b")
    assert "norm            A: RMSNorm, gain 1 + w (eps 1e-06), before and after each sublayer" in out
    assert "                B: RMSNorm (eps 1e-05), before each sublayer" in out
    assert "A: window 512 on 22 of 26 layers (SSSSSFSSSSSFSSSSSFSSSSSFSS)" in out and "B: full" in out
    assert "MLP             A: GeGLU, 6,912 wide" in out and "B: SwiGLU, 8,192 wide" in out
    assert "same            soft-caps, biases" in out
    assert "A: 999,885,952 parameters" in out and "B: 1,235,814,400 parameters" in out
    assert "416.0 MiB of KV cache at 8,192 tokens" in out and "512.0 MiB of KV cache" in out
    out = diff(capsys, "olmo3-small", "qwen3-small", "--context", "256")
    assert "A: after each sublayer (post-norm)" in out.replace("RMSNorm (eps 1e-06), ", "")
    assert "QK-norm         A: whole projections" in out and "B: per head" in out
    assert "size" not in out.split("same")[0]  # the same shape: only the choices differ


def test_diff_of_the_same_architecture_and_of_a_directory(capsys, tmp_path):
    assert "the same architecture and size" in diff(capsys, "qwen3-small", "qwen3-small")
    save_model(tiny_gpt(vocab_size=50257), tmp_path / "m")
    out = diff(capsys, str(tmp_path / "m"), "gpt2-small")
    assert "size            A: 2 layers x 32, vocabulary 50,257" in out and "B: 12 layers x 768" in out
    assert "positions" in out  # 32 learned positions against 1,024
    assert main(["model", "diff", "gpt2-small", str(tmp_path / "missing")]) == 2
    assert "no such model directory, preset or Hub name" in capsys.readouterr().err
