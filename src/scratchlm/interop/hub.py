"""Downloads from the Hugging Face Hub into a local cache, with plain HTTP (no extra dependency).

`HF_ENDPOINT` changes the server (tests use one on 127.0.0.1), `HF_HUB_OFFLINE=1` forbids the network,
`SCRATCHLM_CACHE` moves the cache (default ~/.cache/scratchlm). Files land atomically: a partial download
never looks complete.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from scratchlm import files
from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json

# Short names users know -> repositories on the Hub.
GPT2_REPOS = {
    "gpt2": "openai-community/gpt2",
    "gpt2-small": "openai-community/gpt2",
    "gpt2-medium": "openai-community/gpt2-medium",
    "gpt2-large": "openai-community/gpt2-large",
    "gpt2-xl": "openai-community/gpt2-xl",
}
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",  # newer repositories keep the chat template beside tokenizer_config.json
    "generation_config.json",
)


def cache_root() -> Path:
    return Path(os.environ.get("SCRATCHLM_CACHE", Path.home() / ".cache" / "scratchlm")) / "hub"


def download(repo_id: str, filename: str, revision: str = "main", required: bool = True) -> Path | None:
    """A file of a Hub repository, from the cache or downloaded into it. None if absent and not required."""
    dest = cache_root() / repo_id.replace("/", "--") / revision / filename
    if dest.is_file():
        return dest
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        if required:
            raise ScratchLMError(
                f"{repo_id}/{filename} is not in the cache {dest.parent} and HF_HUB_OFFLINE=1"
            )
        return None
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    url = f"{endpoint}/{repo_id}/resolve/{urllib.parse.quote(revision)}/{filename}"
    try:
        return files.download(url, dest, filename, show_progress=True)
    except files.DownloadError as exc:
        if exc.status == 404 and not required:
            return None
        if exc.status is None:
            raise ScratchLMError(f"{exc} Pass a local model directory instead.") from None
        raise


def fetch_model(name: str, revision: str = "main") -> Path:
    """Download config, weights (single, sharded or legacy) and tokenizer files; return the directory."""
    repo_id = GPT2_REPOS.get(name, name)
    config = download(repo_id, "config.json", revision)
    assert config is not None
    for weights in WEIGHT_FILES:
        path = download(repo_id, weights, revision, required=False)
        if path is None:
            continue
        if weights.endswith(".index.json"):
            for shard in sorted(set(read_json(path).get("weight_map", {}).values())):
                download(repo_id, shard, revision)
        break
    else:
        raise ScratchLMError(
            f"{repo_id}: no model.safetensors, sharded index or pytorch_model.bin on the Hub"
        )
    for name_ in TOKENIZER_FILES:
        download(repo_id, name_, revision, required=False)
    return config.parent
