"""`scratchlm demo --tour`: the tokenizer and model basics in seconds (the book's stages 1-5) on the
standard library's source code or tiny Shakespeare: a BPE trained from scratch, its compression against
GPT-2's on held-out text, token boundaries, special tokens, the word tokenizer, then windows and an untrained
tiny GPT's loss."""

from __future__ import annotations

import time
from pathlib import Path

from scratchlm.data.corpora import data_file, stdlib_files
from scratchlm.errors import ScratchLMError
from scratchlm.formats.tokenizer_files import save_tokenizer
from scratchlm.tokenizer import EOT, Tokenizer, WordTokenizer, train_bpe
from scratchlm.tokenizer.display import render_tokens, token_text
from scratchlm.tokenizer.stats import measure
from scratchlm.tokenizer.train import available_core

SAMPLE = "Tokenizers split naïve café text, the year 2024 and 🤖 emoji into ids."


def _read(paths: list[Path]) -> list[str]:
    return [p.read_text(encoding="utf-8") for p in paths]


def tour(out: Path, vocab_size: int = 4096, data_dir: str | None = None, max_mb: float = 8.0) -> None:
    """The tokenizer and model basics, in seconds, printed; the trained BPE is saved in out/tokenizer."""
    if data_dir:
        text = data_file(data_dir, "tinyshakespeare.txt").read_text(encoding="utf-8")
        cut = int(len(text) * 0.9)
        train_texts, held_out = [text[:cut]], [text[cut:]]
        source = f"tiny Shakespeare from {data_dir} (90% train / 10% held out)"
    else:
        if max_mb <= 0:
            raise ScratchLMError("--max-mb must be positive")
        train_files = stdlib_files(int(max_mb * 1e6))
        try:
            held_files = stdlib_files(1_000_000, skip_bytes=sum(p.stat().st_size for p in train_files))
        except ScratchLMError:  # --max-mb took the whole library: hold out its last tenth instead
            cut = max(1, len(train_files) // 10)
            train_files, held_files = train_files[:-cut], train_files[-cut:]
        train_texts, held_out = _read(train_files), _read(held_files)
        source = (
            f"the Python standard library's sources "
            f"({len(train_files)} files train, {len(held_files)} held out)"
        )

    n_bytes = sum(len(t.encode()) for t in train_texts)
    print(f"== 1. Train a byte-level BPE tokenizer from scratch\ncorpus: {source}, {n_bytes / 1e6:.1f} MB")
    start = time.perf_counter()
    tok = train_bpe(train_texts, vocab_size, pattern="gpt4", show_progress=True, name="demo")
    seconds = time.perf_counter() - start
    out = Path(out) / "tokenizer"
    save_tokenizer(tok, out)
    print(f"trained {tok.vocab_size:,} tokens in {seconds:.1f} s ({available_core()} merge core) -> {out}/")
    longest = sorted((t for t in tok.ranks if t.strip()), key=len, reverse=True)[:5]
    print("longest tokens learned: " + ", ".join(repr(t.decode("utf-8", "replace")) for t in longest))

    print("\n== 2. Compression on held-out text (bytes per token, higher is better)")
    gpt2 = Tokenizer.gpt2()
    for name, t in (("ours", tok), ("GPT-2", gpt2)):
        s = measure(t, held_out, encode=t.encode_ordinary)
        print(
            f"{name:6} {t.vocab_size:>6,} tokens: {s.bytes_per_token:.2f} bytes/token, {s.n_tokens:,} tokens"
        )
    exact = all(tok.decode(tok.encode_ordinary(t)) == t for t in held_out)
    print(f"round trip decode(encode(text)) == text on held-out text: {exact}")

    print("\n== 3. Token boundaries")
    for name, t in (("ours", tok), ("GPT-2", gpt2)):
        ids = t.encode(SAMPLE)
        print(f"{name} ({len(ids)} tokens):")
        print(render_tokens([token_text(t, i) for i in ids], ids, color=False, width=100))

    print("\n== 4. Special tokens cannot be injected by user text")
    risky = f"ignore this {EOT} and go on"
    try:
        tok.encode(risky)
    except ScratchLMError as exc:
        print(f"encode({risky!r}) refused: {exc}")
    print(
        f"as plain text: {len(tok.encode_ordinary(risky))} ordinary tokens; allowed: "
        f"{tok.encode(risky, allowed_special={EOT})}"
    )

    print("\n== 5. The simple word tokenizer")
    words = WordTokenizer.build(train_texts)
    sentence = "Return the value of the attribute, or raise an error. Quokkas do not."
    ids = words.encode(sentence)
    print(f"{words.vocab_size:,} words; {sentence!r} -> {ids} -> {words.decode(ids)!r}")

    _model_stages(tok, held_out[0])

    print(
        f'\nNext: scratchlm tokenizer show -t {out} "your text"\n'
        f"      scratchlm tokenizer stats -t {out} -i FILE"
    )


def _model_stages(tok: Tokenizer, text: str) -> None:
    """Stages 2-5 on the trained tokenizer: windows, a tiny GPT, its loss and output before training."""
    import math

    import torch
    import torch.nn.functional as F

    from scratchlm.config import tiny
    from scratchlm.data.windows import make_windows
    from scratchlm.generate import generate
    from scratchlm.model import GPT
    from scratchlm.model.sizing import parameter_count

    print("\n== 6. Windows, a tiny GPT, and its loss before any training")
    ids = tok.encode_ordinary(text[:20_000])
    inputs, targets = make_windows(ids, context_length=32, stride=32)
    print(f"{len(ids):,} held-out tokens -> {len(inputs)} windows of 32 (targets = inputs shifted by one)")
    print(f"  input : {tok.decode(inputs[0, :12].tolist())!r}...")
    print(f"  target: {tok.decode(targets[0, :12].tolist())!r}...")
    torch.manual_seed(0)
    cfg = tiny(vocab_size=tok.vocab_size)
    model = GPT(cfg).eval()
    with torch.no_grad():
        logits = model(inputs[:16])
        loss = F.cross_entropy(logits.flatten(0, 1), targets[:16].flatten()).item()
    print(
        f"tiny GPT ({parameter_count(cfg):,} parameters): loss {loss:.3f} at initialisation, "
        f"ln(vocab) = {math.log(tok.vocab_size):.3f} (a uniform guess)"
    )
    prompt = tok.encode_ordinary("def ")
    out = generate(model, torch.tensor([prompt]), max_new_tokens=12)
    continuation = tok.decode(out[0, len(prompt) :].tolist())
    print(f"untrained greedy continuation of 'def ': {continuation!r} (stage 6 trains it)")
