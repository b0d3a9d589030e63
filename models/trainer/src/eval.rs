//! Evaluation: quality and cost of routers and baselines on a held-out split.
//!
//! For a router, each prompt's choice under a cost weight λ is the model maximising
//! `predicted quality − λ·cost/max cost` (the gateway's `cost_weight` rule); sweeping λ gives
//! the router's quality/cost curve. The hybrid router sweeps its threshold instead, the
//! size routers have one point. Metrics:
//! - mean quality and mean cost (USD per request) at λ = 0 (the hybrid's own threshold);
//! - gap closed: `(q − q_best_single) / (q_oracle − q_best_single)`;
//! - the best quality the curve reaches at no more than the best single model's cost;
//! - AIQ (RouterBench): the area under the non-decreasing upper convex hull of the curve's
//!   (cost, quality) points over the single models' cost range, divided by that range
//!   (quality is 0 left of a router's cheapest point);
//! - on two-model data, APGR (RouteLLM): the mean, over strong-model call shares 0..1, of
//!   the performance gap recovered `(q − q_weak)/(q_strong − q_weak)` when the prompts the
//!   router prefers most for the strong model go to it; and the call share at which 50% of
//!   the gap is recovered.

use routeiq::ml::artifact::HybridMode;
use routeiq::ml::predictor::{LoadedRouter, Predictor};
use serde::Serialize;

use crate::data::Dataset;

/// Cost weights swept for the quality/cost curves.
pub const LAMBDAS: [f64; 19] = [
    0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
    10.0, 100.0,
];

/// A (cost, quality) operating point; `knob` is λ or the threshold that gave it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    pub knob: f64,
    pub cost: f64,
    pub quality: f64,
}

/// The evaluation of one router or baseline.
#[derive(Debug, Clone, Serialize)]
pub struct RouterEval {
    pub name: String,
    /// `router`, `reference`, `single`, `random` or `oracle`.
    pub kind: String,
    pub quality: f64,
    pub cost: f64,
    pub gap_closed: f64,
    /// Best quality on the curve at no more than the best single model's cost.
    pub quality_at_best_single_cost: f64,
    pub gap_closed_at_best_single_cost: f64,
    pub aiq: f64,
    pub apgr: Option<f64>,
    /// Strong-model call share needed to recover 50% of the gap.
    pub cpt50: Option<f64>,
    pub curve: Vec<Point>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub data: String,
    pub prompts: usize,
    pub embedder: String,
    pub notes: Vec<String>,
    pub best_single: String,
    pub best_single_quality: f64,
    pub best_single_cost: f64,
    pub oracle_quality: f64,
    pub rows: Vec<RouterEval>,
}

/// Mean quality and cost of a per-prompt choice.
fn score_choice(data: &Dataset, costs: &[Vec<f64>], choice: &[usize]) -> (f64, f64) {
    let n = choice.len().max(1) as f64;
    let q: f64 = choice
        .iter()
        .enumerate()
        .map(|(i, &j)| f64::from(data.scores[i][j]))
        .sum();
    let c: f64 = choice.iter().enumerate().map(|(i, &j)| costs[i][j]).sum();
    (q / n, c / n)
}

/// Per-prompt choice maximising `q − λ·c/max c` (models with no prediction excluded).
pub fn choose(pred: &[Vec<Option<f64>>], costs: &[Vec<f64>], lambda: f64) -> Vec<usize> {
    pred.iter()
        .zip(costs)
        .map(|(p, c)| {
            let max_c = c.iter().copied().fold(0f64, f64::max);
            let mut best = (f64::NEG_INFINITY, f64::INFINITY, 0usize);
            for (j, q) in p.iter().enumerate() {
                let Some(q) = q else { continue };
                let u = q - if max_c > 0.0 {
                    lambda * c[j] / max_c
                } else {
                    0.0
                };
                if u > best.0 || (u == best.0 && c[j] < best.1) {
                    best = (u, c[j], j);
                }
            }
            best.2
        })
        .collect()
}

/// The non-decreasing upper convex hull of `points` (sorted by cost), as vertices.
pub fn upper_hull(points: &[Point]) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> = points.iter().map(|p| (p.cost, p.quality)).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut hull: Vec<(f64, f64)> = Vec::new();
    for p in pts {
        // Non-decreasing: a point no better than the best so far adds nothing.
        if hull.last().is_some_and(|l| p.1 <= l.1) {
            continue;
        }
        while hull.len() >= 2 {
            let (a, b) = (hull[hull.len() - 2], hull[hull.len() - 1]);
            // Drop b if it lies on or below the segment a→p.
            let cross = (b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0);
            if cross >= 0.0 {
                hull.pop();
            } else {
                break;
            }
        }
        hull.push(p);
    }
    hull
}

/// AIQ of `points` over the cost range `[lo, hi]` (see the module docs).
pub fn aiq(points: &[Point], lo: f64, hi: f64) -> f64 {
    let hull = upper_hull(points);
    if hull.is_empty() || hi <= lo {
        return hull.last().map_or(0.0, |p| p.1);
    }
    // Piecewise-linear value at cost c.
    let value = |c: f64| -> f64 {
        if c < hull[0].0 {
            return 0.0;
        }
        for w in hull.windows(2) {
            if c <= w[1].0 {
                let t = if w[1].0 > w[0].0 {
                    (c - w[0].0) / (w[1].0 - w[0].0)
                } else {
                    1.0
                };
                return w[0].1 + t * (w[1].1 - w[0].1);
            }
        }
        hull[hull.len() - 1].1
    };
    // Exact integral of a piecewise-linear function: integrate between breakpoints.
    let mut xs: Vec<f64> = vec![lo, hi];
    xs.extend(hull.iter().map(|p| p.0).filter(|c| *c > lo && *c < hi));
    if hull[0].0 > lo && hull[0].0 < hi {
        // The step from 0 up to the first point.
        xs.push(hull[0].0 - 1e-12 * (hi - lo));
    }
    xs.sort_by(f64::total_cmp);
    let area: f64 = xs
        .windows(2)
        .map(|w| (w[1] - w[0]) * (value(w[0]) + value(w[1])) / 2.0)
        .sum();
    area / (hi - lo)
}

/// APGR and the call share recovering 50% of the gap, for a strong-preference score per
/// prompt (higher: more worth sending to `strong`).
pub fn apgr(data: &Dataset, preference: &[f64], weak: usize, strong: usize) -> (f64, f64) {
    let n = data.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let qw: f64 = data.scores.iter().map(|r| f64::from(r[weak])).sum::<f64>() / n as f64;
    let qs: f64 = data
        .scores
        .iter()
        .map(|r| f64::from(r[strong]))
        .sum::<f64>()
        / n as f64;
    let gap = qs - qw;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| preference[b].total_cmp(&preference[a]).then(a.cmp(&b)));
    let mut q = qw * n as f64;
    let mut pgr = Vec::with_capacity(n + 1);
    pgr.push(0.0);
    for &i in &order {
        q += f64::from(data.scores[i][strong]) - f64::from(data.scores[i][weak]);
        pgr.push(if gap.abs() > 1e-12 {
            (q / n as f64 - qw) / gap
        } else {
            0.0
        });
    }
    // Trapezoid over shares 0, 1/n, …, 1.
    let area: f64 = pgr.windows(2).map(|w| (w[0] + w[1]) / 2.0).sum::<f64>() / n as f64;
    let cpt = pgr
        .iter()
        .position(|p| *p >= 0.5)
        .map_or(1.0, |k| k as f64 / n as f64);
    (area, cpt)
}

/// A router's predictions on every prompt of the split.
pub struct RouterPredictions {
    pub name: String,
    /// `router` (a trained artifact) or `reference` (a bound computed from labels no router
    /// sees at inference, such as [`task_reference`]).
    pub kind: &'static str,
    /// Predicted quality per prompt per model (`None`: not predicted).
    pub quality: Vec<Vec<Option<f64>>>,
    /// Hybrid: `(small, large, mode, default threshold, value per prompt)`.
    pub hybrid: Option<(usize, usize, HybridMode, f32, Vec<f32>)>,
    /// Size routers: the fixed choice.
    pub fixed: Option<usize>,
}

/// Runs `router` over `x` (one embedding per prompt of `data`).
pub fn predict_all(
    name: &str,
    router: &LoadedRouter,
    data: &Dataset,
    x: &[Vec<f32>],
) -> Result<RouterPredictions, String> {
    let idx: Vec<Option<usize>> = data
        .models
        .iter()
        .map(|m| router.model_index(&m.name))
        .collect();
    let mut quality = Vec::with_capacity(x.len());
    let mut values = Vec::new();
    for v in x {
        let p = router.predict(v, None)?;
        quality.push(idx.iter().map(|i| i.and_then(|i| p.quality[i])).collect());
        if let Some(h) = p.hybrid {
            values.push(h.value);
        }
    }
    let to_data = |i: usize| {
        routeiq::ml::predictor::model_index(&data.models, &router.models[i].name).ok_or_else(|| {
            format!(
                "model '{}' of the router is not in the data",
                router.models[i].name
            )
        })
    };
    let hybrid = match router.predictor() {
        Predictor::Hybrid {
            small,
            large,
            mode,
            threshold,
            ..
        } => Some((
            to_data(*small)?,
            to_data(*large)?,
            *mode,
            *threshold,
            values,
        )),
        _ => None,
    };
    let fixed = match router.strategy {
        routeiq::ml::MlStrategyName::Smallest | routeiq::ml::MlStrategyName::Largest => {
            let largest = router.strategy == routeiq::ml::MlStrategyName::Largest;
            let mut best: Option<(f64, usize)> = None;
            for (j, m) in data.models.iter().enumerate() {
                let Some(s) = m.size_b else { continue };
                let better = best.is_none_or(|(b, _)| if largest { s > b } else { s < b });
                if better {
                    best = Some((s, j));
                }
            }
            Some(best.map(|b| b.1).ok_or("no model has a size")?)
        }
        _ => None,
    };
    Ok(RouterPredictions {
        name: name.to_string(),
        kind: "router",
        quality,
        hybrid,
        fixed,
    })
}

/// The `task-best` reference: each held-out prompt's predicted quality per model is that
/// model's mean quality over the `train` prompts of the prompt's own task (the data's task
/// labels). No router sees task labels at inference, so this is not a router: it is what
/// recognising the task perfectly and knowing nothing else about the prompt is worth, an
/// upper reference for routers whose signal is which task a prompt belongs to. `None` when
/// the held-out prompts carry no task labels; prompts of a task absent from `train` get no
/// prediction for any model (the evaluator then picks the first model for them).
pub fn task_reference(train: &Dataset, val: &Dataset) -> Option<RouterPredictions> {
    if val.tasks.iter().all(Option::is_none) {
        return None;
    }
    let m = train.models.len();
    let mut sums: std::collections::BTreeMap<&str, (Vec<f64>, usize)> = Default::default();
    for (task, row) in train.tasks.iter().zip(&train.scores) {
        let Some(task) = task else { continue };
        let e = sums.entry(task).or_insert_with(|| (vec![0.0; m], 0));
        for (a, s) in e.0.iter_mut().zip(row) {
            *a += f64::from(*s);
        }
        e.1 += 1;
    }
    let quality = val
        .tasks
        .iter()
        .map(|t| match t.as_deref().and_then(|t| sums.get(t)) {
            Some((s, n)) => s.iter().map(|a| Some(a / *n as f64)).collect(),
            None => vec![None; m],
        })
        .collect();
    Some(RouterPredictions {
        name: "task-best (true task labels)".into(),
        kind: "reference",
        quality,
        hybrid: None,
        fixed: None,
    })
}

/// Evaluates routers and baselines on `data`.
pub fn evaluate(
    data: &Dataset,
    embedder: &str,
    routers: &[RouterPredictions],
    seed: u64,
) -> EvalReport {
    let n = data.len();
    let m = data.models.len();
    let costs = data.costs();
    let singles: Vec<(f64, f64)> = (0..m)
        .map(|j| score_choice(data, &costs, &vec![j; n]))
        .collect();
    let best = (0..m)
        .max_by(|&a, &b| {
            singles[a]
                .0
                .total_cmp(&singles[b].0)
                .then(singles[b].1.total_cmp(&singles[a].1))
        })
        .unwrap_or(0);
    let (q_best, c_best) = singles.get(best).copied().unwrap_or((0.0, 0.0));
    // Oracle: the best model per prompt, the cheapest among ties.
    let oracle_choice: Vec<usize> = (0..n)
        .map(|i| {
            let mut b = 0;
            for j in 1..m {
                let (s, sb) = (data.scores[i][j], data.scores[i][b]);
                if s > sb || (s == sb && costs[i][j] < costs[i][b]) {
                    b = j;
                }
            }
            b
        })
        .collect();
    let (q_oracle, c_oracle) = score_choice(data, &costs, &oracle_choice);
    let lo = singles.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
    let hi = singles.iter().map(|s| s.1).fold(0f64, f64::max);
    let gap = |q: f64| {
        if q_oracle > q_best {
            (q - q_best) / (q_oracle - q_best)
        } else {
            0.0
        }
    };
    let two = m == 2;
    let (weak, strong) = if two && singles[0].0 > singles[1].0 {
        (1, 0)
    } else {
        (0, 1)
    };

    let finish =
        |name: String, kind: &str, head: Point, curve: Vec<Point>, pref: Option<Vec<f64>>| {
            let under = curve
                .iter()
                .filter(|p| p.cost <= c_best * (1.0 + 1e-9))
                .map(|p| p.quality)
                .fold(f64::NEG_INFINITY, f64::max);
            let under = if under.is_finite() { under } else { 0.0 };
            let (apgr_v, cpt) = match (&pref, two) {
                (Some(p), true) => {
                    let (a, c) = apgr(data, p, weak, strong);
                    (Some(a), Some(c))
                }
                _ => (None, None),
            };
            RouterEval {
                name,
                kind: kind.to_string(),
                quality: head.quality,
                cost: head.cost,
                gap_closed: gap(head.quality),
                quality_at_best_single_cost: under,
                gap_closed_at_best_single_cost: gap(under),
                aiq: aiq(&curve, lo, hi),
                apgr: apgr_v,
                cpt50: cpt,
                curve,
            }
        };

    let mut rows = Vec::new();
    for r in routers {
        if let Some(j) = r.fixed {
            let (q, c) = singles[j];
            let p = Point {
                knob: 0.0,
                cost: c,
                quality: q,
            };
            rows.push(finish(r.name.clone(), r.kind, p, vec![p], None));
            continue;
        }
        if let Some((small, large, mode, threshold, values)) = &r.hybrid {
            let to_small = |t: f64, v: f32| match mode {
                HybridMode::Deterministic => f64::from(v) <= t,
                HybridMode::Probabilistic => f64::from(v) >= t,
            };
            let choice_at = |t: f64| -> Vec<usize> {
                values
                    .iter()
                    .map(|v| if to_small(t, *v) { *small } else { *large })
                    .collect()
            };
            let (q, c) = score_choice(data, &costs, &choice_at(f64::from(*threshold)));
            let head = Point {
                knob: f64::from(*threshold),
                cost: c,
                quality: q,
            };
            let mut sorted: Vec<f64> = values.iter().map(|v| f64::from(*v)).collect();
            sorted.sort_by(f64::total_cmp);
            let mut curve = Vec::new();
            for k in 0..=20 {
                let t = if sorted.is_empty() {
                    0.0
                } else {
                    let pos = (k * (sorted.len() - 1)) / 20;
                    sorted[pos]
                };
                for t in [t - 1e-6, t + 1e-6] {
                    let (q, c) = score_choice(data, &costs, &choice_at(t));
                    curve.push(Point {
                        knob: t,
                        cost: c,
                        quality: q,
                    });
                }
            }
            curve.push(head);
            // Preference for the large model: the predicted gap, or 1 − P(small is enough).
            let pref: Vec<f64> = values
                .iter()
                .map(|v| match mode {
                    HybridMode::Deterministic => f64::from(*v),
                    HybridMode::Probabilistic => 1.0 - f64::from(*v),
                })
                .collect();
            let pref = if two && *large == strong {
                Some(pref)
            } else {
                None
            };
            rows.push(finish(r.name.clone(), r.kind, head, curve, pref));
            continue;
        }
        let curve: Vec<Point> = LAMBDAS
            .iter()
            .map(|&l| {
                let (q, c) = score_choice(data, &costs, &choose(&r.quality, &costs, l));
                Point {
                    knob: l,
                    cost: c,
                    quality: q,
                }
            })
            .collect();
        let pref: Vec<f64> = r
            .quality
            .iter()
            .map(|p| {
                p.get(strong).copied().flatten().unwrap_or(0.0)
                    - p.get(weak).copied().flatten().unwrap_or(0.0)
            })
            .collect();
        rows.push(finish(r.name.clone(), r.kind, curve[0], curve, Some(pref)));
    }
    for (j, (q, c)) in singles.iter().enumerate() {
        let p = Point {
            knob: 0.0,
            cost: *c,
            quality: *q,
        };
        // A single model has no call-share curve: no APGR.
        rows.push(finish(
            data.models[j].name.clone(),
            "single",
            p,
            vec![p],
            None,
        ));
    }
    // Random: a uniformly random model per prompt (seeded), and its expected value.
    let mut rng = fastrand::Rng::with_seed(seed);
    let random_choice: Vec<usize> = (0..n).map(|_| rng.usize(..m.max(1))).collect();
    let (qr, cr) = score_choice(data, &costs, &random_choice);
    let rp = Point {
        knob: 0.0,
        cost: cr,
        quality: qr,
    };
    let random_pref: Vec<f64> = (0..n).map(|_| rng.f64()).collect();
    rows.push(finish(
        "random".into(),
        "random",
        rp,
        vec![rp],
        two.then_some(random_pref),
    ));
    let op = Point {
        knob: 0.0,
        cost: c_oracle,
        quality: q_oracle,
    };
    let oracle_pref: Vec<f64> = (0..n)
        .map(|i| f64::from(data.scores[i][strong]) - f64::from(data.scores[i][weak]))
        .collect();
    rows.push(finish(
        "oracle".into(),
        "oracle",
        op,
        vec![op],
        two.then_some(oracle_pref),
    ));

    EvalReport {
        data: data.name.clone(),
        prompts: n,
        embedder: embedder.to_string(),
        notes: data.notes.clone(),
        best_single: data
            .models
            .get(best)
            .map(|m| m.name.clone())
            .unwrap_or_default(),
        best_single_quality: q_best,
        best_single_cost: c_best,
        oracle_quality: q_oracle,
        rows,
    }
}

/// The report as markdown: the summary table, then each router's curve.
pub fn markdown(r: &EvalReport) -> String {
    let two = r.rows.iter().any(|row| row.apgr.is_some());
    let mut s = format!(
        "# Router evaluation: {} ({} held-out prompts, embedder `{}`)\n\n",
        r.data, r.prompts, r.embedder
    );
    for n in &r.notes {
        s.push_str(&format!("- {n}\n"));
    }
    s.push_str(&format!(
        "- best single model: `{}` (quality {:.4}, cost ${:.4} per 1k requests); oracle quality {:.4}\n",
        r.best_single,
        r.best_single_quality,
        r.best_single_cost * 1000.0,
        r.oracle_quality
    ));
    s.push_str("- quality and cost at λ = 0 (hybrid: its threshold); `q ≤ best cost`: best quality on the curve at no more than the best single model's cost; gap closed = share of the best-single → oracle gap\n\n");
    s.push_str("| router | kind | quality | cost $/1k req | gap closed | q ≤ best cost | gap closed ≤ best cost | AIQ |");
    if two {
        s.push_str(" APGR | CPT(50%) |");
    }
    s.push('\n');
    s.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    if two {
        s.push_str(" ---: | ---: |");
    }
    s.push('\n');
    for row in &r.rows {
        s.push_str(&format!(
            "| {} | {} | {:.4} | {:.4} | {:+.3} | {:.4} | {:+.3} | {:.4} |",
            row.name,
            row.kind,
            row.quality,
            row.cost * 1000.0,
            row.gap_closed,
            row.quality_at_best_single_cost,
            row.gap_closed_at_best_single_cost,
            row.aiq
        ));
        if two {
            match (row.apgr, row.cpt50) {
                (Some(a), Some(c)) => s.push_str(&format!(" {a:.4} | {:.1}% |", c * 100.0)),
                _ => s.push_str(" | |"),
            }
        }
        s.push('\n');
    }
    s.push_str("\n## Quality/cost curves (λ = cost weight; hybrid: threshold)\n\n");
    for row in r.rows.iter().filter(|row| row.curve.len() > 1) {
        s.push_str(&format!("**{}**: ", row.name));
        let pts: Vec<String> = row
            .curve
            .iter()
            .take(40)
            .map(|p| {
                format!(
                    "({:.3}: q {:.3}, ${:.3})",
                    p.knob,
                    p.quality,
                    p.cost * 1000.0
                )
            })
            .collect();
        s.push_str(&pts.join(" "));
        s.push_str("\n\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use routeiq::ml::artifact::ModelSpec;

    fn pt(cost: f64, quality: f64) -> Point {
        Point {
            knob: 0.0,
            cost,
            quality,
        }
    }

    #[test]
    fn aiq_hand_computed() {
        // Hull (1, 0.5)–(3, 0.9); (2, 0.6) lies below it. Area over [1, 3] = 2 · 0.7.
        let pts = [pt(1.0, 0.5), pt(3.0, 0.9), pt(2.0, 0.6)];
        assert!((aiq(&pts, 1.0, 3.0) - 0.7).abs() < 1e-9);
        // A single point at cost 2 with quality 0.8 over [1, 3]: 0 until 2, then 0.8.
        assert!((aiq(&[pt(2.0, 0.8)], 1.0, 3.0) - 0.4).abs() < 1e-6);
        // Non-decreasing: a dearer, worse point changes nothing.
        let pts = [pt(1.0, 0.5), pt(2.0, 0.9), pt(3.0, 0.2)];
        // 0.5→0.9 over [1,2] (area 0.7), then flat 0.9 over [2,3] (0.9): (0.7 + 0.9)/2.
        assert!((aiq(&pts, 1.0, 3.0) - 0.8).abs() < 1e-9);
        assert_eq!(upper_hull(&pts), vec![(1.0, 0.5), (2.0, 0.9)]);
    }

    fn two_model(scores: &[[f32; 2]]) -> Dataset {
        Dataset {
            name: "t".into(),
            models: ["weak", "strong"]
                .iter()
                .map(|n| ModelSpec {
                    name: n.to_string(),
                    size_b: None,
                    input_price: Some(1.0),
                    output_price: Some(1.0),
                    mean_quality: None,
                })
                .collect(),
            prompts: (0..scores.len()).map(|i| format!("p{i}")).collect(),
            scores: scores.iter().map(|s| s.to_vec()).collect(),
            tasks: vec![None; scores.len()],
            notes: Vec::new(),
        }
    }

    #[test]
    fn apgr_hand_computed() {
        // Weak right on prompts 0,1; strong right on 0,1,2,3. q_weak = 0.5, q_strong = 1.
        let d = two_model(&[[1.0, 1.0], [1.0, 1.0], [0.0, 1.0], [0.0, 1.0]]);
        // A perfect router prefers prompts 2 and 3: PGR at shares 0, ¼, ½, ¾, 1 is
        // 0, 0.5, 1, 1, 1 → trapezoid area (0.25+0.75+1+1)/4 = 0.75; 50% at share ¼.
        let (a, cpt) = apgr(&d, &[0.0, 0.0, 1.0, 1.0], 0, 1);
        assert!((a - 0.75).abs() < 1e-9, "{a}");
        assert!((cpt - 0.25).abs() < 1e-9);
        // The worst order (useless prompts first): PGR 0, 0, 0, 0.5, 1 → (0+0+0.25+0.75)/4.
        let (a, cpt) = apgr(&d, &[1.0, 1.0, 0.0, 0.0], 0, 1);
        assert!((a - 0.25).abs() < 1e-9, "{a}");
        assert!((cpt - 0.75).abs() < 1e-9);
    }

    #[test]
    fn task_reference_uses_train_means_of_the_prompts_task() {
        // Train: task a → weak right twice, strong once; task b → only strong right.
        let mut train = two_model(&[[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]);
        train.tasks = vec![Some("a".into()), Some("a".into()), Some("b".into())];
        let mut val = two_model(&[[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]);
        val.tasks = vec![Some("b".into()), Some("a".into()), Some("c".into())];
        let r = task_reference(&train, &val).expect("labelled");
        assert_eq!(r.kind, "reference");
        assert_eq!(r.quality[0], vec![Some(0.0), Some(1.0)]);
        assert_eq!(r.quality[1], vec![Some(1.0), Some(0.5)]);
        assert_eq!(r.quality[2], vec![None, None], "task c is not in train");
        assert_eq!(
            choose(&r.quality[..2], &vec![vec![1.0, 1.0]; 2], 0.0),
            vec![1, 0]
        );
        // No labels on the held-out side: no reference.
        val.tasks = vec![None; 3];
        assert!(task_reference(&train, &val).is_none());
    }

    #[test]
    fn choose_trades_cost() {
        let pred = vec![vec![Some(0.9), Some(0.8), None]];
        let costs = vec![vec![10.0, 1.0, 0.0]];
        assert_eq!(choose(&pred, &costs, 0.0), vec![0]);
        // λ = 0.5: 0.9 − 0.5 = 0.4 vs 0.8 − 0.05 = 0.75.
        assert_eq!(choose(&pred, &costs, 0.5), vec![1]);
    }

    #[test]
    fn evaluate_reports_baselines_and_gap() {
        let d = two_model(&[[1.0, 1.0], [1.0, 1.0], [0.0, 1.0], [0.0, 1.0]]);
        let perfect = RouterPredictions {
            kind: "router",
            name: "perfect".into(),
            quality: d
                .scores
                .iter()
                .map(|r| r.iter().map(|s| Some(f64::from(*s))).collect())
                .collect(),
            hybrid: None,
            fixed: None,
        };
        let r = evaluate(&d, "e", &[perfect], 1);
        let row = |n: &str| r.rows.iter().find(|x| x.name == n).unwrap();
        assert_eq!(r.best_single, "strong");
        assert!((r.oracle_quality - 1.0).abs() < 1e-9);
        // Equal prices here: the best single already reaches the oracle, gap 0 → gap closed 0.
        assert!((row("perfect").quality - 1.0).abs() < 1e-9);
        assert!(row("oracle").apgr.is_some());
        assert!(markdown(&r).contains("| perfect | router |"));
    }
}
