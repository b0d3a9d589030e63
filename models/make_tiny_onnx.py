"""Writes the tiny hand-made models the Rust unit tests load (output committed; a few KB).

    $ROUTEIQ_CACHE/venv-models/bin/python models/make_tiny_onnx.py [--out DIR]

Into shared/tests/data/tiny/:

* tokenizer.json: a BERT WordPiece tokenizer (same pipeline as all-MiniLM-L6-v2's) over a
  24-token vocabulary, no padding, truncation at 8 tokens.
* int8.onnx: the transformer's interface (`input_ids`, `attention_mask`, `token_type_ids`,
  int64 [batch, sequence] -> `last_hidden_state` float [batch, sequence, 4]) with the
  gather-then-dequantise pattern of the real model: hidden state of a token =
  Cast(Gather(Q, id)) * Gather(scale, id) + type_embedding[type_id]. The attention mask is
  consumed but does not change the states, so padded positions carry non-zero states and a
  pooling that ignored the mask would give a different vector.
* fp32.onnx: the same with an fp32 table and no `token_type_ids` input (an optional input).
* expected.json: texts, their token ids and the mean-pooled, L2-normalised embeddings of both
  graphs, computed here with numpy.
* scorer.onnx: a custom router (`llmrouter-custom`): input `embedding` float [1, 8], output
  `scores` float [1, 3] = Gemm(embedding, W) + b, with W and b from a seeded RNG and a bias
  that ranks model 1 first for every unit-norm input.
* scorer_batch.onnx: the same scores as MatMul + Add over a symbolic batch (`[batch, 8]` in,
  `[batch, 3]` out).
* scorer_two_outputs.onnx, scorer_int_input.onnx, scorer_unknown_op.onnx: scorers the loader
  must refuse (two outputs; an int64 input; an operator tract does not know).
* scorer_expected.json: W, b, a few input vectors and their scores computed with numpy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "hello", "world", "rust", "##y", "!", "the", "route", "##r", "a", "b",
    "?", "cafe", "model", "##s", "fast", "is", ",", "un", "##known",
]
DIM = 4
MAX_LEN = 8
TEXTS = ["hello world!", "The router is FAST, the models are rusty?", "Café unknown", "zzz", ""]


def tokenizer_json() -> dict:
    ids = {t: i for i, t in enumerate(VOCAB)}
    special = [
        {"id": ids[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
    ]
    return {
        "version": "1.0",
        "truncation": {"direction": "Right", "max_length": MAX_LEN, "strategy": "LongestFirst", "stride": 0},
        "padding": None,
        "added_tokens": special,
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [ids["[CLS]"]], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [ids["[SEP]"]], "tokens": ["[SEP]"]},
            },
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": ids},
    }


def tables():
    rng = np.random.default_rng(7)
    q = rng.integers(-127, 128, size=(len(VOCAB), DIM), dtype=np.int8)
    scale = (rng.random((len(VOCAB), 1)) * 0.02 + 0.005).astype(np.float32)
    types = rng.normal(0.0, 0.1, size=(2, DIM)).astype(np.float32)
    return q, scale, types


def io(with_types: bool):
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if with_types else [])
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in names]
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", DIM])
    return inputs, output


def mask_term(nodes: list, inits: list, states: str) -> None:
    """last_hidden_state = states + 0 * mask (the mask is an input the graph consumes)."""
    nodes += [
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "axis_last"], ["mask_3d"]),
        helper.make_node("Mul", ["mask_3d", "zero"], ["mask_zero"]),
        helper.make_node("Add", [states, "mask_zero"], ["last_hidden_state"]),
    ]
    inits += [numpy_helper.from_array(np.array([-1], dtype=np.int64), "axis_last"),
              numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero")]


def int8_model(q, scale, types) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Gather", ["word_q", "input_ids"], ["rows_q"], axis=0),
        helper.make_node("Cast", ["rows_q"], ["rows_f"], to=TensorProto.FLOAT),
        helper.make_node("Gather", ["word_scale", "input_ids"], ["rows_scale"], axis=0),
        helper.make_node("Mul", ["rows_f", "rows_scale"], ["word"]),
        helper.make_node("Gather", ["types", "token_type_ids"], ["type_rows"], axis=0),
        helper.make_node("Add", ["word", "type_rows"], ["states"]),
    ]
    inits = [numpy_helper.from_array(q, "word_q"), numpy_helper.from_array(scale, "word_scale"),
             numpy_helper.from_array(types, "types")]
    mask_term(nodes, inits, "states")
    inputs, output = io(True)
    graph = helper.make_graph(nodes, "tiny_int8", inputs, [output], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="routeiq-tiny")


def fp32_model(table) -> onnx.ModelProto:
    nodes = [helper.make_node("Gather", ["word", "input_ids"], ["states"], axis=0)]
    inits = [numpy_helper.from_array(table, "word")]
    mask_term(nodes, inits, "states")
    inputs, output = io(False)
    graph = helper.make_graph(nodes, "tiny_fp32", inputs, [output], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="routeiq-tiny")


SCORER_DIM = 8
SCORER_MODELS = 3


def scorer_weights():
    rng = np.random.default_rng(20250101)
    w = rng.normal(0.0, 0.05, size=(SCORER_DIM, SCORER_MODELS)).astype(np.float32)
    b = np.array([0.4, 0.8, 0.2], dtype=np.float32)
    # Model 1 first for any unit-norm x: |x·W_j| <= ||W_j||, so the bias gap must exceed them.
    norms = np.linalg.norm(w.astype(np.float64), axis=0)
    for j in (0, 2):
        assert b[1] - b[j] > norms[1] + norms[j], (j, norms)
    return w, b


def scorer_model(w, b, *, batch: bool = False) -> onnx.ModelProto:
    rows = "batch" if batch else 1
    inputs = [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [rows, SCORER_DIM])]
    outputs = [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [rows, SCORER_MODELS])]
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")]
    if batch:
        nodes = [helper.make_node("MatMul", ["embedding", "W"], ["xw"]),
                 helper.make_node("Add", ["xw", "b"], ["scores"])]
    else:
        nodes = [helper.make_node("Gemm", ["embedding", "W", "b"], ["scores"])]
    graph = helper.make_graph(nodes, "tiny_scorer", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="routeiq-tiny")


def bad_scorers(w, b) -> dict[str, onnx.ModelProto]:
    opset = [helper.make_opsetid("", 17)]
    emb = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, SCORER_DIM])
    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, SCORER_MODELS])
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")]

    two = helper.make_graph(
        [helper.make_node("Gemm", ["embedding", "W", "b"], ["scores"]),
         helper.make_node("Identity", ["scores"], ["copy"])],
        "two_outputs", [emb], [scores, helper.make_tensor_value_info("copy", TensorProto.FLOAT, [1, SCORER_MODELS])],
        inits)
    ints = helper.make_graph(
        [helper.make_node("Cast", ["embedding"], ["emb_f"], to=TensorProto.FLOAT),
         helper.make_node("Gemm", ["emb_f", "W", "b"], ["scores"])],
        "int_input", [helper.make_tensor_value_info("embedding", TensorProto.INT64, [1, SCORER_DIM])], [scores],
        inits)
    unknown = helper.make_graph(
        [helper.make_node("Frobnicate", ["embedding"], ["scores"], domain="com.example")],
        "unknown_op", [emb], [scores], [])
    out = {
        "scorer_two_outputs.onnx": helper.make_model(two, opset_imports=opset, producer_name="routeiq-tiny"),
        "scorer_int_input.onnx": helper.make_model(ints, opset_imports=opset, producer_name="routeiq-tiny"),
        "scorer_unknown_op.onnx": helper.make_model(
            unknown, opset_imports=opset + [helper.make_opsetid("com.example", 1)], producer_name="routeiq-tiny"),
    }
    for name in ("scorer_two_outputs.onnx", "scorer_int_input.onnx"):
        onnx.checker.check_model(out[name])
    return out


def write_scorers(out: Path) -> None:
    w, b = scorer_weights()
    for name, model in (("scorer.onnx", scorer_model(w, b)), ("scorer_batch.onnx", scorer_model(w, b, batch=True))):
        onnx.checker.check_model(model)
        onnx.save(model, str(out / name))
    for name, model in bad_scorers(w, b).items():
        onnx.save(model, str(out / name))
    rng = np.random.default_rng(3)
    inputs = [np.zeros(SCORER_DIM, dtype=np.float32), np.eye(SCORER_DIM, dtype=np.float32)[5]]
    for _ in range(3):
        v = rng.normal(size=SCORER_DIM)
        inputs.append((v / np.linalg.norm(v)).astype(np.float32))
    cases = [{"input": [float(x) for x in v],
              "scores": [float(s) for s in (v.astype(np.float64) @ w.astype(np.float64) + b)]}
             for v in inputs]
    doc = {"dim": SCORER_DIM, "models": SCORER_MODELS, "first": 1,
           "w": [[float(x) for x in row] for row in w], "b": [float(x) for x in b], "cases": cases}
    (out / "scorer_expected.json").write_text(json.dumps(doc, indent=1) + "\n")


def pooled(states: np.ndarray) -> list[float]:
    e = states.astype(np.float64).mean(0)
    n = np.linalg.norm(e)
    return [float(x) for x in (e / n if n > 0 else e)]


def main() -> None:
    repo = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=repo / "shared" / "tests" / "data" / "tiny")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from tokenizers import Tokenizer

    tok = tokenizer_json()
    (args.out / "tokenizer.json").write_text(json.dumps(tok, indent=1) + "\n")
    tokenizer = Tokenizer.from_file(str(args.out / "tokenizer.json"))

    q, scale, types = tables()
    deq = q.astype(np.float32) * scale
    for name, model in (("int8.onnx", int8_model(q, scale, types)), ("fp32.onnx", fp32_model(deq))):
        model.metadata_props.append(onnx.StringStringEntryProto(key="routeiq.model", value="tiny"))
        onnx.checker.check_model(model)
        onnx.save(model, str(args.out / name))

    cases = []
    for text in TEXTS:
        ids = tokenizer.encode(text).ids
        cases.append({
            "text": text,
            "ids": ids,
            "int8": pooled(deq[ids] + types[0]),
            "fp32": pooled(deq[ids]),
        })
    (args.out / "expected.json").write_text(json.dumps({"dim": DIM, "cases": cases}, indent=1) + "\n")
    write_scorers(args.out)
    for c in cases:
        print(c["text"], c["ids"])


if __name__ == "__main__":
    main()
