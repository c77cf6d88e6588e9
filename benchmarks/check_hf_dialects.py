"""Does transformers 4 read scratchlm's exports as transformers 5 does? `scratchlm export` writes config.json
in both dialects; the test suite checks each half with the transformers installed (5). This script checks the
other reader: every family is built here (scratchlm presets at a tiny size, random weights, norms moved off
their starting gain), exported, and loaded by transformers 4 in a separate process; its logits are compared
with scratchlm's.

    pip install --target /tmp/t4 --no-deps transformers==4.57.1 huggingface_hub==0.36.0 tokenizers==0.22.1
    python -m benchmarks.check_hf_dialects --transformers4 /tmp/t4

Prints one row per family: the model_type written, transformers 4's max |Δ logits| against scratchlm.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from benchmarks.common import print_table
from scratchlm.config import preset
from scratchlm.formats.model_files import export_hf
from scratchlm.model import GPT

SMALL = {"n_layers": 6, "emb_dim": 32, "n_heads": 4, "ff_dim": 48, "vocab_size": 101, "context_length": 64}
CASES = {  # preset -> overrides beyond SMALL (windows shorter than the 40-token prompt)
    "llama-small": {"rope_type": "llama3", "rope_factor": 8.0, "rope_original_context": 16},
    "qwen2-small": {},
    "qwen3-small": {"rope_type": "linear", "rope_factor": 2.0},
    "gemma3-small": {"sliding_window": 8, "rope_type": "linear", "rope_factor": 2.0},
    "olmo3-small": {"sliding_window": 8, "rope_theta": 500_000.0},
    # Olmo 3's long-context recipe: yarn on the full layers, the sliding ones unscaled at the same base
    "olmo3-small+yarn": {"sliding_window": 8, "rope_theta": 500_000.0, "rope_local_theta": 500_000.0,
                         "rope_type": "yarn", "rope_factor": 4.0, "rope_original_context": 16,
                         "rope_attention_factor": 1.1386},
    "qwen3-small+yarn": {"rope_type": "yarn", "rope_factor": 4.0, "rope_original_context": 16,
                         "rope_attention_factor": 1.1386},
}  # fmt: skip

READ = """
import json, sys, torch, transformers
from transformers import AutoModelForCausalLM
results = {}
for directory in sys.argv[1:]:
    model = AutoModelForCausalLM.from_pretrained(directory).eval()
    x = torch.load(directory + "/x.pt")
    with torch.no_grad():
        logits = model(x).logits
    expected = torch.load(directory + "/logits.pt")
    results[directory] = {"delta": (logits - expected).abs().max().item(),
                          "version": transformers.__version__, "class": type(model).__name__}
print(json.dumps(results))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--transformers4", required=True, help="a directory holding transformers 4 (pip --target)"
    )
    args = parser.parse_args()
    x = torch.randint(0, 101, (2, 40), generator=torch.Generator().manual_seed(7))
    with tempfile.TemporaryDirectory() as tmp:
        directories = {}
        for name, overrides in CASES.items():
            torch.manual_seed(0)
            model = GPT(preset(name.split("+")[0], **{**SMALL, **overrides})).eval()
            with torch.no_grad():
                for param_name, p in model.named_parameters():
                    if "norm" in param_name:
                        p.uniform_(0.5, 1.5)
            directory = Path(tmp) / name
            export_hf(model, directory)
            torch.save(x, directory / "x.pt")
            with torch.no_grad():
                torch.save(model(x), directory / "logits.pt")
            directories[name] = str(directory)
        env = {**os.environ, "PYTHONPATH": args.transformers4}
        out = subprocess.run(
            [sys.executable, "-c", READ, *directories.values()], env=env, capture_output=True, text=True
        )
        if out.returncode:
            sys.exit(f"transformers 4 failed:\n{out.stderr[-3000:]}")
        results = json.loads(out.stdout.strip().splitlines()[-1])
        rows = [["preset", "model_type", "transformers", "class", "max |Δ logits|"]]
        for name, directory in directories.items():
            result = results[directory]
            model_type = json.loads((Path(directory) / "config.json").read_text())["model_type"]
            rows.append([name, model_type, result["version"], result["class"], f"{result['delta']:.2e}"])
    print_table("scratchlm exports read by transformers 4", rows, "40-token prompts, fp32, random weights")


if __name__ == "__main__":
    main()
