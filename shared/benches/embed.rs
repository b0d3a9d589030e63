//! Embedding benchmark: load time and per-prompt latency of both embedders, single-threaded.
//!
//! ```sh
//! bash models/fetch_models.sh --static
//! cargo bench -p routeiq --features onnx --bench embed
//! ```
//!
//! For prompts of 20, 64 and 256 tokens (all-MiniLM-L6-v2 tokens, `[CLS]`/`[SEP]` included;
//! 40 different corpus prompts per size) it prints p50/p99/mean of
//! * `embed`: tokenise + embed,
//! * `+linear`: embed + a 9-model linear scorer (what the svm/mlp/mf routers cost),
//! * `+knn`: embed + brute-force cosine k-NN (k = 25) over 5,608 stored prompt vectors (the
//!   most expensive strategy).
//!
//! Load times include the sha256 check against the manifest (`from_store`). Models come from
//! `ROUTEIQ_MODEL_DIR` (default `$HOME/.cache/routeiq/models`), prompts from
//! `ROUTEIQ_DATA_DIR` (default `../shared/data`). `ROUTEIQ_BENCH_QUICK=1` runs fewer
//! iterations.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use routeiq::ml::distill::routing_corpus;
use routeiq::ml::store::FsModelStore;
use routeiq::ml::{Embedder, StaticEmbedder, TransformerEmbedder};

const SIZES: [usize; 3] = [20, 64, 256];
const PROMPTS_PER_SIZE: usize = 40;
const KNN_ROWS: usize = 5_608;
const MODELS: usize = 9;

fn main() {
    if let Err(e) = run() {
        eprintln!("embed bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let process_start = Instant::now();
    let model_dir = std::env::var_os("ROUTEIQ_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/routeiq/models")
        });
    let data_dir = std::env::var_os("ROUTEIQ_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let quick = std::env::var_os("ROUTEIQ_BENCH_QUICK").is_some();
    let store = FsModelStore::new();
    let uri = |name: &str| model_dir.join(name).display().to_string();

    // Loading: the first load of each (what a cold start pays, page cache warm), then the
    // median of a few more.
    let t = Instant::now();
    let stat = StaticEmbedder::from_store(&store, &uri("static-minilm-pca128"))
        .map_err(|e| e.to_string())?;
    let static_first = t.elapsed();
    let since_start = process_start.elapsed();
    let static_median = median((0..5).map(|_| {
        let t = Instant::now();
        let _ = StaticEmbedder::from_store(&store, &uri("static-minilm-pca128"));
        t.elapsed()
    }));
    let t = Instant::now();
    let trans =
        TransformerEmbedder::from_store(&store, &uri("minilm-l6-v2")).map_err(|e| e.to_string())?;
    let trans_first = t.elapsed();
    let trans_median = median((0..if quick { 1 } else { 3 }).map(|_| {
        let t = Instant::now();
        let _ = TransformerEmbedder::from_store(&store, &uri("minilm-l6-v2"));
        t.elapsed()
    }));
    println!("load (with sha256 check)           first      median");
    println!(
        "  {:<32} {:>9.2?} {:>9.2?}   (process start to loaded: {since_start:.2?})",
        stat.id(),
        static_first,
        static_median
    );
    println!(
        "  {:<32} {:>9.2?} {:>9.2?}",
        trans.id(),
        trans_first,
        trans_median
    );

    // Prompts of exact token lengths: word prefixes of corpus prompts.
    let corpus = routing_corpus(&data_dir).map_err(|e| e.to_string())?;
    if corpus.is_empty() {
        return Err(format!("no prompts under {}", data_dir.display()));
    }
    let mut prompts = Vec::new();
    for &n in &SIZES {
        let mut set = Vec::new();
        for text in corpus.iter().step_by(97) {
            if let Some(p) = prefix_with_tokens(&trans, text, n)? {
                set.push(p);
            }
            if set.len() == PROMPTS_PER_SIZE {
                break;
            }
        }
        prompts.push(set);
    }

    // Router stand-ins.
    let mut rng = fastrand::Rng::with_seed(7);
    let linear = |dim: usize, rng: &mut fastrand::Rng| -> Vec<f32> {
        (0..MODELS * dim).map(|_| rng.f32() - 0.5).collect()
    };
    let stored = |dim: usize, rng: &mut fastrand::Rng| -> Vec<f32> {
        (0..KNN_ROWS * dim).map(|_| rng.f32() - 0.5).collect()
    };

    println!();
    println!("latency per prompt, single thread      p50        p99       mean   (n)");
    for (name, embedder) in [
        ("static", &stat as &dyn Embedder),
        ("transformer", &trans as &dyn Embedder),
    ] {
        let dim = embedder.dim();
        let (w, kn) = (linear(dim, &mut rng), stored(dim, &mut rng));
        for (size, set) in SIZES.iter().zip(&prompts) {
            let iters = match (name, size) {
                ("static", _) => {
                    if quick {
                        500
                    } else {
                        5_000
                    }
                }
                (_, 256) => {
                    if quick {
                        10
                    } else {
                        60
                    }
                }
                _ => {
                    if quick {
                        30
                    } else {
                        200
                    }
                }
            };
            // Warm-up.
            for p in set.iter().take(5) {
                embedder.embed(p).map_err(|e| e.to_string())?;
            }
            let mut embed_t = Vec::with_capacity(iters);
            let mut linear_t = Vec::with_capacity(iters);
            let mut knn_t = Vec::with_capacity(iters);
            let mut sink = 0f32;
            for i in 0..iters {
                let p = &set[i % set.len()];
                let t = Instant::now();
                let v = embedder.embed(p).map_err(|e| e.to_string())?;
                let e = t.elapsed();
                let t2 = Instant::now();
                sink += route_linear(&v, &w) as f32;
                let l = t2.elapsed();
                let t3 = Instant::now();
                sink += route_knn(&v, &kn, 25);
                let k = t3.elapsed();
                embed_t.push(e);
                linear_t.push(e + l);
                knn_t.push(e + k);
            }
            std::hint::black_box(sink);
            for (what, times) in [("embed", embed_t), ("+linear", linear_t), ("+knn", knn_t)] {
                let (p50, p99, mean) = stats(times);
                println!(
                    "  {name:<11} {size:>3} tok {what:<8} {p50:>9.1?} {p99:>9.1?} {mean:>9.1?}   ({iters})"
                );
            }
        }
    }
    Ok(())
}

/// The longest word prefix of `text` with exactly `n` transformer tokens, if there is one.
fn prefix_with_tokens(
    t: &TransformerEmbedder,
    text: &str,
    n: usize,
) -> Result<Option<String>, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut best = None;
    let (mut lo, mut hi) = (1usize, words.len());
    // Binary search on the number of words (token count grows with it).
    while lo <= hi {
        let mid = (lo + hi) / 2;
        let prefix = words[..mid].join(" ");
        let count = t.tokenize(&prefix).map_err(|e| e.to_string())?.len();
        if count <= n {
            if count == n {
                best = Some(prefix);
            }
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    if n == 256 && best.is_none() {
        // Truncation caps at 256: any text with more tokens is a 256-token prompt.
        let full = words.join(" ");
        if t.tokenize(&full).map_err(|e| e.to_string())?.len() == 256 {
            best = Some(full);
        }
    }
    Ok(best)
}

/// Dot product with eight independent accumulators (vectorises).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Index of the best of 9 linear scores.
fn route_linear(v: &[f32], w: &[f32]) -> usize {
    let mut best = (0, f32::MIN);
    for (m, row) in w.chunks_exact(v.len()).enumerate() {
        let s = dot(row, v);
        if s > best.1 {
            best = (m, s);
        }
    }
    best.0
}

/// Sum of the top-k cosine scores over the stored rows (brute force).
fn route_knn(v: &[f32], rows: &[f32], k: usize) -> f32 {
    let mut scores: Vec<f32> = rows.chunks_exact(v.len()).map(|r| dot(r, v)).collect();
    let k = k.min(scores.len());
    scores.select_nth_unstable_by(k.saturating_sub(1), |a, b| b.total_cmp(a));
    scores[..k].iter().sum()
}

fn median(times: impl Iterator<Item = Duration>) -> Duration {
    let mut v: Vec<Duration> = times.collect();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn stats(mut times: Vec<Duration>) -> (Duration, Duration, Duration) {
    times.sort();
    let n = times.len().max(1);
    let p = |q: f64| {
        times
            .get(
                ((n as f64 * q).ceil() as usize)
                    .saturating_sub(1)
                    .min(n - 1),
            )
            .copied()
            .unwrap_or_default()
    };
    let mean = times.iter().sum::<Duration>() / n as u32;
    (p(0.50), p(0.99), mean)
}
