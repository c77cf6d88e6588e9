"""A model's own tokenizer.json and Jinja chat template: ids identical to `transformers.AutoTokenizer` on
real text and generated unicode, special tokens as ids only where markers belong, chat prompts rendered and
encoded exactly as `apply_chat_template` does; then generate and chat run a Llama-family model with them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchlm.data.jinja_template import JinjaTemplate
from scratchlm.data.templates import encode_prompt, load_template
from scratchlm.errors import ScratchLMError
from scratchlm.formats.model_files import load_model
from scratchlm.interop.hf_tokenizer import HFTokenizer
from tests.fake_hub import serve_hub
from tests.interop.test_hf_llama import save_llama

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

# SmolLM2's and Qwen's template, in their own words: ChatML with a default system message.
CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face'"
    " + '<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Llama 3's shape: a BOS written by the template, headers as special tokens, content trimmed.
LLAMA3 = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim"
    " + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
SPECIALS = {
    "chatml": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    "llama3": [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eot_id|>",
    ],
}


def corpus() -> list[str]:
    from scratchlm.data.corpora import stdlib_files

    return [p.read_text(encoding="utf-8") for p in stdlib_files(60_000)]


def build_tokenizer(directory: Path, kind: str) -> Path:
    """A byte-level BPE (Llama 3 / Qwen style: their split regex, digits 1-3 at a time) or a SentencePiece-
    style BPE with byte fallback (Llama 2 / TinyLlama style), trained with the tokenizers library and saved
    as a Hub model directory saves it, with its tokenizer_config.json and chat template."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    directory.mkdir(parents=True, exist_ok=True)
    specials = SPECIALS["llama3" if kind == "llama3" else "chatml"]
    if kind == "sentencepiece":
        tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        tok.decoder = decoders.Sequence(
            [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
        )
        alphabet = [f"<0x{b:02X}>" for b in range(256)]
        trainer = trainers.BpeTrainer(
            vocab_size=600, special_tokens=["<unk>", *specials], initial_alphabet=[]
        )
        tok.add_tokens(alphabet)
    else:
        split = (
            r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
            r"|\s*[\r\n]+|\s+(?!\S)|\s+"
        )
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(split), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=700, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        )
    tok.train_from_iterator(corpus(), trainer)
    tok.save(str(directory / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": LLAMA3 if kind == "llama3" else CHATML,
        "eos_token": "<|eot_id|>" if kind == "llama3" else "<|im_end|>",
        "bos_token": "<|begin_of_text|>" if kind == "llama3" else None,
        "unk_token": "<unk>" if kind == "sentencepiece" else None,
        "add_bos_token": False,
        "model_max_length": 128,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config))
    return directory


@pytest.fixture(scope="module", params=["bytelevel", "llama3", "sentencepiece"])
def tokenizer_dir(request, tmp_path_factory) -> Path:
    return build_tokenizer(tmp_path_factory.mktemp(request.param), request.param)


@pytest.fixture(scope="module")
def pair(tokenizer_dir):
    from transformers import AutoTokenizer

    return HFTokenizer(tokenizer_dir), AutoTokenizer.from_pretrained(str(tokenizer_dir))


REAL = [
    "def f(x):\n    return x ** 2  # naïve café 🤖",
    "  leading spaces, 12345678 digits, CRLF\r\n and tabs\t\tend",
    "The quick brown fox — «quotes» and 日本語 text.",
    "<|im_end|> typed by a user, and <|eot_id|> too",
]


def test_ids_equal_transformers_on_real_text(pair):
    ours, theirs = pair
    for text in [*REAL, corpus()[1][:5000]]:
        assert ours.encode(text) == theirs.encode(text, add_special_tokens=False)
        assert ours.decode(ours.encode(text)) == theirs.decode(theirs.encode(text, add_special_tokens=False))
    assert ours.vocab_size == len(theirs)
    assert ours.eot_id == theirs.eos_token_id


@settings(max_examples=100, deadline=None)
@given(text=st.text(st.characters(codec="utf-8"), max_size=60))
def test_ids_equal_transformers_on_generated_unicode(pair, text):
    ours, theirs = pair
    assert ours.encode(text) == theirs.encode(text, add_special_tokens=False)


def test_special_tokens_are_ids_in_encode_and_text_in_encode_ordinary(pair):
    ours, _ = pair
    marker = "<|eot_id|>" if "<|eot_id|>" in ours.special_tokens else "<|im_end|>"
    assert ours.encode(f"a{marker}b").count(ours.special_tokens[marker]) == 1
    assert ours.special_tokens[marker] not in ours.encode_ordinary(f"a{marker}b")
    assert ours.decode(ours.encode_ordinary(f"a{marker}b")) == f"a{marker}b"  # spelled out, round trip


def test_ids_past_the_vocabulary_decode_to_a_replacement_character(pair):
    """A model's embedding padded past its tokenizer can sample such an id: it has no text, and no crash."""
    ours, _ = pair
    ids = ours.encode_ordinary("ab cd")
    assert ours.decode([*ids, ours.vocab_size + 3, *ids]) == "ab cd\ufffdab cd"
    with pytest.raises(ScratchLMError, match="token id -1 is negative"):
        ours.decode([-1])


CONVERSATION = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "4."},
    {"role": "user", "content": "And 3 + 3? Ünïcode ok."},
]


@pytest.mark.parametrize("messages", [CONVERSATION, CONVERSATION[1:2], CONVERSATION[1:]])
def test_chat_prompts_equal_apply_chat_template(pair, tokenizer_dir, messages):
    ours, theirs = pair
    template = load_template(tokenizer_dir)
    assert isinstance(template, JinjaTemplate)
    text = template.generation_prompt(messages)
    assert text == theirs.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    expected = theirs.apply_chat_template(
        messages, tokenize=True, add_generation_prompt=True, return_dict=False
    )
    assert encode_prompt(ours, text, template) == list(expected)
    assert template.stop == (theirs.eos_token,)


def test_training_segments_split_out_the_replies(tokenizer_dir):
    template = load_template(tokenizer_dir)
    segments = template.segments([*CONVERSATION, {"role": "assistant", "content": "6."}])
    replies = [text for text, is_response in segments if is_response]
    assert len(replies) == 2 and replies[0].startswith("4.") and replies[1].startswith("6.")
    full = template.render(
        [*CONVERSATION, {"role": "assistant", "content": "6."}], add_generation_prompt=False
    )
    assert "".join(text for text, _ in segments) == full


def test_a_failing_or_refusing_template_is_a_clear_error():
    broken = JinjaTemplate("{% for m in messages %}{{ m.content }", {})
    with pytest.raises(ScratchLMError, match="the chat template failed"):
        broken.generation_prompt(CONVERSATION[1:2])
    strict = JinjaTemplate("{{ raise_exception('roles must alternate') }}", {})
    with pytest.raises(ScratchLMError, match="refused the conversation: roles must alternate"):
        strict.generation_prompt(CONVERSATION[1:2])


def test_an_unreadable_tokenizer_is_a_clear_error(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ScratchLMError, match="not a tokenizer the tokenizers library can read"):
        HFTokenizer(tmp_path)


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory) -> Path:
    """A random-weight Qwen2 model with a ChatML byte-level tokenizer, as a Hub directory holds them."""
    directory = tmp_path_factory.mktemp("qwen-chat")
    build_tokenizer(directory, "bytelevel")
    size = HFTokenizer(directory).vocab_size
    save_llama(directory, family="qwen2", vocab_size=size, tie_word_embeddings=True)
    return directory


def test_the_model_directory_loads_with_its_tokenizer_and_template(chat_model):
    model, tokenizer = load_model(chat_model)
    assert isinstance(tokenizer, HFTokenizer) and model.cfg.vocab_size == tokenizer.vocab_size
    assert isinstance(load_template(chat_model), JinjaTemplate)


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    code = "import sys\nfrom scratchlm.cli.main import main\nraise SystemExit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def test_generate_and_chat_use_the_models_own_template(chat_model):
    out = run_cli(
        "generate", "--model", str(chat_model), "--chat", "-p", "Hello?", "-n", "5", "-T", "1", "--seed", "1"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()  # a sampled reply, shown alone
    out = run_cli(
        "chat", "--model", str(chat_model), "--max-tokens", "4", "--seed", "1", stdin="Hi there\nAnd again\n"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("[reply cut at the token limit") == 2  # one reply per message, 4 tokens each


def test_a_served_chat_is_prompted_with_the_models_template(chat_model):
    """... and served in bf16 (`serve --dtype bf16`): the engine's weights and KV cache in bf16."""
    import openai
    from transformers import AutoTokenizer

    from scratchlm.serve.server import BackgroundServer, build_service

    service = build_service(str(chat_model), dtype="bf16")
    assert isinstance(service.template, JinjaTemplate)
    assert service.engine.model.emb.tok_emb.weight.dtype == torch.bfloat16
    messages = CONVERSATION[1:]
    expected = AutoTokenizer.from_pretrained(str(chat_model)).apply_chat_template(
        messages, tokenize=True, add_generation_prompt=True, return_dict=False
    )
    with BackgroundServer(service) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=60)
        result = client.chat.completions.create(model=service.model_name, messages=messages, max_tokens=3)
    assert result.usage.prompt_tokens == len(expected)
    assert result.usage.completion_tokens <= 3


def test_a_hub_name_downloads_the_sharded_model_tokenizer_and_template(tmp_path, monkeypatch):
    """A Hub-shaped layout on 127.0.0.1 (<org>/<repo>/resolve/main/<file>): load_model("org/name") fetches
    the index, every shard, tokenizer.json, tokenizer_config.json and chat_template.jinja."""
    repo = tmp_path / "server" / "Qwen" / "Qwen3-Tiny" / "resolve" / "main"
    build_tokenizer(repo, "bytelevel")
    config = json.loads((repo / "tokenizer_config.json").read_text())
    (repo / "chat_template.jinja").write_text(config.pop("chat_template"))
    (repo / "tokenizer_config.json").write_text(json.dumps(config))
    theirs = save_llama(
        repo, family="qwen3", shard="40KB", vocab_size=HFTokenizer(repo).vocab_size, head_dim=16
    )
    assert len(list(repo.glob("model-*.safetensors"))) > 1
    with serve_hub(tmp_path / "server", tmp_path / "cache", monkeypatch):
        model, tokenizer = load_model("Qwen/Qwen3-Tiny")
    x = torch.randint(0, 100, (1, 12))
    with torch.no_grad():
        assert (model(x) - theirs(x).logits).abs().max().item() <= 1e-5
    assert isinstance(tokenizer, HFTokenizer) and tokenizer.eot_id == tokenizer.special_tokens["<|im_end|>"]
    cached = next((tmp_path / "cache").rglob("chat_template.jinja")).parent
    assert isinstance(load_template(cached), JinjaTemplate)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert load_model("Qwen/Qwen3-Tiny")[0].cfg == model.cfg  # from the cache
