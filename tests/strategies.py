"""Texts that stress tokenizers: a fixed sample and hypothesis strategies."""

from __future__ import annotations

from hypothesis import strategies as st

# Varied text written for the tests: prose, code, numbers, whitespace runs, unicode, a contraction.
SAMPLE_TEXT = """The quick brown fox doesn't jump; it'll wait.   Numbers: 3.14159, 2024-11-30, 1234567890.
def tokenize(text: str) -> list[int]:
    \"\"\"Return ids.\"\"\"\t# tab
    return [ord(c) for c in text]\r\n
naïve café — «quotes» 日本語のテキスト 한국어 Ελληνικά русский 🤖🎉👍🏽 e\u0301 \u00a0nbsp\u2028sep
        trailing spaces    \n\n\n"""

FRAGMENTS = [
    "🤖",
    "👍🏽",
    "👨‍👩‍👧",
    "🎉",
    "日本語",
    "中文字符",
    "한국어",
    "e\u0301",
    "a\u0308\u0323",
    "\u200d",
    "\ufeff",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\n\n\n",
    "    ",
    " " * 40,
    "\u00a0",
    "\u2028",
    "\u3000",
    "0",
    "123",
    "1234567",
    "3.14",
    "'s",
    "'ll",
    "'VE",
    "don't",
    "\x00",
    "\x07",
    "\x1b[0m",
    "\x7f",
    "<|",
    "|>",
    "endoftext",
    "!!!",
    "...",
    "--",
    "λ",
    "Ω",
    "ß",
    "İ",
    "ﬁ",
]

# Mixes arbitrary unicode with fragments known to be hard. Left out: surrogates (not text). Code points that
# Python's tables do not know are in: letters newer than Unicode 16 among them split as tiktoken splits them
# (pretokenize.NEWER_LETTERS).
tricky_text = st.lists(
    st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
        st.sampled_from(FRAGMENTS),
    ),
    max_size=20,
).map("".join)
