#!/usr/bin/env python3
"""How much of the best-single -> oracle gap can a prompt-only router close on LLMRouter's data?

Five-fold cross-validation over all 5,608 prompts of ../shared/data/llmrouter/train.json
(folds by a seeded permutation), reporting the share of the gap closed on each held-out fold by:

- task-best: each prompt goes to the best model (on the training folds) of its *true* task
  (the `task_name` of query_train.jsonl). No router sees the label at inference; this is what
  recognising the task perfectly, and nothing else, is worth.
- within-task ridge: per task, one ridge regression per model on TF-IDF word 1-2-grams and
  character 2-4-grams of the prompt (+ log length), trained on that task's training prompts,
  again with the true task; alpha swept. If prompts carried signal about *which model* answers
  them well beyond their task, this would beat task-best.
- within-task gradient boosting (LightGBM) on 64 SVD components of the TF-IDF plus simple
  shape features (length, lines, digits, words, choices, code markers), with the true task.

This is analysis, not the product (the trainer is `routeiq train`/`routeiq eval`, in Rust, and
`routeiq eval` prints the task-best reference row on its own split). Needs numpy, scipy,
scikit-learn and lightgbm:

    python3 -m venv /tmp/v && /tmp/v/bin/pip install numpy scipy scikit-learn lightgbm
    /tmp/v/bin/python models/analysis/task_ceiling.py [--data ../shared/data/llmrouter]
"""
import argparse
import json
import re
from pathlib import Path

import numpy as np


def load(data: Path):
    rows = json.loads((data / "train.json").read_text())
    task_of = {}
    with open(data / "query_train.jsonl") as f:
        for line in f:
            if line.strip():
                q = json.loads(line)
                task_of[q["query"]] = q["task_name"]
    models = sorted(rows[0]["scores"])
    prompts = [r["question"] for r in rows]
    scores = np.array([[r["scores"][m] for m in models] for r in rows])
    tasks = [task_of.get(p, "?") for p in prompts]
    return models, prompts, scores, tasks


def gap_closed(scores, pick, best):
    q = scores[np.arange(len(pick)), pick].mean()
    b = scores[:, best].mean()
    o = scores.max(1).mean()
    return (q - b) / (o - b)


def shape_features(p):
    words = p.split()
    return [len(p), p.count("\n"), len(re.findall(r"\d", p)), len(words), p.count("?"),
            len(re.findall(r"\b[A-E][).]", p)), len(re.findall(r"def |return |print\(", p)),
            len(set(words)) / (1 + len(words))]


def main():
    from scipy.sparse import csr_matrix, hstack
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge
    import lightgbm as lgb

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "../shared/data/llmrouter"))
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    models, prompts, scores, tasks = load(Path(args.data))
    task_names = sorted(set(tasks))
    y = np.array([task_names.index(t) for t in tasks])
    shapes = np.array([shape_features(p) for p in prompts], dtype=float)
    perm = np.random.RandomState(0).permutation(len(prompts))
    folds = np.array_split(perm, args.folds)
    results = {}

    def record(name, value):
        results.setdefault(name, []).append(value)

    for f in range(args.folds):
        va = np.sort(folds[f])
        tr = np.sort(np.concatenate([folds[g] for g in range(args.folds) if g != f]))
        best = scores[tr].mean(0).argmax()
        means = {k: scores[tr][y[tr] == k].mean(0) for k in set(y[tr])}
        record("task-best (true task)", gap_closed(scores[va], np.array([means[k].argmax() for k in y[va]]), best))
        words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=50000)
        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=3, sublinear_tf=True,
                                max_features=50000)
        words.fit([prompts[i] for i in tr])
        chars.fit([prompts[i] for i in tr])
        x = hstack([words.transform(prompts), chars.transform(prompts),
                    csr_matrix(np.log1p(shapes[:, :1]))]).tocsr()
        svd = TruncatedSVD(64, random_state=0).fit(words.transform([prompts[i] for i in tr]))
        dense = np.hstack([shapes, svd.transform(words.transform(prompts))])
        for alpha in (1.0, 10.0, 100.0):
            pick = np.zeros(len(va), dtype=int)
            for k in set(y[va]):
                t_tr = tr[y[tr] == k]
                t_va = np.where(y[va] == k)[0]
                pred = np.column_stack([Ridge(alpha=alpha).fit(x[t_tr], scores[t_tr, j]).predict(x[va[t_va]])
                                        for j in range(len(models))])
                pick[t_va] = pred.argmax(1)
            record(f"within-task ridge alpha={alpha:g}", gap_closed(scores[va], pick, best))
        pick = np.zeros(len(va), dtype=int)
        for k in set(y[va]):
            t_tr = tr[y[tr] == k]
            t_va = np.where(y[va] == k)[0]
            pred = np.column_stack([
                lgb.LGBMRegressor(n_estimators=200, learning_rate=0.03, num_leaves=7, min_child_samples=20,
                                  subsample=0.8, subsample_freq=1, verbose=-1)
                .fit(dense[t_tr], scores[t_tr, j]).predict(dense[va[t_va]])
                for j in range(len(models))])
            pick[t_va] = pred.argmax(1)
        record("within-task LightGBM", gap_closed(scores[va], pick, best))

    print(f"share of the best-single -> oracle gap closed, {args.folds}-fold CV over {len(prompts)} prompts")
    print(f"{'router':36s} {'mean':>6s} {'sd':>6s}  per fold")
    for name, v in results.items():
        print(f"{name:36s} {np.mean(v):6.3f} {np.std(v):6.3f}  " + " ".join(f"{x:.3f}" for x in v))


if __name__ == "__main__":
    main()
