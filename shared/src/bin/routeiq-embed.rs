//! `routeiq-embed`: model tooling for RouteIQ's embedders (feature `onnx`).
//!
//! ```text
//! routeiq-embed distill --model-dir DIR --out DIR [--dim 128] [--corpus DATA_DIR]
//!                       [--sif 1e-4] [--dtype i8|f32] [--id ID] [--teacher-cache FILE]
//! routeiq-embed embed (--model-dir DIR | --static DIR) TEXT...
//! routeiq-embed dump (--model-dir DIR | --static DIR) --texts FILE.jsonl --out FILE.f32
//! ```
//!
//! `distill` loads the transformer from `--model-dir` (checked against its manifest), counts
//! token frequencies over the routing prompts under `--corpus` (default `../shared/data`),
//! distils the static table and writes `table.riqs` and `manifest.json` into `--out`. With
//! `--teacher-cache`, the teacher's token embeddings are read from that file when it exists
//! (and written to it otherwise), so re-distilling with other settings takes seconds.
//! `embed` prints the first values, norm and timing of each text's embedding. `dump` embeds
//! every line of a JSON-lines file of strings and writes the vectors as little-endian `f32`,
//! one row per line (for offline evaluation).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use routeiq::ml::distill::{
    DistillConfig, TokenCounts, TokenMatrix, distill_from_matrix, routing_corpus,
    teacher_token_embeddings,
};
use routeiq::ml::static_embed::{RowType, TABLE_FILE};
use routeiq::ml::store::{FsModelStore, Manifest};
use routeiq::ml::wordpiece::WordPiece;
use routeiq::ml::{Embedder, StaticEmbedder, TransformerEmbedder};

const USAGE: &str = "usage:
  routeiq-embed distill --model-dir DIR --out DIR [--dim 128] [--corpus DATA_DIR] [--sif 1e-4] [--dtype i8|f32] [--id ID] [--teacher-cache FILE]
  routeiq-embed embed (--model-dir DIR | --static DIR) TEXT...
  routeiq-embed dump (--model-dir DIR | --static DIR) --texts FILE.jsonl --out FILE.f32";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("distill") => distill(&args[1..]),
        Some("embed") => embed(&args[1..]),
        Some("dump") => dump(&args[1..]),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("routeiq-embed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--name value` options and the remaining positional arguments.
struct Options {
    pairs: Vec<(String, String)>,
    rest: Vec<String>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut pairs = Vec::new();
        let mut rest = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if let Some(name) = a.strip_prefix("--") {
                let value = it
                    .next()
                    .ok_or_else(|| format!("--{name} needs a value\n{USAGE}"))?;
                pairs.push((name.to_owned(), value.clone()));
            } else {
                rest.push(a.clone());
            }
        }
        Ok(Self { pairs, rest })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> Result<&str, String> {
        self.get(name)
            .ok_or_else(|| format!("--{name} is required\n{USAGE}"))
    }

    fn parsed<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name}: cannot parse '{v}'")),
        }
    }
}

fn distill(args: &[String]) -> Result<(), String> {
    let opts = Options::parse(args)?;
    let model_dir = opts.required("model-dir")?;
    let out = PathBuf::from(opts.required("out")?);
    let corpus_dir = PathBuf::from(opts.get("corpus").unwrap_or("../shared/data"));
    let dtype = match opts.get("dtype").unwrap_or("i8") {
        "i8" => RowType::I8,
        "f32" => RowType::F32,
        other => return Err(format!("--dtype: '{other}' is not i8 or f32")),
    };
    let config = DistillConfig {
        dim: opts.parsed("dim", 128usize)?,
        sif_coefficient: opts.parsed("sif", 1e-4f64)?,
        batch_size: opts.parsed("batch", 64usize)?,
        dtype,
        id: opts.get("id").map(str::to_owned),
    };

    let started = Instant::now();
    let store = FsModelStore::new();
    let teacher = TransformerEmbedder::from_store(&store, model_dir).map_err(|e| e.to_string())?;
    let manifest_path = PathBuf::from(model_dir).join(Manifest::FILE_NAME);
    let teacher_manifest = Manifest::from_json(
        &manifest_path.display().to_string(),
        &std::fs::read(&manifest_path).map_err(|e| format!("{}: {e}", manifest_path.display()))?,
    )
    .map_err(|e| e.to_string())?;
    let tokenizer_json = std::fs::read_to_string(PathBuf::from(model_dir).join("tokenizer.json"))
        .map_err(|e| format!("{model_dir}/tokenizer.json: {e}"))?;
    let tokenizer = WordPiece::from_tokenizer_json(&tokenizer_json).map_err(|e| e.to_string())?;
    eprintln!(
        "routeiq-embed: teacher {} loaded in {:.2?}",
        teacher.id(),
        started.elapsed()
    );

    let texts =
        routing_corpus(&corpus_dir).map_err(|e| format!("corpus {}: {e}", corpus_dir.display()))?;
    if texts.is_empty() {
        eprintln!(
            "routeiq-embed: no corpus under {}: uniform token weights",
            corpus_dir.display()
        );
    }
    let counts = TokenCounts::from_texts(&tokenizer, &texts);
    eprintln!(
        "routeiq-embed: {} corpus texts, {} tokens",
        counts.texts(),
        counts.total()
    );

    let cache = opts.get("teacher-cache").map(PathBuf::from);
    let cached = match &cache {
        Some(path) if path.is_file() => {
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let matrix = TokenMatrix::from_bytes(&bytes).map_err(|e| e.to_string())?;
            if matrix.teacher != teacher.id() {
                return Err(format!(
                    "{} holds {}'s embeddings, not {}'s",
                    path.display(),
                    matrix.teacher,
                    teacher.id()
                ));
            }
            eprintln!(
                "routeiq-embed: teacher token embeddings from {}",
                path.display()
            );
            Some(matrix)
        }
        _ => None,
    };
    let teacher_started = Instant::now();
    let matrix = match cached {
        Some(m) => m,
        None => {
            let mut last = Instant::now();
            let m = teacher_token_embeddings(
                &teacher,
                &tokenizer,
                config.batch_size,
                &mut |done, total| {
                    if last.elapsed().as_secs() >= 10 || done == total {
                        eprintln!("routeiq-embed: {done}/{total} tokens embedded");
                        last = Instant::now();
                    }
                },
            )
            .map_err(|e| e.to_string())?;
            if let Some(path) = &cache {
                std::fs::write(path, m.to_bytes())
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            m
        }
    };
    let teacher_seconds = teacher_started.elapsed().as_secs_f64();
    let (table, mut report) =
        distill_from_matrix(&matrix, &tokenizer, &counts, &config).map_err(|e| e.to_string())?;
    report.teacher_seconds = teacher_seconds;

    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let bytes = table.to_bytes().map_err(|e| e.to_string())?;
    let path = out.join(TABLE_FILE);
    let tmp = out.join(format!(".{TABLE_FILE}.tmp"));
    std::fs::write(&tmp, &bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut extra = serde_json::Map::new();
    extra.insert("dim".into(), table.header().dim.into());
    extra.insert("source".into(), table.header().source.clone());
    // Which teacher file the table came from: fetch_models.sh re-distils when it changes.
    if let Some(entry) = teacher_manifest.files.get("model.onnx") {
        extra.insert("teacher_sha256".into(), entry.sha256.clone().into());
    }
    let manifest = Manifest::for_files(
        table.header().id.clone(),
        [(TABLE_FILE, path.as_path())],
        extra,
    )
    .map_err(|e| e.to_string())?;
    let json = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
    std::fs::write(out.join(Manifest::FILE_NAME), json + "\n")
        .map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!(
        "routeiq-embed: {} ({} bytes) written to {}: {} tokens, teacher {:.1}s, PCA {:.1}s, explained variance {:.3}",
        table.header().id,
        bytes.len(),
        path.display(),
        report.tokens_embedded,
        report.teacher_seconds,
        report.pca_seconds,
        report.explained_variance
    );
    Ok(())
}

/// The embedder named by `--model-dir` (transformer) or `--static`.
fn load_embedder(opts: &Options) -> Result<Box<dyn Embedder>, String> {
    let store = FsModelStore::new();
    Ok(match (opts.get("model-dir"), opts.get("static")) {
        (Some(dir), None) => {
            Box::new(TransformerEmbedder::from_store(&store, dir).map_err(|e| e.to_string())?)
        }
        (None, Some(dir)) => {
            Box::new(StaticEmbedder::from_store(&store, dir).map_err(|e| e.to_string())?)
        }
        _ => return Err(format!("give one of --model-dir and --static\n{USAGE}")),
    })
}

fn dump(args: &[String]) -> Result<(), String> {
    let opts = Options::parse(args)?;
    let input = opts.required("texts")?;
    let out = opts.required("out")?;
    let embedder = load_embedder(&opts)?;
    let text = std::fs::read_to_string(input).map_err(|e| format!("{input}: {e}"))?;
    let texts = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<String>(l).map_err(|e| format!("{input}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    let mut bytes = Vec::with_capacity(texts.len() * embedder.dim() * 4);
    for chunk in texts.chunks(64) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        for v in embedder.embed_batch(&refs).map_err(|e| e.to_string())? {
            v.iter()
                .for_each(|x| bytes.extend_from_slice(&x.to_le_bytes()));
        }
    }
    std::fs::write(out, bytes).map_err(|e| format!("{out}: {e}"))?;
    eprintln!(
        "routeiq-embed: {} texts embedded by {} (dim {}) in {:.2?}",
        texts.len(),
        embedder.id(),
        embedder.dim(),
        started.elapsed()
    );
    Ok(())
}

fn embed(args: &[String]) -> Result<(), String> {
    let opts = Options::parse(args)?;
    let started = Instant::now();
    let embedder = load_embedder(&opts)?;
    println!(
        "{} (dim {}) loaded in {:.2?}",
        embedder.id(),
        embedder.dim(),
        started.elapsed()
    );
    for text in &opts.rest {
        let started = Instant::now();
        let v = embedder.embed(text).map_err(|e| e.to_string())?;
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let head: Vec<String> = v.iter().take(6).map(|x| format!("{x:.4}")).collect();
        println!(
            "{:.2?}  norm {norm:.4}  [{}, …]  {text:?}",
            started.elapsed(),
            head.join(", ")
        );
    }
    Ok(())
}
