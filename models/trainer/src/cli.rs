//! `routeiq train`, `routeiq eval`, `routeiq keygen`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, ValueEnum};
use routeiq::ml::artifact::{
    EmbedderSpec, HybridMode, VerifyPolicy, parse_signing_key, public_key_hex, update_manifest,
};
use routeiq::ml::predictor::LoadedRouter;
use routeiq::ml::{Embedder, HashedNgramEmbedder, MlStrategyName};
use serde_json::json;

use crate::TrainError;
use crate::cache::{default_dir, embed_all};
use crate::data::{Dataset, load_llmrouter, load_routellm};
use crate::eval::{RouterPredictions, evaluate, markdown, predict_all, task_reference};
use crate::train::{TrainOptions, TrainSet, train};

/// Hybrid decision mode (`--hybrid-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HybridModeArg {
    Deterministic,
    Probabilistic,
}

/// Options shared by `train` and `eval`: the data and how it is split.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Routing data: an LLMRouter directory (train.json + default_llm.json [+ query_train.jsonl])
    /// or a directory of RouteLLM response CSVs. Default for `train`:
    /// ../shared/data/llmrouter; for `eval`: the data the routers were trained on.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Share of prompts held out for validation (chosen by prompt hash; never trained on).
    #[arg(long)]
    pub val_fraction: Option<f64>,
    /// Salt of the split hash (a different salt gives a different split).
    #[arg(long)]
    pub split_salt: Option<String>,
    /// Embedding cache directory (default $HOME/.cache/routeiq/embeddings).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Do not read or write the embedding cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Directory of embedding models (default $ROUTEIQ_MODEL_DIR, else
    /// $HOME/.cache/routeiq/models): static-minilm-pca128/, minilm-l6-v2/.
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `routeiq train`.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Embedder: `hashed-ngram[:DIM]` (no model files), `static` (the distilled table), or
    /// `transformer` (all-MiniLM-L6-v2; needs the `onnx` build).
    #[arg(long, default_value = "hashed-ngram")]
    pub embedder: String,
    /// Strategies to train, comma-separated (default: all trainable).
    #[arg(long, value_delimiter = ',')]
    pub strategies: Vec<String>,
    /// Output directory for the artifacts and their manifest.json.
    #[arg(long, default_value = "models/routers")]
    pub out: PathBuf,
    /// File holding a hex ed25519 secret key seed: sign the artifacts (see `routeiq keygen`).
    #[arg(long)]
    pub signing_key: Option<PathBuf>,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// kNN's k (default: chosen on a tuning split of the training data).
    #[arg(long)]
    pub knn_k: Option<usize>,
    /// Keep at most this many prompts in the kNN artifact (smaller file, less accurate).
    #[arg(long)]
    pub knn_max_points: Option<usize>,
    #[arg(long, default_value_t = 128)]
    pub mlp_hidden: usize,
    #[arg(long, default_value_t = 64)]
    pub mf_dim: usize,
    /// Hybrid: the small model (default: the best among those cheaper than the large one).
    #[arg(long)]
    pub hybrid_small: Option<String>,
    /// Hybrid: the large model (default: the best model on average).
    #[arg(long)]
    pub hybrid_large: Option<String>,
    #[arg(long, value_enum, default_value_t = HybridModeArg::Deterministic)]
    pub hybrid_mode: HybridModeArg,
    /// Hybrid threshold (default 0 for deterministic: small when the predicted gap ≤ 0;
    /// 0.5 for probabilistic).
    #[arg(long)]
    pub hybrid_threshold: Option<f32>,
}

/// `routeiq eval`.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Directory of router artifacts (every *.json but manifest.json), or one artifact file.
    #[arg(long, default_value = "models/routers")]
    pub models: PathBuf,
    /// Where to write eval.md, eval.json and eval.png (default: the models directory).
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// `routeiq sign`.
#[derive(Debug, Clone, Args)]
pub struct SignArgs {
    /// File holding the hex ed25519 secret key seed (see `routeiq keygen`).
    #[arg(long)]
    pub key: PathBuf,
    /// Directory of router artifacts with their manifest.json: every artifact the manifest
    /// lists is checked against it, then signed.
    #[arg(long, default_value = "models/routers")]
    pub models: PathBuf,
}

/// `routeiq keygen`.
#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    /// Where to write the secret key seed (hex); the public key is printed.
    #[arg(long)]
    pub out: PathBuf,
}

const DEFAULT_VAL_FRACTION: f64 = 0.2;
const DEFAULT_DATA: &str = "../shared/data/llmrouter";

fn model_dir(args: &DataArgs) -> PathBuf {
    args.model_dir
        .clone()
        .or_else(|| std::env::var_os("ROUTEIQ_MODEL_DIR").map(PathBuf::from))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/routeiq/models"))
        })
        .unwrap_or_else(|| PathBuf::from("models/cache"))
}

/// Loads a dataset directory (LLMRouter or RouteLLM, detected by its files).
pub fn load_data(dir: &Path) -> Result<Dataset, TrainError> {
    let train = dir.join("train.json");
    if train.exists() {
        let queries = ["query_train.jsonl", "default_query_train.jsonl"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.exists());
        return load_llmrouter(&train, &dir.join("default_llm.json"), queries.as_deref());
    }
    load_routellm(dir)
}

/// The embedder a `--embedder` argument or an artifact's embedder id names.
pub fn embedder_for(name: &str, model_dir: &Path) -> Result<Arc<dyn Embedder>, TrainError> {
    let bad = |m: String| TrainError::Embed(m);
    if let Some(e) = HashedNgramEmbedder::from_id(name) {
        return Ok(Arc::new(e));
    }
    if let Some(rest) = name.strip_prefix("hashed-ngram") {
        let dim = match rest.strip_prefix(':') {
            Some(d) => d
                .parse()
                .map_err(|_| bad(format!("bad dimension in '{name}'")))?,
            None if rest.is_empty() => routeiq::ml::hashed::DEFAULT_DIM,
            None => return Err(bad(format!("unknown embedder '{name}'"))),
        };
        return Ok(Arc::new(
            HashedNgramEmbedder::new(dim).map_err(|e| bad(e.to_string()))?,
        ));
    }
    if name == "static" || name.starts_with("static-") {
        let id = if name == "static" {
            "static-minilm-pca128"
        } else {
            name
        };
        let path = model_dir
            .join(id)
            .join(routeiq::ml::static_embed::TABLE_FILE);
        let e = routeiq::ml::StaticEmbedder::load(&path).map_err(|e| {
            bad(format!(
                "{e} (produce it with `bash models/fetch_models.sh --static`)"
            ))
        })?;
        return Ok(Arc::new(e));
    }
    if name == "transformer" || name.starts_with("minilm") {
        return transformer(model_dir);
    }
    Err(bad(format!(
        "unknown embedder '{name}' (hashed-ngram[:DIM], static, transformer)"
    )))
}

#[cfg(feature = "onnx")]
fn transformer(model_dir: &Path) -> Result<Arc<dyn Embedder>, TrainError> {
    let dir = model_dir.join("minilm-l6-v2");
    routeiq::ml::TransformerEmbedder::load(&dir)
        .map(|e| Arc::new(e) as Arc<dyn Embedder>)
        .map_err(|e| {
            TrainError::Embed(format!(
                "{e} (produce it with `bash models/fetch_models.sh`)"
            ))
        })
}

#[cfg(not(feature = "onnx"))]
fn transformer(_: &Path) -> Result<Arc<dyn Embedder>, TrainError> {
    Err(TrainError::Embed(
        "the transformer embedder needs a build with the `onnx` feature \
         (cargo run -p routeiq-gateway --features onnx --bin routeiq)"
            .into(),
    ))
}

fn cache_dir(args: &DataArgs) -> Option<PathBuf> {
    if args.no_cache {
        None
    } else {
        args.cache_dir.clone().or_else(default_dir)
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    // Write beside, then rename: a hot-reloading gateway never reads a half-written file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| TrainError::Io(format!("{}: {e}", path.display())))
}

/// `routeiq train`: trains the strategies and writes artifacts + manifest. Returns the
/// written paths.
pub fn run_train(args: &TrainArgs) -> Result<Vec<PathBuf>, TrainError> {
    let strategies: Vec<MlStrategyName> = if args.strategies.is_empty() {
        MlStrategyName::TRAINABLE.to_vec()
    } else {
        args.strategies
            .iter()
            .map(|s| MlStrategyName::parse(s).map_err(TrainError::Config))
            .collect::<Result<_, _>>()?
    };
    let key = match &args.signing_key {
        Some(p) => {
            let hex = std::fs::read_to_string(p)
                .map_err(|e| TrainError::Io(format!("{}: {e}", p.display())))?;
            Some(parse_signing_key(hex.trim()).map_err(TrainError::Config)?)
        }
        None => None,
    };
    let data_dir = args
        .data
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA));
    let all = load_data(&data_dir)?;
    let fraction = args.data.val_fraction.unwrap_or(DEFAULT_VAL_FRACTION);
    let salt = args.data.split_salt.clone().unwrap_or_default();
    let (train_part, val_part) = all.split(fraction, &salt);
    let embedder = embedder_for(&args.embedder, &model_dir(&args.data))?;
    eprintln!(
        "routeiq train: {} ({} prompts: {} train, {} held out), {} models, embedder {}",
        data_dir.display(),
        all.len(),
        train_part.len(),
        val_part.len(),
        all.models.len(),
        embedder.id()
    );
    let x = embed_all(
        embedder.as_ref(),
        &train_part.prompts,
        cache_dir(&args.data).as_deref(),
        !args.data.quiet,
    )?;
    let set = TrainSet {
        data: &train_part,
        x: &x,
        embedder: EmbedderSpec {
            id: embedder.id().to_string(),
            dim: embedder.dim(),
            probe: routeiq::ml::artifact::embedding_probe(embedder.as_ref()),
        },
    };
    let opts = TrainOptions {
        seed: args.seed,
        knn_k: args.knn_k,
        knn_max_points: args.knn_max_points,
        mlp_hidden: args.mlp_hidden,
        mf_dim: args.mf_dim,
        hybrid_small: args.hybrid_small.clone(),
        hybrid_large: args.hybrid_large.clone(),
        hybrid_mode: match args.hybrid_mode {
            HybridModeArg::Deterministic => HybridMode::Deterministic,
            HybridModeArg::Probabilistic => HybridMode::Probabilistic,
        },
        hybrid_threshold: args.hybrid_threshold,
        hybrid_margin: 0.0,
        split: json!({
            "data": data_dir.display().to_string(),
            "val_fraction": fraction,
            "salt": salt,
            "train_prompts": train_part.len(),
        }),
    };
    std::fs::create_dir_all(&args.out)
        .map_err(|e| TrainError::Io(format!("{}: {e}", args.out.display())))?;
    let manifest_path = args.out.join("manifest.json");
    let mut written = Vec::new();
    for s in strategies {
        let started = std::time::Instant::now();
        let art = train(s, &set, &opts)?;
        let bytes = art.to_bytes();
        let name = format!("{}.json", s.short());
        let path = args.out.join(&name);
        write(&path, &bytes)?;
        let existing = std::fs::read(&manifest_path).ok();
        let manifest = update_manifest(
            existing.as_deref(),
            &name,
            &bytes,
            json!({"strategy": art.strategy, "version": art.version, "embedder": art.embedder.id}),
            key.as_ref(),
        )
        .map_err(TrainError::Artifact)?;
        write(&manifest_path, &manifest)?;
        eprintln!(
            "  {:<20} {} ({} KB, {:.1}s){}",
            s.as_str(),
            path.display(),
            bytes.len() / 1024,
            started.elapsed().as_secs_f64(),
            if key.is_some() { ", signed" } else { "" }
        );
        written.push(path);
    }
    Ok(written)
}

/// The router artifacts in `path` (a directory or one file), sorted.
/// The router artifacts at `path`: the file itself, or a directory's `*.json` files other
/// than `manifest.json` and `eval.json`, sorted.
pub fn artifact_files(path: &Path) -> Result<Vec<PathBuf>, TrainError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| TrainError::Io(format!("{}: {e}", path.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name()
                    .is_some_and(|n| n != "manifest.json" && n != "eval.json")
        })
        .collect();
    files.sort();
    Ok(files)
}

/// `routeiq eval`: evaluates the artifacts on the held-out split and writes the report.
/// Returns the markdown.
pub fn run_eval(args: &EvalArgs) -> Result<String, TrainError> {
    let env = |k: &str| std::env::var(k).ok();
    let policy = VerifyPolicy::from_env(&env, &[]).map_err(TrainError::Config)?;
    let mut routers = Vec::new();
    for f in artifact_files(&args.models)? {
        let bytes =
            std::fs::read(&f).map_err(|e| TrainError::Io(format!("{}: {e}", f.display())))?;
        let manifest = f
            .parent()
            .map(|d| d.join("manifest.json"))
            .and_then(|m| std::fs::read(m).ok());
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let split: serde_json::Value = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("training").and_then(|t| t.get("split")).cloned())
            .unwrap_or_default();
        let router = LoadedRouter::from_bytes(
            &f.display().to_string(),
            &name,
            &bytes,
            manifest.as_deref(),
            &policy,
            None,
            None,
        )
        .map_err(|e| TrainError::Artifact(e.to_string()))?;
        routers.push((router, split));
    }
    if routers.is_empty() {
        return Err(TrainError::Config(format!(
            "no router artifacts in {}",
            args.models.display()
        )));
    }
    // The split the routers were trained with, unless overridden.
    let recorded = &routers[0].1;
    let fraction = args
        .data
        .val_fraction
        .or_else(|| recorded.get("val_fraction").and_then(|v| v.as_f64()))
        .unwrap_or(DEFAULT_VAL_FRACTION);
    let salt = args
        .data
        .split_salt
        .clone()
        .or_else(|| {
            recorded
                .get("salt")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default();
    for (r, s) in &routers {
        let same = s.get("val_fraction").and_then(|v| v.as_f64()) == Some(fraction)
            && s.get("salt").and_then(|v| v.as_str()).unwrap_or("") == salt;
        if !same {
            eprintln!(
                "routeiq eval: warning: {} was trained with split {s}; evaluating on val_fraction {fraction} salt {salt:?}",
                r.source
            );
        }
    }
    let data_dir = args
        .data
        .data
        .clone()
        .or_else(|| {
            recorded
                .get("data")
                .and_then(|v| v.as_str())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA));
    let all = load_data(&data_dir)?;
    let (train_part, val) = all.split(fraction, &salt);
    if val.is_empty() {
        return Err(TrainError::Data("the validation split is empty".into()));
    }
    let mdir = model_dir(&args.data);
    let mut embeddings: BTreeMap<String, Vec<Vec<f32>>> = BTreeMap::new();
    let mut preds: Vec<RouterPredictions> = Vec::new();
    for (r, _) in &routers {
        let id = r.embedder.id.clone();
        if !embeddings.contains_key(&id) {
            let e = embedder_for(&id, &mdir)?;
            let x = embed_all(
                e.as_ref(),
                &val.prompts,
                cache_dir(&args.data).as_deref(),
                !args.data.quiet,
            )?;
            embeddings.insert(id.clone(), x);
        }
        let x = embeddings.get(&id).map(Vec::as_slice).unwrap_or_default();
        preds.push(predict_all(r.strategy.as_str(), r, &val, x).map_err(TrainError::Artifact)?);
    }
    preds.extend(task_reference(&train_part, &val));
    let embedder_ids: Vec<&str> = embeddings.keys().map(String::as_str).collect();
    let report = evaluate(&val, &embedder_ids.join(", "), &preds, args.seed);
    let md = markdown(&report);
    let out = args.report_dir.clone().unwrap_or_else(|| {
        if args.models.is_dir() {
            args.models.clone()
        } else {
            args.models
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        }
    });
    std::fs::create_dir_all(&out).map_err(|e| TrainError::Io(format!("{}: {e}", out.display())))?;
    write(&out.join("eval.md"), md.as_bytes())?;
    write(
        &out.join("eval.json"),
        &serde_json::to_vec_pretty(&report).map_err(|e| TrainError::Io(e.to_string()))?,
    )?;
    let png = out.join("eval.png");
    if !crate::plot::plot(&report, &png)? {
        eprintln!(
            "routeiq eval: no TrueType font found (set ROUTEIQ_PLOT_FONT): the plot has no text"
        );
    }
    eprintln!(
        "routeiq eval: wrote {}, eval.json, eval.png",
        out.join("eval.md").display()
    );
    Ok(md)
}

/// `routeiq sign`: signs the artifacts a manifest lists (after checking each against its
/// recorded sha256 and size, so a file changed since training is refused, not blessed) and
/// writes the signatures into the manifest. Returns the public key and the files signed.
pub fn run_sign(args: &SignArgs) -> Result<(String, Vec<String>), TrainError> {
    let io = |p: &Path, e: std::io::Error| TrainError::Io(format!("{}: {e}", p.display()));
    let hex = std::fs::read_to_string(&args.key).map_err(|e| io(&args.key, e))?;
    let key = parse_signing_key(hex.trim()).map_err(TrainError::Config)?;
    let mpath = args.models.join("manifest.json");
    let mut manifest = std::fs::read(&mpath).map_err(|e| io(&mpath, e))?;
    let parsed: serde_json::Value = serde_json::from_slice(&manifest)
        .map_err(|e| TrainError::Artifact(format!("{}: {e}", mpath.display())))?;
    let files = parsed
        .get("files")
        .and_then(|f| f.as_object())
        .ok_or_else(|| TrainError::Artifact(format!("{}: no \"files\"", mpath.display())))?;
    let mut signed = Vec::new();
    for (name, entry) in files {
        let path = args.models.join(name);
        let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
        let want = entry
            .get("sha256")
            .and_then(|s| s.as_str())
            .unwrap_or_default();
        if routeiq::ml::artifact::sha256_hex(&bytes) != want {
            return Err(TrainError::Artifact(format!(
                "{}: does not match its manifest entry; retrain or fix it before signing",
                path.display()
            )));
        }
        let info = parsed
            .get("routers")
            .and_then(|r| r.get(name))
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        manifest = update_manifest(Some(&manifest), name, &bytes, info, Some(&key))
            .map_err(TrainError::Artifact)?;
        signed.push(name.clone());
    }
    std::fs::write(&mpath, &manifest).map_err(|e| io(&mpath, e))?;
    Ok((public_key_hex(&key.verifying_key()), signed))
}

/// `routeiq keygen`: a new ed25519 key; the secret seed (hex) goes to `--out` (mode 0600),
/// the public key is returned.
pub fn run_keygen(args: &KeygenArgs) -> Result<String, TrainError> {
    use std::io::Read;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| TrainError::Io(format!("reading /dev/urandom: {e}")))?;
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    let key = parse_signing_key(&hex).map_err(TrainError::Config)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    opts.open(&args.out)
        .and_then(|mut f| f.write_all(format!("{hex}\n").as_bytes()))
        .map_err(|e| TrainError::Io(format!("{}: {e}", args.out.display())))?;
    Ok(public_key_hex(&key.verifying_key()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::tests::TempDir;

    fn data_args(dir: &Path) -> DataArgs {
        DataArgs {
            data: Some(dir.to_path_buf()),
            val_fraction: Some(0.25),
            split_salt: None,
            cache_dir: None,
            no_cache: true,
            model_dir: None,
            quiet: true,
        }
    }

    #[test]
    fn train_sign_and_eval_end_to_end() {
        let d = TempDir::new("cli");
        let data = d.0.join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(
            data.join("default_llm.json"),
            r#"{"coder": {"size": "7B", "input_price": 0.2, "output_price": 0.2},
                "talker": {"size": "8B", "input_price": 0.2, "output_price": 0.2},
                "big": {"size": "70B", "input_price": 0.9, "output_price": 0.9}}"#,
        )
        .unwrap();
        let mut rows = Vec::new();
        for i in 0..160 {
            let code = i % 2 == 0;
            let q = if code {
                format!("Write a Python function number {i} that sorts a list of integers")
            } else {
                format!("Tell me a story about a dragon named Bob the {i}th")
            };
            rows.push(json!({"question": q, "scores": {
                "coder": if code { 1.0 } else { 0.0 },
                "talker": if code { 0.0 } else { 1.0 },
                "big": 0.6}}));
        }
        std::fs::write(data.join("train.json"), serde_json::to_vec(&rows).unwrap()).unwrap();
        let key_file = d.0.join("key.hex");
        let public = run_keygen(&KeygenArgs {
            out: key_file.clone(),
        })
        .unwrap();
        assert_eq!(public.len(), 64);
        let out = d.0.join("routers");
        let written = run_train(&TrainArgs {
            data: data_args(&data),
            embedder: "hashed-ngram:64".into(),
            strategies: vec![
                "knn".into(),
                "mlp".into(),
                "elo".into(),
                "hybrid".into(),
                "largest".into(),
            ],
            out: out.clone(),
            signing_key: Some(key_file),
            seed: 1,
            knn_k: None,
            knn_max_points: None,
            mlp_hidden: 16,
            mf_dim: 8,
            hybrid_small: None,
            hybrid_large: None,
            hybrid_mode: HybridModeArg::Deterministic,
            hybrid_threshold: None,
        })
        .unwrap();
        assert_eq!(written.len(), 5);
        // Signed: the manifest carries signatures by the generated key.
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(
            manifest["signatures"]["knn.json"]["public_key"],
            json!(public)
        );
        let md = run_eval(&EvalArgs {
            data: DataArgs {
                val_fraction: None,
                ..data_args(&data)
            },
            models: out.clone(),
            report_dir: None,
            seed: 1,
        })
        .unwrap();
        assert!(md.contains("| llmrouter-knn | router |"), "{md}");
        assert!(md.contains("| oracle | oracle |"));
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("eval.json")).unwrap()).unwrap();
        let row = |n: &str| {
            report["rows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == n)
                .unwrap()
                .clone()
        };
        // Code vs story is easy: kNN and the MLP route almost perfectly; "big" scores 0.6.
        assert!(
            row("llmrouter-knn")["quality"].as_f64().unwrap() > 0.9,
            "{md}"
        );
        assert!(
            row("llmrouter-mlp")["quality"].as_f64().unwrap() > 0.9,
            "{md}"
        );
        assert!((row("big")["quality"].as_f64().unwrap() - 0.6).abs() < 1e-6);
        assert!(std::fs::metadata(out.join("eval.png")).unwrap().len() > 1000);

        // Re-signing with another key replaces the signatures; a file changed since its
        // manifest entry is refused, not blessed.
        let other = d.0.join("other.hex");
        let other_public = run_keygen(&KeygenArgs { out: other.clone() }).unwrap();
        let (signer, files) = run_sign(&SignArgs {
            key: other.clone(),
            models: out.clone(),
        })
        .unwrap();
        assert_eq!(signer, other_public);
        assert_eq!(files.len(), 5);
        let manifest_bytes = std::fs::read(out.join("manifest.json")).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes).unwrap();
        assert_eq!(
            manifest["signatures"]["mlp.json"]["public_key"],
            json!(other_public)
        );
        let policy = VerifyPolicy {
            enforce_signed: true,
            trusted_keys: vec![routeiq::ml::artifact::parse_public_key(&other_public).unwrap()],
        };
        let bytes = std::fs::read(out.join("mlp.json")).unwrap();
        LoadedRouter::from_bytes(
            "mlp.json",
            "mlp.json",
            &bytes,
            Some(&manifest_bytes),
            &policy,
            None,
            None,
        )
        .unwrap();
        let mut tampered = bytes.clone();
        tampered.extend_from_slice(b" ");
        std::fs::write(out.join("mlp.json"), &tampered).unwrap();
        let err = run_sign(&SignArgs {
            key: other,
            models: out.clone(),
        })
        .unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }
}
