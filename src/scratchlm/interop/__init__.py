"""Formats other tools use: Hugging Face, tiktoken, GPT-2's original files."""
