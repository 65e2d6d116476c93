"""Peer benchmark: this gateway against Portkey's OSS gateway and LiteLLM's proxy (``make bench-peers``).

See docs/benchmarks.md (section "Peers") for the method and the latest results.
"""
