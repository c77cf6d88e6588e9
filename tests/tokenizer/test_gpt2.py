"""GPT-2's data-gym files: checksums, the rank rule, and clear errors on broken files."""

from __future__ import annotations

import json

import pytest

from scratchlm.errors import ScratchLMError
from scratchlm.tokenizer import GPT2_PATTERN
from scratchlm.tokenizer.gpt2 import data_gym_ranks, gpt2_files, load_data_gym


def test_packaged_files_load_offline(gpt2):
    assert len(gpt2.ranks) == 50256
    assert gpt2.pattern == GPT2_PATTERN
    assert gpt2.ranks[b"!"] == 0 and gpt2.ranks[b" t"] == 256  # first merge of vocab.bpe is "Ġ t"


def test_data_gym_rank_rule_matches_encoder_json(gpt2):
    encoder_path, bpe_path = gpt2_files()
    encoder = json.loads(encoder_path.read_text(encoding="utf-8"))
    assert data_gym_ranks(bpe_path.read_text(encoding="utf-8"), encoder) == gpt2.ranks


def test_mismatched_or_broken_files(tmp_path):
    encoder_path, bpe_path = gpt2_files()
    encoder = json.loads(encoder_path.read_text(encoding="utf-8"))
    lines = bpe_path.read_text(encoding="utf-8").split("\n")
    swapped = "\n".join([lines[0], lines[2], lines[1], *lines[3:]])
    with pytest.raises(ScratchLMError, match="disagree"):
        data_gym_ranks(swapped, encoder)
    with pytest.raises(ScratchLMError, match="#version"):
        data_gym_ranks("Ġ t\n", encoder)
    with pytest.raises(ScratchLMError, match="malformed merge line"):
        data_gym_ranks("#version: 0.2\nĠtoo many parts\n", encoder)
    (tmp_path / "encoder.json").write_text("{")
    with pytest.raises(ScratchLMError, match="not a JSON file"):
        load_data_gym(tmp_path / "encoder.json", bpe_path)
    with pytest.raises(ScratchLMError, match="no such file"):
        load_data_gym(tmp_path / "missing.json", bpe_path)
