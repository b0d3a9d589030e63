//! Routing data: prompts with a quality per model, and the models' sizes and prices.
//!
//! Two formats are read:
//! - LLMRouter: `train.json` (a list of `{"question", "scores": {model: 0..1}}`) plus
//!   `default_llm.json` (`{model: {"size": "7B", "input_price", "output_price"}}`, prices
//!   in USD per million tokens). Optionally `query_*.jsonl` with `task_name` per query.
//! - RouteLLM: a directory of CSVs with a `prompt` column and one 0/1 (or `True`/`False`)
//!   column per model (its responses on MMLU). These files carry no prices; the list prices
//!   in [`ROUTELLM_PRICES`] are used and the report says so.
//!
//! Costs: the data has no token counts, so prompt tokens are estimated from the text
//! (`routeiq::openai::estimate_tokens`, ~4 characters a token) and every completion is
//! taken as [`COMPLETION_TOKENS`] tokens.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use routeiq::ml::artifact::ModelSpec;
use routeiq::ml::routing::parse_size_b;
use sha2::{Digest, Sha256};

use crate::TrainError;

/// Completion tokens assumed per request for costs.
pub const COMPLETION_TOKENS: u64 = 256;

/// List prices (USD per million input/output tokens) for RouteLLM's MMLU models, whose
/// data files carry none: GPT-4 Turbo (1106-preview) as OpenAI lists it, Mixtral 8x7B as
/// hosted APIs listed it (Together AI).
pub const ROUTELLM_PRICES: [(&str, f64, f64, Option<f64>); 2] = [
    ("gpt-4-1106-preview", 10.0, 30.0, None),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", 0.6, 0.6, Some(46.7)),
];

/// A routing dataset: `scores[i][j]` is model `j`'s quality (0..1) on prompt `i`.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub name: String,
    pub models: Vec<ModelSpec>,
    pub prompts: Vec<String>,
    pub scores: Vec<Vec<f32>>,
    /// Task label per prompt, when known (reporting only; never a feature).
    pub tasks: Vec<Option<String>>,
    /// Notes for the report (e.g. where prices came from).
    pub notes: Vec<String>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }

    /// Expected USD cost of prompt `i` on model `j`.
    pub fn cost(&self, i: usize, j: usize) -> f64 {
        let tokens = routeiq::openai::estimate_tokens(&self.prompts[i]);
        model_cost(&self.models[j], tokens, COMPLETION_TOKENS)
    }

    /// Cost matrix `n × m`.
    pub fn costs(&self) -> Vec<Vec<f64>> {
        (0..self.len())
            .map(|i| (0..self.models.len()).map(|j| self.cost(i, j)).collect())
            .collect()
    }

    /// The rows `idx`, as a new dataset.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        Dataset {
            name: self.name.clone(),
            models: self.models.clone(),
            prompts: idx.iter().map(|&i| self.prompts[i].clone()).collect(),
            scores: idx.iter().map(|&i| self.scores[i].clone()).collect(),
            tasks: idx
                .iter()
                .map(|&i| self.tasks.get(i).cloned().flatten())
                .collect(),
            notes: self.notes.clone(),
        }
    }

    /// Splits deterministically by a hash of each prompt: a prompt is in the validation
    /// part when `sha256(salt + prompt)` falls in the first `fraction` of the hash range.
    /// The same prompt always lands on the same side, whatever the file order.
    pub fn split(&self, fraction: f64, salt: &str) -> (Dataset, Dataset) {
        let (mut train, mut val) = (Vec::new(), Vec::new());
        for (i, p) in self.prompts.iter().enumerate() {
            let h = Sha256::digest(format!("{salt}{p}").as_bytes());
            let x = u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
            if (x as f64) < fraction * u64::MAX as f64 {
                val.push(i);
            } else {
                train.push(i);
            }
        }
        (self.subset(&train), self.subset(&val))
    }

    /// Mean quality of each model.
    pub fn mean_quality(&self) -> Vec<f64> {
        let m = self.models.len();
        let mut acc = vec![0f64; m];
        for row in &self.scores {
            for (a, s) in acc.iter_mut().zip(row) {
                *a += f64::from(*s);
            }
        }
        acc.iter().map(|a| a / self.len().max(1) as f64).collect()
    }
}

/// Expected USD cost of a request on a model (prices per million tokens).
pub fn model_cost(m: &ModelSpec, prompt_tokens: u64, completion_tokens: u64) -> f64 {
    (m.input_price.unwrap_or(0.0) * prompt_tokens as f64
        + m.output_price.unwrap_or(0.0) * completion_tokens as f64)
        / 1e6
}

fn read(path: &Path) -> Result<Vec<u8>, TrainError> {
    std::fs::read(path).map_err(|e| TrainError::Data(format!("{}: {e}", path.display())))
}

/// Loads LLMRouter data: `train` (`[{question, scores}]`) and `llms` (`default_llm.json`);
/// `queries` (`query_*.jsonl`) adds task labels when given.
pub fn load_llmrouter(
    train: &Path,
    llms: &Path,
    queries: Option<&Path>,
) -> Result<Dataset, TrainError> {
    let bad = |p: &Path, m: String| TrainError::Data(format!("{}: {m}", p.display()));
    #[derive(serde::Deserialize)]
    struct Row {
        question: String,
        scores: BTreeMap<String, f64>,
    }
    let rows: Vec<Row> =
        serde_json::from_slice(&read(train)?).map_err(|e| bad(train, e.to_string()))?;
    // The models are those the data scores (sorted by name); sizes and prices come from
    // the candidates file.
    let llm_json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&read(llms)?).map_err(|e| bad(llms, e.to_string()))?;
    let names: Vec<String> = rows
        .first()
        .map(|r| r.scores.keys().cloned().collect())
        .unwrap_or_default();
    if names.is_empty() {
        return Err(bad(train, "no rows with scores".into()));
    }
    let mut notes = Vec::new();
    let models: Vec<ModelSpec> = names
        .iter()
        .map(|name| {
            let v = llm_json.get(name);
            if v.is_none() {
                notes.push(format!(
                    "{name}: not in {}, no size or price",
                    llms.display()
                ));
            }
            let num = |k: &str| v.and_then(|v| v.get(k)).and_then(|x| x.as_f64());
            ModelSpec {
                name: name.clone(),
                size_b: v.and_then(|v| v.get("size")).and_then(parse_size_b),
                input_price: num("input_price"),
                output_price: num("output_price"),
                mean_quality: None,
            }
        })
        .collect();
    let unscored: Vec<&str> = llm_json
        .keys()
        .filter(|k| !names.contains(k))
        .map(String::as_str)
        .collect();
    if !unscored.is_empty() {
        notes.push(format!(
            "models in {} without scores in the data (not routed to): {}",
            llms.display(),
            unscored.join(", ")
        ));
    }
    let mut tasks_by_query = BTreeMap::new();
    if let Some(q) = queries {
        let text = String::from_utf8_lossy(&read(q)?).into_owned();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| bad(q, format!("line {}: {e}", i + 1)))?;
            if let (Some(query), Some(task)) = (
                v.get("query").and_then(|x| x.as_str()),
                v.get("task_name").and_then(|x| x.as_str()),
            ) {
                tasks_by_query.insert(query.to_string(), task.to_string());
            }
        }
    }
    notes.insert(
        0,
        format!(
            "prices from {}; prompt tokens estimated from text (4 chars/token), {COMPLETION_TOKENS} completion tokens per request",
            llms.display()
        ),
    );
    let mut ds = Dataset {
        name: "llmrouter".into(),
        models,
        notes,
        ..Dataset::default()
    };
    for (i, r) in rows.into_iter().enumerate() {
        let mut row = Vec::with_capacity(ds.models.len());
        for m in &ds.models {
            let s = r.scores.get(&m.name).ok_or_else(|| {
                bad(
                    train,
                    format!("row {i} has no score for model '{}'", m.name),
                )
            })?;
            if !(0.0..=1.0).contains(s) {
                return Err(bad(
                    train,
                    format!("row {i}: score {s} for '{}' is outside 0..1", m.name),
                ));
            }
            row.push(*s as f32);
        }
        ds.tasks.push(tasks_by_query.get(&r.question).cloned());
        ds.prompts.push(r.question);
        ds.scores.push(row);
    }
    fill_mean_quality(&mut ds);
    Ok(ds)
}

/// Loads RouteLLM response CSVs from `dir` (every `*.csv`, sorted by name).
pub fn load_routellm(dir: &Path) -> Result<Dataset, TrainError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| TrainError::Data(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(TrainError::Data(format!(
            "{}: no .csv files",
            dir.display()
        )));
    }
    let mut ds = Dataset {
        name: "routellm".into(),
        notes: vec![format!(
            "RouteLLM data has no prices: list prices used ({}); prompt tokens estimated from text, {COMPLETION_TOKENS} completion tokens per request",
            ROUTELLM_PRICES
                .iter()
                .map(|(n, i, o, _)| format!("{n} ${i}/${o} per M tokens"))
                .collect::<Vec<_>>()
                .join(", ")
        )],
        ..Dataset::default()
    };
    for f in &files {
        let mut rdr = csv::Reader::from_path(f)
            .map_err(|e| TrainError::Data(format!("{}: {e}", f.display())))?;
        let headers = rdr
            .headers()
            .map_err(|e| TrainError::Data(format!("{}: {e}", f.display())))?
            .clone();
        let prompt_col = headers
            .iter()
            .position(|h| h == "prompt")
            .ok_or_else(|| TrainError::Data(format!("{}: no 'prompt' column", f.display())))?;
        let model_cols: Vec<(usize, String)> = headers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != prompt_col)
            .map(|(i, h)| (i, h.to_string()))
            .collect();
        if ds.models.is_empty() {
            ds.models = model_cols
                .iter()
                .map(|(_, name)| {
                    let known = ROUTELLM_PRICES.iter().find(|(n, ..)| n == name);
                    ModelSpec {
                        name: name.clone(),
                        size_b: known.and_then(|k| k.3),
                        input_price: known.map(|k| k.1),
                        output_price: known.map(|k| k.2),
                        mean_quality: None,
                    }
                })
                .collect();
        } else if ds
            .models
            .iter()
            .map(|m| &m.name)
            .ne(model_cols.iter().map(|(_, n)| n))
        {
            return Err(TrainError::Data(format!(
                "{}: model columns differ from the other files",
                f.display()
            )));
        }
        let task = f.file_stem().map(|s| s.to_string_lossy().into_owned());
        for (line, rec) in rdr.records().enumerate() {
            let rec = rec.map_err(|e| TrainError::Data(format!("{}: {e}", f.display())))?;
            let mut row = Vec::with_capacity(model_cols.len());
            for (c, name) in &model_cols {
                let v = rec.get(*c).unwrap_or("").trim();
                let s = match v.to_ascii_lowercase().as_str() {
                    "true" | "1" | "1.0" => 1.0,
                    "false" | "0" | "0.0" => 0.0,
                    other => other
                        .parse::<f32>()
                        .ok()
                        .filter(|x| (0.0..=1.0).contains(x))
                        .ok_or_else(|| {
                            TrainError::Data(format!(
                                "{} record {}: '{v}' for {name} is not a 0/1 score",
                                f.display(),
                                line + 1
                            ))
                        })?,
                };
                row.push(s);
            }
            ds.prompts
                .push(rec.get(prompt_col).unwrap_or("").to_string());
            ds.scores.push(row);
            ds.tasks.push(task.clone());
        }
    }
    fill_mean_quality(&mut ds);
    Ok(ds)
}

fn fill_mean_quality(ds: &mut Dataset) {
    let q = ds.mean_quality();
    for (m, q) in ds.models.iter_mut().zip(q) {
        m.mean_quality = Some(q);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A temporary directory removed on drop.
    pub struct TempDir(pub PathBuf);
    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!(
                "routeiq-trainer-{tag}-{}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos()
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn loads_llmrouter_format_and_splits_stably() {
        let d = TempDir::new("llmrouter");
        std::fs::write(
            d.0.join("llm.json"),
            r#"{"small": {"size": "7B", "input_price": 0.2, "output_price": 0.2},
                "big": {"size": "70B", "input_price": 0.9, "output_price": 0.9},
                "unscored": {"size": "1B"}}"#,
        )
        .unwrap();
        let rows: Vec<serde_json::Value> = (0..50)
            .map(|i| serde_json::json!({"question": format!("q{i}"), "scores": {"small": (i % 2) as f64, "big": 1.0}}))
            .collect();
        std::fs::write(d.0.join("train.json"), serde_json::to_vec(&rows).unwrap()).unwrap();
        std::fs::write(
            d.0.join("q.jsonl"),
            "{\"query\": \"q1\", \"task_name\": \"t\"}\n",
        )
        .unwrap();
        let ds = load_llmrouter(
            &d.0.join("train.json"),
            &d.0.join("llm.json"),
            Some(&d.0.join("q.jsonl")),
        )
        .unwrap();
        assert_eq!(ds.len(), 50);
        assert_eq!(ds.models.len(), 2);
        assert!(ds.notes.iter().any(|n| n.contains("unscored")));
        assert_eq!(ds.models[0].name, "big"); // models are sorted by name
        assert_eq!(ds.models[1].size_b, Some(7.0));
        assert_eq!(ds.tasks[1].as_deref(), Some("t"));
        assert!((ds.models[1].mean_quality.unwrap() - 0.5).abs() < 1e-9);
        // 100 prompt tokens ≈ 400 chars: cost = (0.9·1 + 0.9·256)/1e6 for "q0" (1 token).
        assert!((ds.cost(0, 0) - 0.9 * 257.0 / 1e6).abs() < 1e-12);
        let (tr, va) = ds.split(0.2, "");
        assert_eq!(tr.len() + va.len(), 50);
        assert!(!va.is_empty() && va.len() < 25);
        let (_, va2) = ds.split(0.2, "");
        assert_eq!(va.prompts, va2.prompts);

        std::fs::write(
            d.0.join("bad.json"),
            r#"[{"question": "x", "scores": {"small": 2.0, "big": 1}}]"#,
        )
        .unwrap();
        let e = load_llmrouter(&d.0.join("bad.json"), &d.0.join("llm.json"), None).unwrap_err();
        assert!(e.to_string().contains("outside 0..1"), "{e}");
    }

    #[test]
    fn loads_routellm_csvs() {
        let d = TempDir::new("routellm");
        std::fs::write(
            d.0.join("mmlu_a.csv"),
            "prompt,mistralai/Mixtral-8x7B-Instruct-v0.1,gpt-4-1106-preview\n\"What is 2+2?\nA. 3\",True,True\nhard,False,True\n",
        )
        .unwrap();
        let ds = load_routellm(&d.0).unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds.scores[1], vec![0.0, 1.0]);
        assert_eq!(ds.models[1].input_price, Some(10.0));
        assert!(ds.prompts[0].contains('\n'));
        assert_eq!(ds.tasks[0].as_deref(), Some("mmlu_a"));
    }
}
