//! Embedding prompts with an on-disk cache and a progress bar.
//!
//! The cache is one append-only file per embedding space,
//! `<dir>/<embedder id>.bin` (default dir `$HOME/.cache/routeiq/embeddings`): records of
//! `sha256(text)` (32 bytes) followed by `dim` little-endian `f32`s. A torn last record (an
//! interrupted run) is ignored. Embeddings depend only on the embedder id and the text, so
//! a cache is valid across datasets and runs.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use routeiq::ml::Embedder;
use sha2::{Digest, Sha256};

use crate::TrainError;

/// Texts embedded per batch (and per progress-bar step).
const BATCH: usize = 64;

/// The default cache directory: `$ROUTEIQ_CACHE/embeddings`, else
/// `$HOME/.cache/routeiq/embeddings`.
pub fn default_dir() -> Option<PathBuf> {
    std::env::var_os("ROUTEIQ_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/routeiq")))
        .map(|d| d.join("embeddings"))
}

fn cache_file(dir: &Path, embedder_id: &str) -> PathBuf {
    let safe: String = embedder_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{safe}.bin"))
}

fn key(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Reads a cache file into a map (missing file: empty).
fn read_cache(path: &Path, dim: usize) -> HashMap<[u8; 32], Vec<f32>> {
    let mut map = HashMap::new();
    let Ok(bytes) = std::fs::read(path) else {
        return map;
    };
    let rec = 32 + 4 * dim;
    for chunk in bytes.chunks_exact(rec) {
        let mut k = [0u8; 32];
        k.copy_from_slice(&chunk[..32]);
        let v = chunk[32..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        map.insert(k, v);
    }
    map
}

/// Embeds `texts` with `embedder`, reading and extending the cache in `cache_dir` (none:
/// no cache). Shows a progress bar on stderr when `progress` is set.
pub fn embed_all(
    embedder: &dyn Embedder,
    texts: &[String],
    cache_dir: Option<&Path>,
    progress: bool,
) -> Result<Vec<Vec<f32>>, TrainError> {
    let dim = embedder.dim();
    let path = cache_dir.map(|d| cache_file(d, embedder.id()));
    let mut cached = path
        .as_deref()
        .map(|p| read_cache(p, dim))
        .unwrap_or_default();
    let missing: Vec<usize> = {
        let mut seen = std::collections::HashSet::new();
        (0..texts.len())
            .filter(|&i| {
                let k = key(&texts[i]);
                !cached.contains_key(&k) && seen.insert(k)
            })
            .collect()
    };
    if !missing.is_empty() {
        let bar = if progress {
            ProgressBar::with_draw_target(Some(missing.len() as u64), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) = ProgressStyle::with_template(
            "embedding ({msg}) [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(embedder.id().to_string());
        let mut file = match &path {
            Some(p) => {
                if let Some(d) = p.parent() {
                    std::fs::create_dir_all(d)
                        .map_err(|e| TrainError::Io(format!("{}: {e}", d.display())))?;
                }
                // Drop a torn last record (an interrupted run) before appending.
                if let Ok(meta) = std::fs::metadata(p) {
                    let rec = (32 + 4 * dim) as u64;
                    if meta.len() % rec != 0 {
                        std::fs::OpenOptions::new()
                            .write(true)
                            .open(p)
                            .and_then(|f| f.set_len(meta.len() - meta.len() % rec))
                            .map_err(|e| TrainError::Io(format!("{}: {e}", p.display())))?;
                    }
                }
                Some(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(p)
                        .map_err(|e| TrainError::Io(format!("{}: {e}", p.display())))?,
                )
            }
            None => None,
        };
        for batch in missing.chunks(BATCH) {
            let refs: Vec<&str> = batch.iter().map(|&i| texts[i].as_str()).collect();
            let vecs = embedder
                .embed_batch(&refs)
                .map_err(|e| TrainError::Embed(e.to_string()))?;
            let mut buf = Vec::with_capacity(batch.len() * (32 + 4 * dim));
            for (&i, v) in batch.iter().zip(vecs) {
                if v.len() != dim {
                    return Err(TrainError::Embed(format!(
                        "embedder returned {} dimensions, expected {dim}",
                        v.len()
                    )));
                }
                let k = key(&texts[i]);
                buf.extend_from_slice(&k);
                for x in &v {
                    buf.extend_from_slice(&x.to_le_bytes());
                }
                cached.insert(k, v);
            }
            if let Some(f) = file.as_mut() {
                f.write_all(&buf)
                    .map_err(|e| TrainError::Io(format!("embedding cache: {e}")))?;
            }
            bar.inc(batch.len() as u64);
        }
        bar.finish_and_clear();
    }
    texts
        .iter()
        .map(|t| {
            cached
                .get(&key(t))
                .cloned()
                .ok_or_else(|| TrainError::Embed("embedding missing after embedding".into()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::tests::TempDir;
    use routeiq::ml::HashedNgramEmbedder;

    #[test]
    fn cache_round_trips_and_ignores_torn_records() {
        let d = TempDir::new("cache");
        let e = HashedNgramEmbedder::new(16).unwrap();
        let texts: Vec<String> = ["a b c", "hello world", "a b c"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let first = embed_all(&e, &texts, Some(&d.0), false).unwrap();
        let file = cache_file(&d.0, e.id());
        let len = std::fs::metadata(&file).unwrap().len();
        assert_eq!(len, 2 * (32 + 64), "duplicates are embedded once");
        // A torn record at the end is ignored; the cached values come back unchanged.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap()
            .write_all(&[1, 2, 3])
            .unwrap();
        let again = embed_all(&e, &texts, Some(&d.0), false).unwrap();
        assert_eq!(first, again);
        // A new text after a torn record: the file is re-aligned, and all three read back.
        let more: Vec<String> = vec!["new text".into(), "hello world".into()];
        embed_all(&e, &more, Some(&d.0), false).unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 3 * (32 + 64));
        assert_eq!(read_cache(&file, 16).len(), 3);
        assert_eq!(first[0], e.embed("a b c").unwrap());
    }
}
