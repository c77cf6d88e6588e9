"""The whole pipeline in one call, on data every machine with Python has (`scratchlm demo`).

Stages (the table in `stages.py`), each writing under `out/` and reusing what an earlier run left there:

1. `tokenize`: a byte-level BPE trained on the interpreter's language reference and the standard library's
   docstrings (`scratchlm.data.stdlib`), a tokenized sample shown.
2. `pretrain`: a small GPT pretrained on that text for its share of the time budget (the step time is
   measured first, so the cosine schedule fits the budget), samples shown as they improved.
3. `classify`: the pretrained GPT fine-tuned to tell which area of the standard library a docstring comes
   from, tested on modules it never saw; accuracy and the confusion matrix.
4. `instruct`: LoRA instruction tuning on "What does `json.dumps` do?" → the docstring's first sentence,
   tested on held-out functions: response perplexity before and after, ROUGE-L, exact match.
5. `chat`: a short chat with the result in a terminal (else a few held-out questions answered), and the
   command that serves it.

Files: `config.py` (DemoConfig and the preset: model, recipes, budget shares), `corpus.py` (the text),
`stages.py` (the stages, their result types, the table), `run.py` (run_demo), `report.py` (report.md/html
from demo.json), `tour.py` (`scratchlm demo --tour`: the tokenizer and model basics in seconds).
"""

from scratchlm.demo.config import DemoConfig
from scratchlm.demo.run import run_demo

__all__ = ["DemoConfig", "run_demo"]
