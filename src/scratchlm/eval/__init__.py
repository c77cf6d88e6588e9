"""Stage 9: evaluation. Metrics over model outputs (perplexity of references, exact match, ROUGE-L) and an
LLM judge over any OpenAI-compatible endpoint."""
