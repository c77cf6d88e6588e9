"""Classifier inference: batched prediction gives each text the logits it gets alone, in the input order.
(`Classifier` on a trained directory is tested end to end in tests/finetune/test_classify.py.)"""

from __future__ import annotations

import torch

from scratchlm.config import tiny
from scratchlm.generate.classifier import predict_logits
from scratchlm.model import GPT
from scratchlm.model.heads import add_classifier_head


def test_predict_logits_keeps_the_input_order():
    torch.manual_seed(0)
    cfg = tiny(vocab_size=100, context_length=32, emb_dim=32, n_heads=2, n_layers=2, dropout=0.0)
    model = add_classifier_head(GPT(cfg), 2).eval()
    rows = [[1, 2, 3, 4, 5], [6], [7, 8], [9, 10, 11]]
    with torch.no_grad():
        expected = torch.stack([model(torch.tensor([r]))[0, -1] for r in rows])
    got = predict_logits(model, rows, pad_id=0, device="cpu", batch_size=3)
    assert torch.allclose(got, expected, atol=1e-5)
