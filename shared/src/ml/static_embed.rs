//! The static embedder: a token-embedding table distilled from the transformer.
//!
//! A prompt's embedding is the mean of its tokens' rows, L2-normalised (model2vec style: the
//! token-frequency weights are baked into the rows when the table is distilled, see
//! `ml::distill`). Tokenisation is the pure-Rust [`WordPiece`], so this embedder builds with
//! default features, including for `wasm32-unknown-unknown`. Special tokens (`[CLS]`,
//! `[SEP]`) are not added and unknown words (`[UNK]`) are skipped: text with no known token
//! embeds to the zero vector.
//!
//! # Table file format (`.riqs`, version 1, little-endian)
//!
//! | offset | size | content |
//! | --- | --- | --- |
//! | 0 | 8 | magic `RIQSTAT\0` |
//! | 8 | 4 | format version, `u32` = 1 |
//! | 12 | 4 | header length `H`, `u32` |
//! | 16 | `H` | header, UTF-8 JSON: [`TableHeader`] (id, dim, rows, dtype, tokenizer with its vocabulary, provenance) |
//! | 16 + `H` | 0–3 | zero padding to a multiple of 4 |
//! | … | 4 × rows | `dtype = "i8"`: one `f32` scale per row |
//! | … | rows × dim | `dtype = "i8"`: the rows, row-major `i8`; value = `i8 × scale` |
//!
//! With `dtype = "f32"` the scales are absent and the rows are `f32` (4 × rows × dim bytes).
//! The file is self-contained: the vocabulary and tokenizer settings are in the header, so no
//! `tokenizer.json` is needed next to it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::embed::{EmbedError, Embedder, l2_normalize};
use super::store::{ModelStore, fetch_verified};
use super::wordpiece::{WordPiece, WordPieceConfig};

/// Name of the table file in a static model directory.
pub const TABLE_FILE: &str = "table.riqs";

const MAGIC: &[u8; 8] = b"RIQSTAT\0";
const VERSION: u32 = 1;

/// Tokens per prompt the static embedder reads at most (more are ignored).
pub const DEFAULT_MAX_TOKENS: usize = 512;

/// Element type of the rows in a table file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowType {
    /// `i8` values with one `f32` scale per row.
    I8,
    /// Plain `f32` values.
    F32,
}

/// The JSON header of a table file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableHeader {
    /// Embedding-space id (e.g. `static-minilm-pca128`).
    pub id: String,
    /// Row length.
    pub dim: usize,
    /// Number of rows (= vocabulary size).
    pub rows: usize,
    /// Element type of the rows.
    pub dtype: RowType,
    /// Most tokens read per prompt.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// Tokenizer settings.
    pub tokenizer: WordPieceConfig,
    /// The vocabulary (token `i` has row `i`).
    pub vocab: Vec<String>,
    /// How the table was made (teacher, PCA, weighting, corpus); free-form.
    #[serde(default)]
    pub source: serde_json::Value,
}

fn default_max_tokens() -> usize {
    DEFAULT_MAX_TOKENS
}

/// A token-embedding table: one row per vocabulary token, stored as int8 + per-row scale.
#[derive(Debug, Clone)]
pub struct StaticTable {
    header: TableHeader,
    /// Per-row scales (`dtype = i8`), empty for `f32`.
    scales: Vec<f32>,
    /// `i8` rows (`dtype = i8`), empty for `f32`.
    rows_i8: Vec<i8>,
    /// `f32` rows (`dtype = f32`), empty for `i8`.
    rows_f32: Vec<f32>,
}

impl StaticTable {
    /// A table from `f32` rows (`rows.len() == tokenizer vocab × dim`), quantised to int8 with
    /// a symmetric per-row scale when `dtype` is [`RowType::I8`].
    pub fn from_rows(
        id: impl Into<String>,
        tokenizer: &WordPiece,
        dim: usize,
        rows: &[f32],
        dtype: RowType,
        source: serde_json::Value,
    ) -> Result<Self, EmbedError> {
        let n = tokenizer.vocab_size();
        if dim == 0 || rows.len() != n * dim {
            return Err(EmbedError::Load {
                path: "static table".into(),
                message: format!("{} values for {n} rows of {dim}", rows.len()),
            });
        }
        let header = TableHeader {
            id: id.into(),
            dim,
            rows: n,
            dtype,
            max_tokens: DEFAULT_MAX_TOKENS,
            tokenizer: tokenizer.config().clone(),
            vocab: tokenizer.tokens().to_vec(),
            source,
        };
        let mut table = Self {
            header,
            scales: Vec::new(),
            rows_i8: Vec::new(),
            rows_f32: Vec::new(),
        };
        match dtype {
            RowType::F32 => table.rows_f32 = rows.to_vec(),
            RowType::I8 => {
                table.scales.reserve(n);
                table.rows_i8.reserve(n * dim);
                for row in rows.chunks_exact(dim) {
                    let max = row.iter().fold(0f32, |m, x| m.max(x.abs()));
                    let scale = if max > 0.0 { max / 127.0 } else { 0.0 };
                    table.scales.push(scale);
                    table.rows_i8.extend(row.iter().map(|x| {
                        if scale > 0.0 {
                            (x / scale).round().clamp(-127.0, 127.0) as i8
                        } else {
                            0
                        }
                    }));
                }
            }
        }
        Ok(table)
    }

    /// The header (id, dim, tokenizer, provenance).
    pub fn header(&self) -> &TableHeader {
        &self.header
    }

    /// Row `id` as `f32` values (`None` past the last row).
    pub fn row(&self, id: usize) -> Option<Vec<f32>> {
        if id >= self.header.rows {
            return None;
        }
        let mut acc = vec![0f32; self.header.dim];
        self.add_row(id, &mut acc);
        Some(acc)
    }

    /// Adds row `id` to `acc`.
    #[inline]
    fn add_row(&self, id: usize, acc: &mut [f32]) {
        let d = self.header.dim;
        match self.header.dtype {
            RowType::F32 => {
                for (a, x) in acc.iter_mut().zip(&self.rows_f32[id * d..(id + 1) * d]) {
                    *a += x;
                }
            }
            RowType::I8 => {
                let s = self.scales[id];
                for (a, &q) in acc.iter_mut().zip(&self.rows_i8[id * d..(id + 1) * d]) {
                    *a += f32::from(q) * s;
                }
            }
        }
    }

    /// The file bytes (see the module docs for the format).
    pub fn to_bytes(&self) -> Result<Vec<u8>, EmbedError> {
        let header = serde_json::to_vec(&self.header).map_err(|e| EmbedError::Load {
            path: self.header.id.clone(),
            message: e.to_string(),
        })?;
        let payload = match self.header.dtype {
            RowType::I8 => 4 * self.scales.len() + self.rows_i8.len(),
            RowType::F32 => 4 * self.rows_f32.len(),
        };
        let mut out = Vec::with_capacity(16 + header.len() + 3 + payload);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.resize(out.len().next_multiple_of(4), 0);
        match self.header.dtype {
            RowType::I8 => {
                self.scales
                    .iter()
                    .for_each(|s| out.extend_from_slice(&s.to_le_bytes()));
                out.extend(self.rows_i8.iter().map(|&q| q as u8));
            }
            RowType::F32 => self
                .rows_f32
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        }
        Ok(out)
    }

    /// Parses table file bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EmbedError> {
        let bad = |message: String| EmbedError::Load {
            path: "static table".into(),
            message,
        };
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(bad("not a RouteIQ static table (bad magic)".into()));
        }
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let version = u32_at(8);
        if version != VERSION {
            return Err(bad(format!(
                "format version {version}, this build reads {VERSION}"
            )));
        }
        let hlen = u32_at(12) as usize;
        let header_end = 16usize.checked_add(hlen).filter(|&e| e <= bytes.len());
        let Some(header_end) = header_end else {
            return Err(bad("truncated header".into()));
        };
        let header: TableHeader = serde_json::from_slice(&bytes[16..header_end])
            .map_err(|e| bad(format!("header: {e}")))?;
        if header.vocab.len() != header.rows || header.dim == 0 {
            return Err(bad(format!(
                "{} vocabulary entries for {} rows of {}",
                header.vocab.len(),
                header.rows,
                header.dim
            )));
        }
        let body = &bytes[header_end.next_multiple_of(4).min(bytes.len())..];
        let (n, d) = (header.rows, header.dim);
        let mut table = Self {
            header,
            scales: Vec::new(),
            rows_i8: Vec::new(),
            rows_f32: Vec::new(),
        };
        let f32s = |b: &[u8]| {
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        match table.header.dtype {
            RowType::I8 => {
                if body.len() != 4 * n + n * d {
                    return Err(bad(format!(
                        "{} payload bytes, expected {}",
                        body.len(),
                        4 * n + n * d
                    )));
                }
                table.scales = f32s(&body[..4 * n]);
                table.rows_i8 = body[4 * n..].iter().map(|&b| b as i8).collect();
            }
            RowType::F32 => {
                if body.len() != 4 * n * d {
                    return Err(bad(format!(
                        "{} payload bytes, expected {}",
                        body.len(),
                        4 * n * d
                    )));
                }
                table.rows_f32 = f32s(body);
            }
        }
        Ok(table)
    }
}

/// The static embedder: [`WordPiece`] tokens → mean of their table rows → L2 norm.
#[derive(Debug, Clone)]
pub struct StaticEmbedder {
    table: StaticTable,
    tokenizer: WordPiece,
}

impl StaticEmbedder {
    /// An embedder over a table.
    pub fn new(table: StaticTable) -> Result<Self, EmbedError> {
        let tokenizer = WordPiece::new(table.header.vocab.clone(), table.header.tokenizer.clone())?;
        Ok(Self { table, tokenizer })
    }

    /// Reads a table file (see the module docs).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, EmbedError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| EmbedError::Load {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_bytes(&bytes).map_err(|e| match e {
            EmbedError::Load { message, .. } => EmbedError::Load {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses table file bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EmbedError> {
        Self::new(StaticTable::from_bytes(bytes)?)
    }

    /// Fetches [`TABLE_FILE`] of the model directory `dir_uri` from `store`, checks it
    /// against the directory's `manifest.json`, and loads it.
    pub fn from_store(store: &dyn ModelStore, dir_uri: &str) -> Result<Self, EmbedError> {
        let model =
            fetch_verified(store, dir_uri, &[TABLE_FILE]).map_err(|e| EmbedError::Load {
                path: dir_uri.to_owned(),
                message: e.to_string(),
            })?;
        match model.path(TABLE_FILE) {
            Some(path) => Self::load(path),
            None => Err(EmbedError::Load {
                path: dir_uri.to_owned(),
                message: "no table file".into(),
            }),
        }
    }

    /// The table.
    pub fn table(&self) -> &StaticTable {
        &self.table
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &WordPiece {
        &self.tokenizer
    }

    /// Embedding of already tokenised ids (no special tokens), skipping unknown and special
    /// tokens and ids outside the table.
    pub fn embed_ids(&self, ids: &[u32]) -> Vec<f32> {
        let mut acc = vec![0f32; self.table.header.dim];
        let mut n = 0usize;
        for &id in ids {
            if (id as usize) < self.table.header.rows && !self.tokenizer.is_special(id) {
                self.table.add_row(id as usize, &mut acc);
                n += 1;
            }
        }
        if n > 0 {
            let inv = 1.0 / n as f32;
            acc.iter_mut().for_each(|a| *a *= inv);
        }
        l2_normalize(&mut acc);
        acc
    }
}

impl Embedder for StaticEmbedder {
    fn id(&self) -> &str {
        &self.table.header.id
    }

    fn dim(&self) -> usize {
        self.table.header.dim
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let mut ids = Vec::new();
        self.tokenizer
            .encode_into(text, false, Some(self.table.header.max_tokens), &mut ids);
        Ok(self.embed_ids(&ids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::embed::cosine;

    fn tokenizer() -> WordPiece {
        WordPiece::from_tokenizer_json(include_str!("../../tests/data/tiny/tokenizer.json"))
            .unwrap()
    }

    /// Row `i` = (i, 1, -i/2) scaled, so means are easy to predict.
    fn rows(n: usize) -> Vec<f32> {
        (0..n)
            .flat_map(|i| [i as f32, 1.0, -(i as f32) / 2.0])
            .collect()
    }

    #[test]
    fn mean_of_rows_normalised_and_round_trip() {
        let tok = tokenizer();
        let n = tok.vocab_size();
        for dtype in [RowType::F32, RowType::I8] {
            let table = StaticTable::from_rows(
                "static-test",
                &tok,
                3,
                &rows(n),
                dtype,
                serde_json::json!({"k": 1}),
            )
            .unwrap();
            let bytes = table.to_bytes().unwrap();
            let emb = StaticEmbedder::from_bytes(&bytes).unwrap();
            assert_eq!(emb.id(), "static-test");
            assert_eq!(emb.dim(), 3);
            assert_eq!(emb.table().header().source["k"], 1);

            let (hello, world) = (
                tok.token_id("hello").unwrap() as f32,
                tok.token_id("world").unwrap() as f32,
            );
            let mut want = vec![(hello + world) / 2.0, 1.0, -(hello + world) / 4.0];
            l2_normalize(&mut want);
            // "[CLS]" text, "qqq" (unknown) and "!"-less variants change nothing but the tokens.
            let got = emb.embed("Hello [CLS] qqq world").unwrap();
            assert!(
                cosine(&got, &want) > 0.9999,
                "{dtype:?}: {got:?} vs {want:?}"
            );
            let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn empty_and_unknown_text_is_the_zero_vector() {
        let tok = tokenizer();
        let table = StaticTable::from_rows(
            "s",
            &tok,
            3,
            &rows(tok.vocab_size()),
            RowType::I8,
            serde_json::Value::Null,
        )
        .unwrap();
        let emb = StaticEmbedder::new(table).unwrap();
        assert_eq!(emb.embed("").unwrap(), vec![0.0; 3]);
        assert_eq!(emb.embed("  \n ").unwrap(), vec![0.0; 3]);
        assert_eq!(emb.embed("qqq zzz").unwrap(), vec![0.0; 3]);
        assert_eq!(emb.embed_batch(&["", "hello"]).unwrap().len(), 2);
    }

    #[test]
    fn int8_rows_stay_close_to_f32() {
        let tok = tokenizer();
        let n = tok.vocab_size();
        let mut rng = fastrand::Rng::with_seed(3);
        let vals: Vec<f32> = (0..n * 16).map(|_| rng.f32() * 2.0 - 1.0).collect();
        let f = StaticEmbedder::new(
            StaticTable::from_rows("a", &tok, 16, &vals, RowType::F32, serde_json::Value::Null)
                .unwrap(),
        )
        .unwrap();
        let q = StaticEmbedder::new(
            StaticTable::from_rows("a", &tok, 16, &vals, RowType::I8, serde_json::Value::Null)
                .unwrap(),
        )
        .unwrap();
        for text in [
            "hello world",
            "the router is fast, the models are rusty",
            "cafe",
        ] {
            assert!(cosine(&f.embed(text).unwrap(), &q.embed(text).unwrap()) > 0.999);
        }
    }

    #[test]
    fn rejects_bad_files() {
        let tok = tokenizer();
        let table = StaticTable::from_rows(
            "s",
            &tok,
            3,
            &rows(tok.vocab_size()),
            RowType::I8,
            serde_json::Value::Null,
        )
        .unwrap();
        let bytes = table.to_bytes().unwrap();
        assert!(StaticEmbedder::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(StaticEmbedder::from_bytes(b"not a table at all").is_err());
        let mut wrong_version = bytes.clone();
        wrong_version[8] = 9;
        assert!(StaticEmbedder::from_bytes(&wrong_version).is_err());
        assert!(
            StaticTable::from_rows(
                "s",
                &tok,
                3,
                &[0.0; 5],
                RowType::I8,
                serde_json::Value::Null
            )
            .is_err()
        );
        assert!(StaticEmbedder::load("/nonexistent/table.riqs").is_err());
    }
}
