"""Stage 7: fine-tuning a pretrained GPT (LoRA, classification, instruction following). Each fine-tune is a
dataset, a loss and a call to the one training loop (`scratchlm.train.loop.train`)."""
