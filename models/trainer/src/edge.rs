//! `routeiq train-edge`: the edge Worker's tier classifier (see `routeiq::edge::model`).
//!
//! Labels come from the routing data and from what the gateway does with a tier: for each
//! tier, the model the gateway would pick for it (the first of `rank_for_tier` over the
//! data's models, profile auto); a prompt's label is the tier whose pick is the cheapest
//! among the picks scoring within `--margin` of the best pick (a prompt no pick answers is
//! `simple`: paying more does not help), and a prompt labelled `complex` whose task is
//! maths or logic (LLMRouter's `task_name`: math, gsm8k, gpqa, mgsm, logic grids) is
//! `reasoning`. Task names are only used for labels, never as features.
//!
//! The model is multinomial logistic regression over the hashed n-grams and the cheap
//! signals, fitted by AdaGrad with L2 and class weights ∝ 1/√frequency, then quantised to
//! int8. The report compares, on the held-out split, routing by the predicted tier
//! (`rank_for_tier` over the data's models, as the gateway ranks a hinted tier) with the
//! best single model, always-`medium`, and the oracle.

// Per-class loops over fixed-size arrays read best with an index.
#![allow(clippy::needless_range_loop)]

use std::path::PathBuf;

use clap::Args;
use routeiq::edge::model::{CLASSES, EdgeModel, FloatWeights, ngram_features, softmax};
use routeiq::edge::signals::{N_FEATURES, Signals};
use routeiq::edge::{ClientGeo, EdgeClassifier, EdgeConfig, PromptView};
use routeiq::ml::centroid::{Profile, Tier, rank_for_tier};
use routeiq::ml::choice::CandidateModel;
use serde_json::json;

use crate::TrainError;
use crate::cli::{DataArgs, load_data};
use crate::data::{COMPLETION_TOKENS, Dataset};

/// `routeiq train-edge`.
#[derive(Debug, Clone, Args)]
pub struct EdgeTrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// The model file to write (its report goes beside it: eval.md, manifest.json).
    #[arg(long, default_value = "models/edge/edge-tier-v1.bin")]
    pub out: PathBuf,
    /// Hash buckets (a power of two).
    #[arg(long, default_value_t = 16_384)]
    pub buckets: usize,
    #[arg(long, default_value_t = 12)]
    pub epochs: usize,
    #[arg(long, default_value_t = 0.2)]
    pub learning_rate: f32,
    /// L2 penalty per update.
    #[arg(long, default_value_t = 1e-5)]
    pub l2: f32,
    /// A model is adequate on a prompt when it scores within this of the best.
    #[arg(long, default_value_t = 0.05)]
    pub margin: f32,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Class weights ∝ frequency^-balance (0: none, 1: fully balanced).
    #[arg(long, default_value_t = 0.5)]
    pub balance: f32,
}

const REASONING_TASKS: [&str; 5] = ["math", "gsm8k", "gpqa", "mgsm", "logicgrid"];

/// Tier labels for every prompt (see the module docs): for each tier, the model the
/// gateway would pick for it ([`tier_choice`]); the label is the tier whose pick is the
/// cheapest among those scoring within `margin` of the best pick.
pub fn labels(d: &Dataset, margin: f32) -> Vec<Tier> {
    let cands = candidates(d);
    (0..d.len())
        .map(|i| {
            let row = &d.scores[i];
            let picks: Vec<(Tier, usize)> = [Tier::Simple, Tier::Medium, Tier::Complex]
                .into_iter()
                .map(|t| (t, tier_choice(d, i, t, &cands)))
                .collect();
            let best = picks.iter().map(|(_, j)| row[*j]).fold(0f32, f32::max);
            if best <= margin {
                return Tier::Simple;
            }
            let tier = picks
                .iter()
                .filter(|(_, j)| row[*j] >= best - margin)
                .min_by(|a, b| d.cost(i, a.1).total_cmp(&d.cost(i, b.1)))
                .map_or(Tier::Medium, |(t, _)| *t);
            let reasoning_task = d.tasks.get(i).and_then(|t| t.as_deref()).is_some_and(|t| {
                let t = t.to_ascii_lowercase();
                REASONING_TASKS.iter().any(|r| t.contains(r))
            });
            if tier == Tier::Complex && reasoning_task {
                Tier::Reasoning
            } else {
                tier
            }
        })
        .collect()
}

fn class_of(t: Tier) -> usize {
    Tier::ALL.iter().position(|x| *x == t).unwrap_or(1)
}

/// One training prompt's features.
pub struct Example {
    pub ngrams: Vec<(u32, f32)>,
    pub signals: [f32; N_FEATURES],
}

/// Features of a prompt read as a one-turn chat request.
pub fn featurize(prompt: &str, buckets: usize) -> Example {
    let view = PromptView {
        text: prompt
            .chars()
            .take(routeiq::edge::prompt::MAX_TEXT_CHARS)
            .collect(),
        total_chars: prompt.chars().count(),
        messages: 1,
        user_turns: 1,
        ..PromptView::default()
    };
    Example {
        ngrams: ngram_features(&view.text, buckets),
        signals: Signals::of(&view).features(),
    }
}

/// Fits the float weights.
pub fn fit(
    examples: &[(Example, usize)],
    args: &EdgeTrainArgs,
) -> Result<FloatWeights, TrainError> {
    if !args.buckets.is_power_of_two() || args.buckets < 64 {
        return Err(TrainError::Config(format!(
            "--buckets {} must be a power of two of at least 64",
            args.buckets
        )));
    }
    let mut counts = [0usize; CLASSES];
    for (_, y) in examples {
        counts[*y] += 1;
    }
    let n = examples.len().max(1) as f32;
    let class_w: Vec<f32> = counts
        .iter()
        .map(|&c| {
            if c == 0 {
                0.0
            } else {
                (n / (CLASSES as f32 * c as f32)).powf(args.balance)
            }
        })
        .collect();
    let mut w = FloatWeights {
        buckets: args.buckets,
        bias: [0.0; CLASSES],
        signal_w: vec![[0.0; CLASSES]; N_FEATURES],
        ngram_w: vec![[0.0; CLASSES]; args.buckets],
    };
    // AdaGrad accumulators.
    let mut g_bias = [1e-8f32; CLASSES];
    let mut g_sig = [[1e-8f32; CLASSES]; N_FEATURES];
    let mut g_ng = vec![[1e-8f32; CLASSES]; args.buckets];
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let lr = args.learning_rate;
    for _ in 0..args.epochs {
        rng.shuffle(&mut order);
        for &i in &order {
            let (x, y) = &examples[i];
            let p = softmax(w.logits(&x.ngrams, &x.signals));
            let mut grad = [0f32; CLASSES];
            for c in 0..CLASSES {
                grad[c] = (p[c] - if c == *y { 1.0 } else { 0.0 }) * class_w[*y];
            }
            for c in 0..CLASSES {
                g_bias[c] += grad[c] * grad[c];
                w.bias[c] -= lr * grad[c] / g_bias[c].sqrt();
            }
            for (s, f) in x.signals.iter().enumerate() {
                for c in 0..CLASSES {
                    let g = grad[c] * f + args.l2 * w.signal_w[s][c];
                    g_sig[s][c] += g * g;
                    w.signal_w[s][c] -= lr * g / g_sig[s][c].sqrt();
                }
            }
            for (b, v) in &x.ngrams {
                let b = *b as usize;
                for c in 0..CLASSES {
                    let g = grad[c] * v + args.l2 * w.ngram_w[b][c];
                    g_ng[b][c] += g * g;
                    w.ngram_w[b][c] -= lr * g / g_ng[b][c].sqrt();
                }
            }
        }
    }
    Ok(w)
}

/// Routing figures of one policy on the validation split.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PolicyRow {
    pub policy: String,
    pub quality: f64,
    /// USD per 1,000 requests.
    pub cost_per_1k: f64,
}

fn candidates(d: &Dataset) -> Vec<CandidateModel> {
    d.models.iter().map(CandidateModel::from_spec).collect()
}

/// Mean quality and cost when each prompt `i` goes to `choice[i]`.
fn score(d: &Dataset, choice: &[usize], policy: &str) -> PolicyRow {
    let n = choice.len().max(1) as f64;
    let (mut q, mut c) = (0.0, 0.0);
    for (i, &j) in choice.iter().enumerate() {
        q += f64::from(d.scores[i][j]);
        c += d.cost(i, j);
    }
    PolicyRow {
        policy: policy.into(),
        quality: q / n,
        cost_per_1k: c / n * 1000.0,
    }
}

/// The model the gateway would pick for a tier (first of `rank_for_tier`, profile auto).
fn tier_choice(d: &Dataset, i: usize, tier: Tier, cands: &[CandidateModel]) -> usize {
    let tokens = routeiq::openai::estimate_tokens(&d.prompts[i]);
    let costs: Vec<Option<f64>> = cands
        .iter()
        .map(|c| c.expected_cost(tokens, COMPLETION_TOKENS))
        .collect();
    rank_for_tier(tier, Profile::Auto, cands, &costs, COMPLETION_TOKENS)
        .first()
        .map_or(0, |r| r.index)
}

/// What `run` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EdgeReport {
    pub train_prompts: usize,
    pub val_prompts: usize,
    pub accuracy: f64,
    /// Accuracy on the validation prompts the model is at least 0.6 confident about, and
    /// their share.
    pub confident_accuracy: f64,
    pub confident_share: f64,
    pub label_counts: [usize; CLASSES],
    pub confusion: [[usize; CLASSES]; CLASSES],
    pub policies: Vec<PolicyRow>,
    pub file_bytes: usize,
    pub sha256: String,
}

/// Trains, evaluates on the held-out split, writes the model file, `manifest.json` and
/// `eval.md` beside it, and returns the report.
pub fn run(args: &EdgeTrainArgs) -> Result<EdgeReport, TrainError> {
    let dir = args
        .data
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from("../shared/data/llmrouter"));
    let all = load_data(&dir)?;
    let fraction = args.data.val_fraction.unwrap_or(0.2);
    let salt = args.data.split_salt.clone().unwrap_or_default();
    let (train_part, val_part) = all.split(fraction, &salt);
    let train_labels = labels(&train_part, args.margin);
    let val_labels = labels(&val_part, args.margin);
    let examples: Vec<(Example, usize)> = train_part
        .prompts
        .iter()
        .zip(&train_labels)
        .map(|(p, t)| (featurize(p, args.buckets), class_of(*t)))
        .collect();
    let weights = fit(&examples, args)?;
    let bytes = weights.to_bytes();
    let model = EdgeModel::from_bytes(&bytes).map_err(|e| TrainError::Artifact(e.to_string()))?;
    let classifier = EdgeClassifier::new(model.clone(), EdgeConfig::default());

    let mut label_counts = [0usize; CLASSES];
    for t in &train_labels {
        label_counts[class_of(*t)] += 1;
    }
    let cands = candidates(&val_part);
    let mut confusion = [[0usize; CLASSES]; CLASSES];
    let (mut confident, mut confident_right) = (0usize, 0usize);
    let mut edge_choice = Vec::new();
    let mut medium_choice = Vec::new();
    let mut simple_choice = Vec::new();
    let mut label_choice = Vec::new();
    for (i, prompt) in val_part.prompts.iter().enumerate() {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": prompt}]});
        let hint = classifier
            .classify(body.to_string().as_bytes(), &ClientGeo::default())
            .ok_or_else(|| {
                TrainError::Data("a validation prompt could not be classified".into())
            })?;
        let truth = class_of(val_labels[i]);
        let predicted = class_of(hint.tier);
        confusion[truth][predicted] += 1;
        if hint.confidence >= 0.6 {
            confident += 1;
            confident_right += usize::from(truth == predicted);
        }
        edge_choice.push(tier_choice(&val_part, i, hint.tier, &cands));
        medium_choice.push(tier_choice(&val_part, i, Tier::Medium, &cands));
        simple_choice.push(tier_choice(&val_part, i, Tier::Simple, &cands));
        label_choice.push(tier_choice(&val_part, i, val_labels[i], &cands));
    }
    let n = val_part.len().max(1) as f64;
    let right: usize = (0..CLASSES).map(|c| confusion[c][c]).sum();
    let mean = val_part.mean_quality();
    let best = (0..mean.len())
        .max_by(|&a, &b| mean[a].total_cmp(&mean[b]))
        .unwrap_or(0);
    let oracle: Vec<usize> = val_part
        .scores
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let top = row.iter().copied().fold(0f32, f32::max);
            (0..row.len())
                .filter(|&j| row[j] >= top)
                .min_by(|&a, &b| val_part.cost(i, a).total_cmp(&val_part.cost(i, b)))
                .unwrap_or(0)
        })
        .collect();
    let policies = vec![
        score(&val_part, &edge_choice, "edge tier (this model)"),
        score(&val_part, &label_choice, "true tier (label oracle)"),
        score(&val_part, &simple_choice, "always simple"),
        score(&val_part, &medium_choice, "always medium"),
        score(
            &val_part,
            &vec![best; val_part.len()],
            &format!("best single ({})", val_part.models[best].name),
        ),
        score(&val_part, &oracle, "oracle (cheapest best)"),
    ];
    let report = EdgeReport {
        train_prompts: train_part.len(),
        val_prompts: val_part.len(),
        accuracy: right as f64 / n,
        confident_accuracy: confident_right as f64 / confident.max(1) as f64,
        confident_share: confident as f64 / n,
        label_counts,
        confusion,
        policies,
        file_bytes: bytes.len(),
        sha256: model.sha256().to_string(),
    };
    write_outputs(args, &dir, fraction, &salt, &bytes, &report)?;
    Ok(report)
}

fn write_outputs(
    args: &EdgeTrainArgs,
    data: &std::path::Path,
    fraction: f64,
    salt: &str,
    bytes: &[u8],
    report: &EdgeReport,
) -> Result<(), TrainError> {
    let io =
        |p: &std::path::Path, e: std::io::Error| TrainError::Io(format!("{}: {e}", p.display()));
    let parent = args
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
    std::fs::write(&args.out, bytes).map_err(|e| io(&args.out, e))?;
    let file = args
        .out
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let manifest = json!({
        "format": "routeiq-edge-model/1",
        "file": file,
        "sha256": report.sha256,
        "bytes": report.file_bytes,
        "buckets": args.buckets,
        "classes": Tier::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "trained_on": data.display().to_string(),
        "val_fraction": fraction,
        "salt": salt,
        "margin": args.margin,
        "epochs": args.epochs,
        "seed": args.seed,
        "report": report,
    });
    let mpath = parent.join("manifest.json");
    let text =
        serde_json::to_string_pretty(&manifest).map_err(|e| TrainError::Io(e.to_string()))?;
    std::fs::write(&mpath, text + "\n").map_err(|e| io(&mpath, e))?;
    let epath = parent.join("eval.md");
    std::fs::write(&epath, markdown(report)).map_err(|e| io(&epath, e))?;
    Ok(())
}

/// The report as markdown.
pub fn markdown(r: &EdgeReport) -> String {
    let mut s = String::new();
    s.push_str("# Edge tier classifier: held-out evaluation\n\n");
    s.push_str(&format!(
        "{} training prompts, {} held out. Accuracy {:.3}; on the {:.1}% of prompts with \
         confidence ≥ 0.6, {:.3}.\n\n",
        r.train_prompts,
        r.val_prompts,
        r.accuracy,
        r.confident_share * 100.0,
        r.confident_accuracy
    ));
    s.push_str("Training labels (simple, medium, complex, reasoning): ");
    s.push_str(
        &r.label_counts
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    );
    s.push_str("\n\nConfusion (rows: true tier, columns: predicted):\n\n| | simple | medium | complex | reasoning |\n| --- | --- | --- | --- | --- |\n");
    for (t, row) in Tier::ALL.iter().zip(&r.confusion) {
        s.push_str(&format!(
            "| {} | {} |\n",
            t.as_str(),
            row.iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" | ")
        ));
    }
    s.push_str("\nRouting by tier (the gateway's `rank_for_tier`, profile auto, over the data's models):\n\n| policy | mean quality | USD / 1k requests |\n| --- | --- | --- |\n");
    for p in &r.policies {
        s.push_str(&format!(
            "| {} | {:.3} | {:.4} |\n",
            p.policy, p.quality, p.cost_per_1k
        ));
    }
    s.push_str(&format!(
        "\nModel file: {} bytes, sha256 `{}`.\n",
        r.file_bytes, r.sha256
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use routeiq::edge::model::argmax;
    use routeiq::ml::artifact::ModelSpec;

    fn spec(name: &str, price: f64) -> ModelSpec {
        ModelSpec {
            name: name.into(),
            size_b: None,
            input_price: Some(price),
            output_price: Some(price),
            mean_quality: None,
        }
    }

    fn data() -> Dataset {
        Dataset {
            name: "t".into(),
            models: vec![spec("cheap", 0.1), spec("mid", 0.6), spec("big", 1.8)],
            prompts: vec!["a".into(), "b".into(), "c".into(), "d".into(), "e".into()],
            scores: vec![
                vec![1.0, 1.0, 1.0],
                vec![0.0, 1.0, 1.0],
                vec![0.0, 0.0, 1.0],
                vec![0.0, 0.0, 0.0],
                vec![0.0, 0.0, 1.0],
            ],
            tasks: vec![None, None, None, None, Some("gsm8k".into())],
            notes: vec![],
        }
    }

    #[test]
    fn labels_are_the_cheapest_adequate_band() {
        let d = data();
        assert_eq!(
            labels(&d, 0.05),
            vec![
                Tier::Simple,
                Tier::Medium,
                Tier::Complex,
                Tier::Simple,
                Tier::Reasoning
            ]
        );
    }

    #[test]
    fn fitting_separates_separable_prompts() {
        let args = EdgeTrainArgs {
            data: DataArgs {
                data: None,
                val_fraction: None,
                split_salt: None,
                cache_dir: None,
                no_cache: true,
                model_dir: None,
                quiet: true,
            },
            out: PathBuf::from("unused"),
            buckets: 1024,
            epochs: 20,
            learning_rate: 0.2,
            l2: 1e-6,
            margin: 0.05,
            seed: 1,
            balance: 0.5,
        };
        let simple = [
            "what is the capital of peru",
            "translate hello to french",
            "who wrote hamlet",
        ];
        let hard = [
            "write a rust function implementing a lock-free queue",
            "implement a b-tree in c++ with deletion",
            "write a python parser for a lisp dialect",
        ];
        let mut ex = Vec::new();
        for p in simple {
            ex.push((featurize(p, 1024), 0));
        }
        for p in hard {
            ex.push((featurize(p, 1024), 2));
        }
        let w = fit(&ex, &args).unwrap();
        let m = EdgeModel::from_bytes(&w.to_bytes()).unwrap();
        for (p, want) in [
            ("who wrote the odyssey", Tier::Simple),
            ("write a rust function for a b-tree", Tier::Complex),
        ] {
            let x = featurize(p, 1024);
            let view = PromptView {
                text: p.into(),
                total_chars: p.len(),
                messages: 1,
                user_turns: 1,
                ..PromptView::default()
            };
            let (t, _) = argmax(&m.predict(p, &Signals::of(&view)));
            assert_eq!(t, want, "{p}");
            assert!(!x.ngrams.is_empty());
        }
    }
}
