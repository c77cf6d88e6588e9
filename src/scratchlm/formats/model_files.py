"""A model directory: find, load and save a GPT with its tokenizer, in our format or Hugging Face's.

Ours: `config.json` ({"format": "scratchlm-gpt", "version": 1, "model": ModelConfig}) + `model.safetensors`
(our tensor names) + the tokenizer files. A spec is a directory of either kind, a run directory of
`scratchlm pretrain` (its best checkpoint), or a Hub name ("gpt2", "gpt2-medium", "org/repo") downloaded
on first use.

A classifier directory is ours with `"format": "scratchlm-classifier"`: the GPT with a class head
(`out_head`: emb_dim → number of labels, with a bias), plus `labels` and `max_length` in config.json.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import save_file

from scratchlm.config import ModelConfig, from_dict
from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json, write_json
from scratchlm.formats.tokenizer_files import AnyTokenizer, has_tokenizer, load_tokenizer, save_tokenizer
from scratchlm.interop import hf, hf_llama
from scratchlm.interop.hf_tokenizer import TOKENIZER_JSON, HFTokenizer
from scratchlm.interop.hub import GPT2_REPOS, fetch_model
from scratchlm.model.gpt import GPT
from scratchlm.model.heads import add_classifier_head
from scratchlm.tokenizer import Tokenizer

FORMAT = "scratchlm-gpt"
CLASSIFIER_FORMAT = "scratchlm-classifier"
# The weight dtypes a model loads in (`--dtype`): the short names the training precisions use, and torch's.
WEIGHT_DTYPES = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
}


def weight_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """torch's dtype for a `--dtype` name (None: fp32); anything else is a named error."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype) and dtype in WEIGHT_DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in WEIGHT_DTYPES:
        return WEIGHT_DTYPES[dtype]
    raise ScratchLMError(f"dtype {dtype!r}: expected fp32, bf16 or fp16")


def cast_model(model: GPT, dtype: torch.dtype) -> GPT:
    """The model's weights in `dtype`, its rotary frequencies kept in fp32 (as `transformers` keeps them:
    rounded to bf16, positions past a few hundred would turn by visibly wrong angles)."""
    if dtype == torch.float32 and all(p.dtype == dtype for p in model.parameters()):
        return model
    model.to(dtype)
    model.reset_rope()
    return model


def save_model(model: GPT, directory: str | os.PathLike, tokenizer: AnyTokenizer | None = None) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if model.cfg.tie_embeddings:
        sd.pop("out_head.weight")  # the same tensor as the token embedding; safetensors stores it once
    tmp = directory / "model.safetensors.tmp"
    save_file(sd, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, directory / "model.safetensors")
    write_json(directory / "config.json", {"format": FORMAT, "version": 1, "model": model.cfg.to_dict()})
    if tokenizer is not None:
        save_tokenizer(tokenizer, directory)
    return directory


HF_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
)


def export_hf(model: GPT, directory: str | os.PathLike, tokenizer: AnyTokenizer | None = None) -> Path:
    """`model` and its tokenizer as a Hugging Face directory that transformers loads unchanged, in GPT-2's
    format or the model's family's (`scratchlm.interop.hf_export`). A tokenizer loaded from a Hugging Face
    directory is copied as it was (with its chat template); one trained here is written as tokenizer.json
    (and our own files)."""
    from scratchlm.interop.hf_export import save_hf

    eos_id, bos_id = getattr(tokenizer, "eot_id", None), None
    if isinstance(tokenizer, HFTokenizer):
        bos_id = tokenizer.token_id(tokenizer.config.get("bos_token"))
    directory = save_hf(model, directory, eos_id=eos_id, bos_id=bos_id)
    if isinstance(tokenizer, (HFTokenizer, Tokenizer)):
        save_tokenizer(tokenizer, directory)
    return directory


def _is_hub_name(spec: str | os.PathLike) -> bool:
    """A name to fetch from the Hub (gpt2, org/name) rather than a local path."""
    text = str(spec)
    return text in GPT2_REPOS or ("/" in text and not text.startswith((".", "/")))


def load_model(
    spec: str | os.PathLike, dtype: str | torch.dtype | None = None
) -> tuple[GPT, AnyTokenizer | None]:
    """(model in eval mode on the CPU, its tokenizer or None) from a directory or a Hub name, its weights
    in `dtype` ("fp32" by default, "bf16" or "fp16"; a Llama-family file is converted tensor by tensor as it
    is read, so bf16 needs about half an fp32 file's size of memory)."""
    dtype = weight_dtype(dtype)
    model, tokenizer = _load_model(spec, dtype)
    return cast_model(model, dtype), tokenizer


def _load_model(spec: str | os.PathLike, dtype: torch.dtype) -> tuple[GPT, AnyTokenizer | None]:
    path = Path(spec)
    if not path.exists():
        if _is_hub_name(spec):
            path = fetch_model(str(spec))
        else:
            raise ScratchLMError(f"{spec}: no such model directory (or a Hub name such as 'gpt2')")
    if not path.is_dir():
        raise ScratchLMError(f"{path}: a model is a directory with config.json and weights")
    run_kind = _run_kind(path)
    if run_kind in ("classify", "instruct"):  # a fine-tune's run directory: its result is model/
        if not (path / "model").is_dir():
            raise ScratchLMError(f"{path}: an unfinished {run_kind} run (no model/ yet): --resume it first")
        path = path / "model"
    elif (path / "checkpoints").is_dir():
        return _load_run(path)
    if classifier_dir(path) is not None:
        raise ScratchLMError(
            f"{path}: a classifier, not a language model: use `scratchlm classify` (or load_classifier)"
        )
    config = read_json(path / "config.json")
    if config.get("format") == FORMAT:
        if config.get("version") != 1:
            raise ScratchLMError(f"{path}: model format version {config.get('version')} is not supported")
        cfg = from_dict(ModelConfig, config["model"])
        model = GPT(cfg, init=False)
        sd = hf.load_safetensors(path / "model.safetensors")
        if cfg.tie_embeddings and "emb.tok_emb.weight" in sd:
            sd["out_head.weight"] = sd["emb.tok_emb.weight"]
        hf.load_exact(model, sd, path)
        model.eval()
    elif config.get("model_type") in hf_llama.MODEL_TYPES:
        # Their tokenizers are formats our BPE does not cover: the tokenizers library runs tokenizer.json.
        model = hf_llama.load_hf_llama(path, dtype)
        tokenizer = HFTokenizer(path) if (path / TOKENIZER_JSON).is_file() else None
        if tokenizer is not None and tokenizer.vocab_size > model.cfg.vocab_size:
            raise ScratchLMError(
                f"{path}: the tokenizer has {tokenizer.vocab_size:,} tokens, the model's embedding "
                f"{model.cfg.vocab_size:,}"
            )
        return model, tokenizer
    else:
        model = hf.load_hf_gpt2(path)
    return model, _find_tokenizer(path, model.cfg)


def save_classifier(
    model: GPT,
    directory: str | os.PathLike,
    tokenizer: AnyTokenizer,
    labels: list[str],
    max_length: int,
    **info,
) -> Path:
    """Write a classifier directory: all weights (the head untied), config.json with the labels (in class
    id order) and the max length, and the tokenizer. `info` (e.g. the base model) goes into config.json."""
    if any(".lora_" in name for name in model.state_dict()):
        raise ScratchLMError("save_classifier: merge the LoRA layers first (merge_lora(model, unload=True))")
    if model.out_head.out_features != len(labels) or model.cfg.tie_embeddings:
        raise ScratchLMError(
            f"save_classifier: the head has {model.out_head.out_features} outputs for {len(labels)} labels "
            "(or is still tied): add the head with scratchlm.model.heads.add_classifier_head"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = directory / "model.safetensors.tmp"
    save_file(sd, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, directory / "model.safetensors")
    save_tokenizer(tokenizer, directory)
    write_json(
        directory / "config.json",
        {
            "format": CLASSIFIER_FORMAT,
            "version": 1,
            "model": model.cfg.to_dict(),
            "labels": list(labels),
            "max_length": max_length,
            **info,
        },
    )
    return directory


def load_classifier(spec: str | os.PathLike) -> tuple[GPT, AnyTokenizer, dict]:
    """(classifier in eval mode on the CPU, tokenizer, its config.json) from a classifier directory or the
    run directory of `scratchlm finetune classify` (its `model/`). config["labels"] names the classes in
    id order; config["max_length"] is the truncation length it was trained with."""
    path = Path(spec)
    if not path.is_dir():
        raise ScratchLMError(f"{spec}: no such classifier directory")
    found = classifier_dir(path)
    if found is None:
        raise ScratchLMError(f"{path}: not a classifier (train one with `scratchlm finetune classify`)")
    path = found
    config = read_json(path / "config.json")
    if config.get("version") != 1:
        raise ScratchLMError(f"{path}: classifier format version {config.get('version')} is not supported")
    labels = config.get("labels")
    if not isinstance(labels, list) or len(labels) < 2 or not isinstance(config.get("model"), dict):
        raise ScratchLMError(f"{path}/config.json: needs 'model' settings and at least two 'labels'")
    cfg = from_dict(ModelConfig, config["model"])
    model = add_classifier_head(GPT(cfg, init=False), len(labels))
    hf.load_exact(model, hf.load_safetensors(path / "model.safetensors"), path)
    model.eval()
    if not has_tokenizer(path):
        raise ScratchLMError(f"{path}: no tokenizer files beside the classifier")
    return model, load_tokenizer(path), config


def load_config(spec: str | os.PathLike) -> ModelConfig:
    """The ModelConfig of a model directory, run directory, classifier or Hub name, from its config.json
    alone (no weights are read; a Hub name downloads config.json only)."""
    from scratchlm.interop.hub import download

    path = Path(spec)
    if not path.exists():
        if _is_hub_name(spec):
            config_path = download(GPT2_REPOS.get(str(spec), str(spec)), "config.json")
            assert config_path is not None
            path = config_path.parent
        else:
            raise ScratchLMError(f"{spec}: no such model directory, preset or Hub name")
    if path.is_dir() and not (path / "config.json").is_file() and (path / "model" / "config.json").is_file():
        path = path / "model"  # a fine-tune's run directory
    config = read_json(path / "config.json")
    if not isinstance(config, dict):
        raise ScratchLMError(f"{path}/config.json: not a model config")
    if isinstance(config.get("model"), dict):  # ours: a model, classifier or run directory
        return from_dict(ModelConfig, config["model"])
    if config.get("model_type") in hf_llama.MODEL_TYPES:
        return hf_llama.config_from_hf_llama(config)
    return hf.config_from_hf(config)


def classifier_dir(path: Path) -> Path | None:
    """The classifier directory at `path` or in its `model/` (a fine-tuning run directory), else None."""
    for candidate in (path, path / "model"):
        config = candidate / "config.json"
        if config.is_file():
            data = read_json(config)
            if isinstance(data, dict) and data.get("format") == CLASSIFIER_FORMAT:
                return candidate
    return None


def _run_kind(path: Path) -> str | None:
    """The `kind` a run directory's config.json names (None for anything else)."""
    config = read_json(path / "config.json") if (path / "config.json").is_file() else None
    return config.get("kind") if isinstance(config, dict) and "train" in config else None


def _load_run(path: Path) -> tuple[GPT, AnyTokenizer | None]:
    """A `scratchlm pretrain` (or fine-tune) run directory: its best checkpoint (else its latest)."""
    from scratchlm.formats.checkpoint import best_checkpoint, load_weights

    checkpoint = best_checkpoint(path)
    if checkpoint is None:
        raise ScratchLMError(f"{path}: a run directory without a complete checkpoint")
    saved = read_json(path / "config.json")
    cfg = from_dict(ModelConfig, saved["model"])
    model = GPT(cfg, init=False)
    if saved.get("lora"):  # trained with LoRA: load base + adapter as trained, then fold the adapter in
        from scratchlm.config import LoRAConfig
        from scratchlm.model.lora import apply_lora, merge_lora

        apply_lora(model, from_dict(LoRAConfig, saved["lora"]))
        load_weights(checkpoint, model)
        merge_lora(model, unload=True)
    else:
        load_weights(checkpoint, model)
    model.eval()
    tokenizer = load_tokenizer(path / "tokenizer") if has_tokenizer(path / "tokenizer") else None
    return model, tokenizer or _find_tokenizer(path, cfg)


def _find_tokenizer(path: Path, cfg: ModelConfig) -> AnyTokenizer | None:
    if has_tokenizer(path):
        return load_tokenizer(path)
    if cfg.vocab_size == 50257:  # GPT-2's vocabulary size: its tokenizer ships with the package
        return Tokenizer.gpt2()
    return None
