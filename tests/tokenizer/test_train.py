"""`train_bpe`: exact vocabulary sizes, determinism, every input path agrees, clear errors, and quality
equal to HF `tokenizers` trained on the same documents."""

from __future__ import annotations

import pytest

from scratchlm.errors import ScratchLMError
from scratchlm.tokenizer import EOT, GPT4_PATTERN, corpus, train_bpe
from scratchlm.tokenizer.pretokenize import count_chunks
from scratchlm.tokenizer.train import available_core


def test_vocab_size_counts_bytes_merges_and_specials(stdlib_text):
    tok = train_bpe(stdlib_text[:100_000], 300, special_tokens=[EOT, "<|pad|>"])
    assert tok.vocab_size == 300
    assert len(tok.ranks) == 298
    assert tok.special_tokens == {EOT: 298, "<|pad|>": 299}
    assert tok.pattern == GPT4_PATTERN


def test_training_is_deterministic_and_learns_frequent_words(stdlib_text):
    a = train_bpe(stdlib_text, 700)
    b = train_bpe(stdlib_text, 700)
    assert a.ranks == b.ranks
    assert {b" the", b" self", b" return"} <= set(a.ranks)


@pytest.mark.skipif(available_core() != "c", reason="the C core is not built")
def test_c_and_python_cores_learn_the_same_tokenizer(stdlib_text):
    c = train_bpe(stdlib_text, 900, core="c")
    py = train_bpe(stdlib_text, 900, core="python")
    assert c.ranks == py.ranks


def test_files_texts_blocks_and_workers_agree(tmp_path, stdlib_text, monkeypatch):
    path = tmp_path / "corpus.txt"
    path.write_text(stdlib_text, encoding="utf-8")
    from_text = train_bpe(stdlib_text, 600)
    # Force tiny blocks and the process pool, so cutting and merging of counts are exercised.
    monkeypatch.setattr(corpus, "PARALLEL_MIN_BYTES", 0)
    from_files = train_bpe(files=[path], vocab_size=600, workers=2)
    counted = corpus.count_chunks_in_files([path], GPT4_PATTERN, workers=2, block_bytes=4096)
    assert counted == count_chunks([stdlib_text], GPT4_PATTERN)
    assert from_files.ranks == from_text.ranks


def test_special_token_text_in_the_corpus_is_never_merged():
    corpus = f"hello{EOT}world {EOT} " * 200
    tok = train_bpe(corpus, 300, special_tokens=[EOT], min_frequency=1)
    assert not any(b"|>" in t or b"<|" in t for t in tok.ranks)
    assert tok.encode(corpus, allowed_special="all").count(tok.eot_id) == 400


def test_stops_early_when_pairs_run_out():
    tok = train_bpe("abcabc", 1000, special_tokens=[])
    assert tok.vocab_size < 1000
    assert tok.encode("abc") == [tok.ranks[b"abc"]]


def test_custom_pattern():
    tok = train_bpe("aaa bbb aaa bbb " * 50, 260, pattern=r"\S+|\s+", special_tokens=[])
    assert b"aaa" in tok.ranks and tok.decode(tok.encode("aaa bbb")) == "aaa bbb"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"texts": "", "vocab_size": 300}, "corpus is empty"),
        ({"texts": [], "vocab_size": 300}, "corpus is empty"),
        ({"texts": "abc", "vocab_size": 256}, "too small"),
        ({"texts": "abc", "vocab_size": 300, "pattern": "(unclosed"}, "invalid split pattern"),
        ({"vocab_size": 300}, "nothing to train on"),
        ({"files": ["/no/such/file.txt"], "vocab_size": 300}, "no such file"),
        ({"texts": "abc", "vocab_size": 300, "core": "fortran"}, "unknown BPE core"),
    ],
)
def test_bad_input_gives_one_clear_error(kwargs, message):
    with pytest.raises(ScratchLMError, match=message):
        train_bpe(**kwargs)


def test_bad_files(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ScratchLMError, match=r"latin1.txt: not valid UTF-8 \(byte offset 3\)"):
        train_bpe(files=[tmp_path / "latin1.txt"], vocab_size=300)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ScratchLMError, match="corpus is empty"):
        train_bpe(files=[tmp_path / "empty.txt"], vocab_size=300)
    (tmp_path / "nodir").mkdir()
    with pytest.raises(ScratchLMError, match="holds no text files"):
        train_bpe(files=[tmp_path / "nodir"], vocab_size=300)
    with pytest.raises(ScratchLMError, match="matches no file"):
        train_bpe(files=[str(tmp_path / "*.nothing")], vocab_size=300)


def test_quality_equals_hf_tokenizers_on_the_same_documents(stdlib_text):
    """Same vocab size, split and byte alphabet: bytes/token on held-out text within 1% of HF's BPE."""
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers, trainers

    train, held_out = stdlib_text[:450_000], stdlib_text[450_000:]
    ours = train_bpe(train, 1024, pattern="gpt2", special_tokens=[EOT])
    hf = tokenizers.Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=1024,
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[EOT],
        show_progress=False,
    )
    hf.train_from_iterator(list(corpus.iter_text_blocks(train, 1 << 16)), trainer)
    n_bytes = len(held_out.encode())
    ours_bpt = n_bytes / len(ours.encode_ordinary(held_out))
    hf_bpt = n_bytes / len(hf.encode(held_out).ids)
    assert abs(ours_bpt / hf_bpt - 1) < 0.01, (ours_bpt, hf_bpt)
