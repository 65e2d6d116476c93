"""Channels consumers serving the OpenAI-compatible /v1/ API."""
