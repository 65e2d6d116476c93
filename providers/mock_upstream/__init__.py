"""Bundled fake LLM provider (OpenAI, Anthropic, Ollama) for tests and ``make run``."""

from __future__ import annotations

from providers.mock_upstream.server import create_app, start_mock

__all__ = ["create_app", "start_mock"]
