"""Serving a model: the continuous-batching engine, a chat session on it, and the
OpenAI-compatible HTTP server."""
