//! Training every `llmrouter-*` strategy from embeddings and per-model qualities.
//!
//! Hyper-parameters that matter (k of kNN, the SVM's regularisation, early stopping of the
//! nets) are chosen on a tuning split carved out of the *training* data (15%, by prompt
//! hash); the validation split `routeiq eval` reports on is never seen here.

use routeiq::ml::MlStrategyName;
use routeiq::ml::artifact::{
    EmbedderSpec, FORMAT, FORMAT_VERSION, HybridMode, ModelSpec, RouterArtifact, RouterParams,
    Tensor,
};
use routeiq::ml::predictor::{dot, sigmoid};
use serde_json::json;

use crate::TrainError;
use crate::data::Dataset;
use crate::nn::{Adam, Loss, Mlp, TrainConfig, glorot};

/// Options of `routeiq train`.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub seed: u64,
    /// kNN's k; `None`: chosen on the tuning split.
    pub knn_k: Option<usize>,
    /// Keep at most this many training prompts in the kNN artifact (evenly subsampled).
    pub knn_max_points: Option<usize>,
    pub mlp_hidden: usize,
    pub mf_dim: usize,
    pub hybrid_small: Option<String>,
    pub hybrid_large: Option<String>,
    pub hybrid_mode: HybridMode,
    pub hybrid_threshold: Option<f32>,
    /// Quality loss tolerated by the probabilistic hybrid router.
    pub hybrid_margin: f32,
    /// Recorded in the artifact (how the data was split), so `eval` can redo the split.
    pub split: serde_json::Value,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            seed: 7,
            knn_k: None,
            knn_max_points: None,
            mlp_hidden: 128,
            mf_dim: 64,
            hybrid_small: None,
            hybrid_large: None,
            hybrid_mode: HybridMode::Deterministic,
            hybrid_threshold: None,
            hybrid_margin: 0.0,
            split: serde_json::Value::Null,
        }
    }
}

/// Training data: the dataset and each prompt's embedding.
pub struct TrainSet<'a> {
    pub data: &'a Dataset,
    pub x: &'a [Vec<f32>],
    pub embedder: EmbedderSpec,
}

/// Splits row indices into (fit, tune) by prompt hash.
fn tuning_split(data: &Dataset) -> (Vec<usize>, Vec<usize>) {
    use sha2::{Digest, Sha256};
    let mut fit = Vec::new();
    let mut tune = Vec::new();
    for (i, p) in data.prompts.iter().enumerate() {
        let h = Sha256::digest(format!("routeiq-tune:{p}").as_bytes());
        if h[0] < 38 {
            tune.push(i); // ~15%
        } else {
            fit.push(i);
        }
    }
    if tune.is_empty() || fit.is_empty() {
        // Tiny data: tune on everything.
        return ((0..data.len()).collect(), (0..data.len()).collect());
    }
    (fit, tune)
}

/// Mean quality of picking, per row, the model with the highest predicted quality.
pub fn routed_quality(pred: &[Vec<f32>], truth: &[Vec<f32>]) -> f64 {
    let mut total = 0f64;
    for (p, t) in pred.iter().zip(truth) {
        let best = argmax(p);
        total += f64::from(t[best]);
    }
    total / pred.len().max(1) as f64
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// A UTC timestamp `YYYYMMDDTHHMMSSZ`.
fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// kNN predictions for `queries` against `refs` (rows of `x`), excluding nothing.
fn knn_predict(
    x: &[Vec<f32>],
    y: &[Vec<f32>],
    refs: &[usize],
    query: &[f32],
    k: usize,
) -> Vec<f32> {
    let mut sims: Vec<(f32, usize)> = refs.iter().map(|&r| (dot(&x[r], query), r)).collect();
    let k = k.min(sims.len()).max(1);
    if k < sims.len() {
        sims.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
    }
    let m = y.first().map_or(0, Vec::len);
    let mut acc = vec![0f32; m];
    for &(_, r) in &sims[..k] {
        acc.iter_mut().zip(&y[r]).for_each(|(a, v)| *a += v);
    }
    acc.iter_mut().for_each(|a| *a /= k as f32);
    acc
}

/// Fits Bradley–Terry strengths from per-prompt pairwise wins (a tie counts half a win
/// each; one virtual tie per pair keeps strengths finite) and returns Elo ratings
/// (`400·log10(strength)`, centred on 1000).
pub fn fit_elo(scores: &[Vec<f32>]) -> Vec<f32> {
    let m = scores.first().map_or(0, Vec::len);
    // One virtual tie per pair keeps every strength finite.
    let mut wins = vec![vec![0.5f64; m]; m];
    let mut games = vec![vec![1f64; m]; m];
    for row in scores {
        for i in 0..m {
            for j in 0..m {
                // A pair that both failed says nothing about which is better.
                if i == j || (row[i] <= 0.0 && row[j] <= 0.0) {
                    continue;
                }
                games[i][j] += 1.0;
                if row[i] > row[j] {
                    wins[i][j] += 1.0;
                } else if row[i] == row[j] {
                    wins[i][j] += 0.5;
                }
            }
        }
    }
    let mut p = vec![1f64; m];
    for _ in 0..500 {
        let mut next = vec![0f64; m];
        for i in 0..m {
            let w: f64 = (0..m).filter(|&j| j != i).map(|j| wins[i][j]).sum();
            let d: f64 = (0..m)
                .filter(|&j| j != i)
                .map(|j| games[i][j] / (p[i] + p[j]))
                .sum();
            next[i] = if d > 0.0 { w / d } else { p[i] };
        }
        // Normalise (geometric mean 1).
        let g = (next.iter().map(|v| v.max(1e-12).ln()).sum::<f64>() / m.max(1) as f64).exp();
        next.iter_mut().for_each(|v| *v /= g);
        let delta: f64 = next.iter().zip(&p).map(|(a, b)| (a - b).abs()).sum();
        p = next;
        if delta < 1e-10 {
            break;
        }
    }
    p.iter()
        .map(|s| (1000.0 + 400.0 * s.max(1e-12).log10()) as f32)
        .collect()
}

/// Trains one linear SVM (hinge loss, L2, Pegasos SGD with a bias feature).
fn linear_svm(
    x: &[Vec<f32>],
    rows: &[usize],
    labels: &[f32],
    lambda: f32,
    epochs: usize,
    rng: &mut fastrand::Rng,
) -> (Vec<f32>, f32) {
    let d = x.first().map_or(0, Vec::len);
    let mut w = vec![0f32; d];
    let mut b = 0f32;
    let mut order = rows.to_vec();
    let mut t = 1f32;
    for _ in 0..epochs {
        rng.shuffle(&mut order);
        for &i in &order {
            let eta = 1.0 / (lambda * (t + 10.0));
            let y = labels[i];
            let margin = y * (dot(&w, &x[i]) + b);
            let shrink = 1.0 - eta * lambda;
            w.iter_mut().for_each(|v| *v *= shrink);
            if margin < 1.0 {
                w.iter_mut()
                    .zip(&x[i])
                    .for_each(|(v, xi)| *v += eta * y * xi);
                b += eta * y * 0.1;
            }
            t += 1.0;
        }
    }
    (w, b)
}

/// Fits Platt scaling `σ(a·f + b)` to soft targets by Newton's method.
fn platt(margins: &[f32], targets: &[f32]) -> (f32, f32) {
    let (mut a, mut b) = (1f64, 0f64);
    for _ in 0..50 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0f64, 0f64, 1e-6, 0f64, 1e-6);
        for (f, t) in margins.iter().zip(targets) {
            let f = f64::from(*f);
            let p = 1.0 / (1.0 + (-(a * f + b)).exp());
            let g = p - f64::from(*t);
            let h = p * (1.0 - p);
            ga += g * f;
            gb += g;
            haa += h * f * f;
            hab += h * f;
            hbb += h;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-12 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        a -= da;
        b -= db;
        if da.abs() + db.abs() < 1e-9 {
            break;
        }
    }
    (a as f32, b as f32)
}

/// Picks the hybrid router's (small, large): the named ones, else large = the best model
/// on average and small = the best among the models cheaper (else smaller) than it.
pub fn hybrid_pair(
    models: &[ModelSpec],
    small: Option<&str>,
    large: Option<&str>,
) -> Result<(usize, usize), TrainError> {
    let find = |n: &str| {
        routeiq::ml::predictor::model_index(models, n)
            .ok_or_else(|| TrainError::Config(format!("hybrid: no model named '{n}' in the data")))
    };
    let q = |i: usize| models[i].mean_quality.unwrap_or(0.0);
    let large = match large {
        Some(n) => find(n)?,
        None => (0..models.len())
            .max_by(|&a, &b| q(a).total_cmp(&q(b)))
            .ok_or_else(|| TrainError::Config("hybrid: no models".into()))?,
    };
    let price =
        |i: usize| models[i].input_price.unwrap_or(0.0) + models[i].output_price.unwrap_or(0.0);
    let small = match small {
        Some(n) => find(n)?,
        None => {
            let cheaper: Vec<usize> = (0..models.len())
                .filter(|&i| i != large && price(i) < price(large))
                .collect();
            let smaller: Vec<usize> = (0..models.len())
                .filter(|&i| {
                    i != large
                        && matches!((models[i].size_b, models[large].size_b), (Some(a), Some(b)) if a < b)
                })
                .collect();
            let pool = if !cheaper.is_empty() {
                cheaper
            } else if !smaller.is_empty() {
                smaller
            } else {
                (0..models.len()).filter(|&i| i != large).collect()
            };
            pool.into_iter()
                .max_by(|&a, &b| q(a).total_cmp(&q(b)))
                .ok_or_else(|| TrainError::Config("hybrid needs at least two models".into()))?
        }
    };
    if small == large {
        return Err(TrainError::Config(
            "hybrid: small and large are the same model".into(),
        ));
    }
    Ok((small, large))
}

/// Trains `strategy` and returns its artifact.
pub fn train(
    strategy: MlStrategyName,
    set: &TrainSet<'_>,
    opts: &TrainOptions,
) -> Result<RouterArtifact, TrainError> {
    let data = set.data;
    let x = set.x;
    let y = &data.scores;
    let n = data.len();
    let m = data.models.len();
    let d = set.embedder.dim;
    if n == 0 || m == 0 {
        return Err(TrainError::Data("no training data".into()));
    }
    if x.len() != n || x.iter().any(|v| v.len() != d) {
        return Err(TrainError::Data("embeddings do not match the data".into()));
    }
    let mut rng = fastrand::Rng::with_seed(opts.seed);
    let (fit, tune) = tuning_split(data);
    let sub = |idx: &[usize]| -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        (
            idx.iter().map(|&i| x[i].clone()).collect(),
            idx.iter().map(|&i| y[i].clone()).collect(),
        )
    };
    let mut info = serde_json::Map::new();
    let params = match strategy {
        MlStrategyName::Knn => {
            let k = match opts.knn_k {
                Some(k) => k.max(1),
                None => {
                    let truth: Vec<Vec<f32>> = tune.iter().map(|&i| y[i].clone()).collect();
                    let mut best = (f64::MIN, 1);
                    for k in [5, 10, 20, 40, 80, 160] {
                        if k > fit.len() {
                            break;
                        }
                        let pred: Vec<Vec<f32>> = tune
                            .iter()
                            .map(|&i| knn_predict(x, y, &fit, &x[i], k))
                            .collect();
                        let q = routed_quality(&pred, &truth);
                        info.insert(format!("tune_quality_k{k}"), json!(q));
                        if q > best.0 {
                            best = (q, k);
                        }
                    }
                    best.1
                }
            };
            let keep: Vec<usize> = match opts.knn_max_points {
                Some(max) if max < n => (0..max).map(|i| i * n / max).collect(),
                _ => (0..n).collect(),
            };
            info.insert("k".into(), json!(k));
            info.insert("points".into(), json!(keep.len()));
            let emb: Vec<f32> = keep.iter().flat_map(|&i| x[i].iter().copied()).collect();
            let sc: Vec<f32> = keep.iter().flat_map(|&i| y[i].iter().copied()).collect();
            RouterParams::Knn {
                k,
                weighted: false,
                embeddings: Tensor::i8_rows(keep.len(), d, &emb),
                scores: Tensor::i8_rows(keep.len(), m, &sc),
            }
        }
        MlStrategyName::Svm => {
            let mut weights = Vec::with_capacity(m * d);
            let mut bias = Vec::with_capacity(m);
            let mut pa = Vec::with_capacity(m);
            let mut pb = Vec::with_capacity(m);
            let mut lambdas = Vec::new();
            for j in 0..m {
                let labels: Vec<f32> = y
                    .iter()
                    .map(|r| if r[j] >= 0.5 { 1.0 } else { -1.0 })
                    .collect();
                let targets_tune: Vec<f32> = tune.iter().map(|&i| y[i][j]).collect();
                // λ by held-out log loss after Platt scaling.
                let mut best: Option<(f64, f32, Vec<f32>, f32, f32, f32)> = None;
                for lambda in [1e-4f32, 1e-3, 1e-2] {
                    let (w, b) = linear_svm(x, &fit, &labels, lambda, 8, &mut rng);
                    let margins: Vec<f32> = tune.iter().map(|&i| dot(&w, &x[i]) + b).collect();
                    let (a, c) = platt(&margins, &targets_tune);
                    let loss: f64 = margins
                        .iter()
                        .zip(&targets_tune)
                        .map(|(f, t)| {
                            let p = f64::from(sigmoid(a * f + c)).clamp(1e-6, 1.0 - 1e-6);
                            -(f64::from(*t) * p.ln() + f64::from(1.0 - t) * (1.0 - p).ln())
                        })
                        .sum::<f64>()
                        / margins.len().max(1) as f64;
                    if best.as_ref().is_none_or(|b| loss < b.0) {
                        best = Some((loss, lambda, w, b, a, c));
                    }
                }
                if let Some((_, lambda, w, b, a, c)) = best {
                    weights.extend(w);
                    bias.push(b);
                    pa.push(a);
                    pb.push(c);
                    lambdas.push(lambda);
                }
            }
            info.insert("lambda".into(), json!(lambdas));
            RouterParams::Svm {
                weights: Tensor::f32(vec![m, d], &weights),
                bias,
                platt_a: pa,
                platt_b: pb,
            }
        }
        MlStrategyName::Mlp => {
            let (fx, fy) = sub(&fit);
            let (tx, ty) = sub(&tune);
            let mut net = Mlp::new(&[d, opts.mlp_hidden, m], Loss::Bce, &mut rng);
            let cfg = TrainConfig {
                seed: opts.seed,
                weight_decay: 1e-3,
                ..TrainConfig::default()
            };
            net.fit(&fx, &fy, Some((&tx, &ty)), &cfg);
            info.insert("hidden".into(), json!(opts.mlp_hidden));
            info.insert("tune_loss".into(), json!(net.loss_on(&tx, &ty)));
            let (hidden, output) = net.to_params();
            RouterParams::Mlp { hidden, output }
        }
        MlStrategyName::Mf => {
            let (proj, vecs, w, b) = train_mf(x, y, &fit, &tune, opts.mf_dim, opts.seed);
            info.insert("dim".into(), json!(opts.mf_dim));
            RouterParams::Mf {
                projection: Tensor::f32(vec![opts.mf_dim, d], &proj),
                model_vectors: Tensor::f32(vec![m, opts.mf_dim], &vecs),
                weight: w,
                bias: b,
            }
        }
        MlStrategyName::Elo => RouterParams::Elo {
            ratings: fit_elo(y),
        },
        MlStrategyName::Hybrid => {
            let (small, large) = hybrid_pair(
                &data.models,
                opts.hybrid_small.as_deref(),
                opts.hybrid_large.as_deref(),
            )?;
            let target = |r: &Vec<f32>| -> Vec<f32> {
                match opts.hybrid_mode {
                    HybridMode::Deterministic => vec![r[large] - r[small]],
                    HybridMode::Probabilistic => {
                        vec![if r[small] >= r[large] - opts.hybrid_margin {
                            1.0
                        } else {
                            0.0
                        }]
                    }
                }
            };
            let fx: Vec<Vec<f32>> = fit.iter().map(|&i| x[i].clone()).collect();
            let fy: Vec<Vec<f32>> = fit.iter().map(|&i| target(&y[i])).collect();
            let tx: Vec<Vec<f32>> = tune.iter().map(|&i| x[i].clone()).collect();
            let ty: Vec<Vec<f32>> = tune.iter().map(|&i| target(&y[i])).collect();
            let loss = match opts.hybrid_mode {
                HybridMode::Deterministic => Loss::Mse,
                HybridMode::Probabilistic => Loss::Bce,
            };
            let mut net = Mlp::new(&[d, 64, 1], loss, &mut rng);
            let cfg = TrainConfig {
                seed: opts.seed,
                weight_decay: 1e-3,
                ..TrainConfig::default()
            };
            net.fit(&fx, &fy, Some((&tx, &ty)), &cfg);
            let threshold = opts.hybrid_threshold.unwrap_or(match opts.hybrid_mode {
                HybridMode::Deterministic => 0.0,
                HybridMode::Probabilistic => 0.5,
            });
            info.insert("small".into(), json!(data.models[small].name));
            info.insert("large".into(), json!(data.models[large].name));
            let (hidden, output) = net.to_params();
            RouterParams::Hybrid {
                small,
                large,
                mode: opts.hybrid_mode,
                threshold,
                margin: opts.hybrid_margin,
                hidden,
                output,
            }
        }
        MlStrategyName::Smallest | MlStrategyName::Largest => RouterParams::Size,
        MlStrategyName::Custom => {
            return Err(TrainError::Config(
                "llmrouter-custom routers are brought by the user (an ONNX file), not trained"
                    .into(),
            ));
        }
    };
    // Timestamp plus a hash of the weights: two trainings never share a version.
    let digest =
        routeiq::ml::artifact::sha256_hex(&serde_json::to_vec(&params).unwrap_or_default());
    let version = format!("{}-{}-{}", strategy.short(), timestamp(), &digest[..8]);
    Ok(RouterArtifact {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        strategy: strategy.as_str().into(),
        version,
        embedder: set.embedder.clone(),
        models: data.models.clone(),
        params,
        training: json!({
            "data": data.name,
            "prompts": n,
            "seed": opts.seed,
            "split": opts.split,
            "notes": data.notes,
            "details": info,
        }),
    })
}

/// Trains matrix factorisation `σ(wᵀ(v_m ⊙ P·x) + b_m)` with Adam on binary cross-entropy
/// against the scores; early stopping on the tuning rows. Returns (P, V, w, b).
fn train_mf(
    x: &[Vec<f32>],
    y: &[Vec<f32>],
    fit: &[usize],
    tune: &[usize],
    h: usize,
    seed: u64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let d = x.first().map_or(0, Vec::len);
    let m = y.first().map_or(0, Vec::len);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut p = glorot(&mut rng, d, h);
    let mut v: Vec<f32> = glorot(&mut rng, h, m);
    let mut w = vec![1f32; h];
    // Start each model at its base rate.
    let mut b: Vec<f32> = (0..m)
        .map(|j| {
            let mean = fit.iter().map(|&i| y[i][j]).sum::<f32>() / fit.len().max(1) as f32;
            let mean = mean.clamp(0.01, 0.99);
            (mean / (1.0 - mean)).ln()
        })
        .collect();
    let lr = 5e-3;
    let (mut op, mut ov, mut ow, mut ob) = (
        Adam::new(p.len(), lr, 1e-3),
        Adam::new(v.len(), lr, 1e-3),
        Adam::new(w.len(), lr, 0.0),
        Adam::new(b.len(), lr, 0.0),
    );
    let predict =
        |p: &[f32], v: &[f32], w: &[f32], b: &[f32], xi: &[f32]| -> (Vec<f32>, Vec<f32>) {
            let proj: Vec<f32> = p.chunks(d).map(|row| dot(row, xi)).collect();
            let wp: Vec<f32> = proj.iter().zip(w).map(|(a, c)| a * c).collect();
            let q = v
                .chunks(h)
                .zip(b)
                .map(|(vm, bm)| sigmoid(dot(vm, &wp) + bm))
                .collect();
            (proj, q)
        };
    let tune_loss = |p: &[f32], v: &[f32], w: &[f32], b: &[f32]| -> f64 {
        let mut total = 0f64;
        for &i in tune {
            let (_, q) = predict(p, v, w, b, &x[i]);
            for (qv, t) in q.iter().zip(&y[i]) {
                let qv = f64::from(*qv).clamp(1e-6, 1.0 - 1e-6);
                total -= f64::from(*t) * qv.ln() + f64::from(1.0 - t) * (1.0 - qv).ln();
            }
        }
        total / (tune.len() * m).max(1) as f64
    };
    let mut best = (f64::INFINITY, p.clone(), v.clone(), w.clone(), b.clone());
    let mut since = 0;
    let mut order = fit.to_vec();
    for _epoch in 0..60 {
        rng.shuffle(&mut order);
        for batch in order.chunks(32) {
            let (mut gp, mut gv, mut gw, mut gb) = (
                vec![0f32; p.len()],
                vec![0f32; v.len()],
                vec![0f32; h],
                vec![0f32; m],
            );
            for &i in batch {
                let xi = &x[i];
                let (proj, q) = predict(&p, &v, &w, &b, xi);
                let mut gproj = vec![0f32; h];
                for j in 0..m {
                    let dz = q[j] - y[i][j];
                    gb[j] += dz;
                    let vm = &v[j * h..(j + 1) * h];
                    for k in 0..h {
                        gv[j * h + k] += dz * w[k] * proj[k];
                        gw[k] += dz * vm[k] * proj[k];
                        gproj[k] += dz * w[k] * vm[k];
                    }
                }
                for k in 0..h {
                    let g = gproj[k];
                    if g != 0.0 {
                        gp[k * d..(k + 1) * d]
                            .iter_mut()
                            .zip(xi)
                            .for_each(|(a, xv)| *a += g * xv);
                    }
                }
            }
            let s = 1.0 / batch.len() as f32;
            for g in [&mut gp, &mut gv, &mut gw, &mut gb] {
                g.iter_mut().for_each(|v| *v *= s);
            }
            op.step(&mut p, &gp);
            ov.step(&mut v, &gv);
            ow.step(&mut w, &gw);
            ob.step(&mut b, &gb);
        }
        let l = tune_loss(&p, &v, &w, &b);
        if l < best.0 - 1e-6 {
            best = (l, p.clone(), v.clone(), w.clone(), b.clone());
            since = 0;
        } else {
            since += 1;
            if since >= 6 {
                break;
            }
        }
    }
    (best.1, best.2, best.3, best.4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use routeiq::ml::artifact::Verification;
    use routeiq::ml::predictor::LoadedRouter;

    /// Prompts on two directions: models 0 and 1 are each right on one side; model 2 is
    /// mediocre everywhere.
    fn synthetic(n: usize) -> (Dataset, Vec<Vec<f32>>) {
        let mut rng = fastrand::Rng::with_seed(11);
        let mut ds = Dataset {
            name: "synthetic".into(),
            models: ["left", "right", "meh"]
                .iter()
                .enumerate()
                .map(|(i, name)| ModelSpec {
                    name: name.to_string(),
                    size_b: Some([7.0, 70.0, 13.0][i]),
                    input_price: Some([0.1, 1.0, 0.3][i]),
                    output_price: Some([0.1, 1.0, 0.3][i]),
                    mean_quality: Some(0.5),
                })
                .collect(),
            ..Dataset::default()
        };
        let mut x = Vec::new();
        for i in 0..n {
            let side = i % 2;
            let mut v = vec![
                rng.f32() * 0.3,
                rng.f32() * 0.3,
                rng.f32() * 0.3,
                rng.f32() * 0.3,
            ];
            v[side] += 1.0;
            routeiq::ml::embed::l2_normalize(&mut v);
            x.push(v);
            ds.prompts.push(format!("p{i}"));
            ds.scores.push(if side == 0 {
                vec![1.0, 0.0, 0.5]
            } else {
                vec![0.0, 1.0, 0.5]
            });
            ds.tasks.push(None);
        }
        (ds, x)
    }

    fn routed(art: RouterArtifact, x: &[Vec<f32>], truth: &[Vec<f32>]) -> f64 {
        let r = LoadedRouter::from_artifact("t", art, Verification::default(), None, None).unwrap();
        let pred: Vec<Vec<f32>> = x
            .iter()
            .map(|v| {
                r.predict(v, None)
                    .unwrap()
                    .quality
                    .iter()
                    .map(|q| q.unwrap_or(0.0) as f32)
                    .collect()
            })
            .collect();
        routed_quality(&pred, truth)
    }

    #[test]
    fn every_learned_strategy_finds_the_known_answer() {
        let (ds, x) = synthetic(120);
        let set = TrainSet {
            data: &ds,
            x: &x,
            embedder: EmbedderSpec {
                id: "synthetic-4".into(),
                dim: 4,
                probe: Vec::new(),
            },
        };
        let opts = TrainOptions {
            mlp_hidden: 8,
            mf_dim: 4,
            ..TrainOptions::default()
        };
        for s in [
            MlStrategyName::Knn,
            MlStrategyName::Svm,
            MlStrategyName::Mlp,
            MlStrategyName::Mf,
        ] {
            let art = train(s, &set, &opts).unwrap();
            // The artifact survives a JSON round trip.
            let art = RouterArtifact::from_bytes("t", &art.to_bytes()).unwrap();
            let q = routed(art, &x, &ds.scores);
            assert!(q > 0.95, "{s:?}: routed quality {q}");
        }
    }

    #[test]
    fn hybrid_sends_each_side_to_the_right_model() {
        let (ds, x) = synthetic(120);
        let set = TrainSet {
            data: &ds,
            x: &x,
            embedder: EmbedderSpec {
                id: "synthetic-4".into(),
                dim: 4,
                probe: Vec::new(),
            },
        };
        let opts = TrainOptions {
            hybrid_small: Some("left".into()),
            hybrid_large: Some("right".into()),
            ..TrainOptions::default()
        };
        for mode in [HybridMode::Deterministic, HybridMode::Probabilistic] {
            let art = train(
                MlStrategyName::Hybrid,
                &set,
                &TrainOptions {
                    hybrid_mode: mode,
                    ..opts.clone()
                },
            )
            .unwrap();
            let r =
                LoadedRouter::from_artifact("t", art, Verification::default(), None, None).unwrap();
            let mut right = 0;
            for (i, v) in x.iter().enumerate() {
                let call = r.predict(v, None).unwrap().hybrid.unwrap();
                // Side 0: the small model ("left") is right.
                if call.small == (i % 2 == 0) {
                    right += 1;
                }
            }
            assert!(right >= 114, "{mode:?}: {right}/120");
        }
    }

    #[test]
    fn elo_recovers_a_known_ordering() {
        // Model strengths 0.2 < 0.5 < 0.8: each prompt is a coin per model.
        let mut rng = fastrand::Rng::with_seed(5);
        let p = [0.5f32, 0.8, 0.2];
        let scores: Vec<Vec<f32>> = (0..2000)
            .map(|_| {
                p.iter()
                    .map(|pi| if rng.f32() < *pi { 1.0 } else { 0.0 })
                    .collect()
            })
            .collect();
        let r = fit_elo(&scores);
        assert!(r[1] > r[0] && r[0] > r[2], "{r:?}");
        // Mean-centred around 1000 on a log scale.
        assert!((r.iter().sum::<f32>() / 3.0 - 1000.0).abs() < 1.0, "{r:?}");
        // Identical models get identical ratings.
        let same = fit_elo(&[
            vec![1.0, 1.0],
            vec![0.0, 0.0],
            vec![1.0, 0.0],
            vec![0.0, 1.0],
        ]);
        assert!((same[0] - same[1]).abs() < 1e-3, "{same:?}");
    }

    #[test]
    fn hybrid_pair_defaults() {
        let (ds, _) = synthetic(4);
        let mut models = ds.models.clone();
        models[0].mean_quality = Some(0.5);
        models[1].mean_quality = Some(0.7);
        models[2].mean_quality = Some(0.6);
        // Large = best (right); small = best among the cheaper ones (meh).
        assert_eq!(hybrid_pair(&models, None, None).unwrap(), (2, 1));
        assert!(hybrid_pair(&models, Some("nope"), None).is_err());
    }

    #[test]
    fn timestamp_format() {
        let t = timestamp();
        assert_eq!(t.len(), 16);
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}
