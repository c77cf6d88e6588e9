"""scratchlm: GPT-style language models built from scratch, end to end.

The package import stays light (no torch): tokenizer work and worker processes start fast.
"""

from scratchlm.errors import ScratchLMError
from scratchlm.tokenizer import Tokenizer, WordTokenizer, train_bpe

__all__ = ["ScratchLMError", "Tokenizer", "WordTokenizer", "train_bpe"]
__version__ = "0.1.0"
