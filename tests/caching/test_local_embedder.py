"""The local embedder: fp32-faithful vectors, the token limit, and no work on the event loop."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from caching.embedders.local import DIMENSIONS, MAX_TOKENS, MiniLM

REFERENCE = Path(__file__).parent / "data" / "minilm_fp32_reference.json"


def test_vectors_match_the_fp32_model(minilm: MiniLM) -> None:
    """Reference vectors: the original fp32 weights in numpy (``bench/cache/reference.py``)."""
    reference = json.loads(REFERENCE.read_text())["vectors"]
    mine = minilm.encode(list(reference))
    for vector, (sentence, expected) in zip(mine, reference.items(), strict=True):
        assert vector is not None and len(vector) == DIMENSIONS
        assert float(np.dot(vector, expected)) >= 0.999, sentence
        assert abs(float(np.linalg.norm(vector)) - 1) < 1e-4


def test_a_batch_gives_the_same_vectors_as_one_at_a_time(minilm: MiniLM) -> None:
    texts = ["short", "a somewhat longer sentence about caching answers"]
    batch = minilm.encode(texts)
    for text, vector in zip(texts, batch, strict=True):
        assert float(np.dot(vector, minilm.embed_sync(text))) > 0.9999  # type: ignore[arg-type]


def test_texts_over_the_token_limit_are_not_embedded(minilm: MiniLM) -> None:
    assert minilm.embed_sync("word " * (MAX_TOKENS + 10)) is None
    assert minilm.embed_sync("word " * (MAX_TOKENS - 10)) is not None


async def test_embedding_runs_off_the_event_loop(minilm: MiniLM, monkeypatch: pytest.MonkeyPatch) -> None:
    """The model runs in a worker thread, never in the event loop's thread.

    Structure, not timing: the ONNX session (a third-party object) records the thread
    that calls it. How long the loop stalls is measured by ``python -m bench.embedder_loop``, not asserted here.
    """
    assert minilm.embed_sync("load the session") is not None
    session, threads = minilm._session, []

    class RecordingSession:
        def run(self, *args: object, **kwargs: object) -> object:
            threads.append(threading.get_ident())
            return session.run(*args, **kwargs)

    monkeypatch.setattr(minilm, "_session", RecordingSession())
    text = "Summarise the quarterly sales report and list the anomalies in every region " * 3
    vectors = await asyncio.gather(*(minilm.embed(text) for _ in range(4)))
    assert all(v is not None for v in vectors)
    assert len(threads) == 4
    assert threading.get_ident() not in threads
