"""Stage 1: text to ids. Word tokenizer, byte-level BPE trained from scratch, GPT-2's pretrained BPE."""

from scratchlm.tokenizer.pretokenize import GPT2_PATTERN, GPT4_PATTERN, PATTERNS
from scratchlm.tokenizer.tokenizer import EOT, DisallowedSpecialTokenError, StreamDecoder, Tokenizer
from scratchlm.tokenizer.train import train_bpe
from scratchlm.tokenizer.word import WordTokenizer

__all__ = [
    "EOT",
    "GPT2_PATTERN",
    "GPT4_PATTERN",
    "PATTERNS",
    "DisallowedSpecialTokenError",
    "StreamDecoder",
    "Tokenizer",
    "WordTokenizer",
    "train_bpe",
]
