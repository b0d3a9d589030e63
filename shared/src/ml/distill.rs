//! Distillation of the static embedder from the transformer (the model2vec recipe).
//!
//! 1. Embed every vocabulary token on its own with the teacher: the sequence
//!    `[CLS] token [SEP]`, mean-pooled and normalised (special and `[unused]` tokens get zero
//!    rows: ordinary text never tokenises to them).
//! 2. Reduce the dimensions with PCA (centre, covariance, symmetric eigendecomposition with
//!    `nalgebra`, keep the top components).
//! 3. Weight each row by the SIF weight of its token, `a / (a + p(token))`, with `p` the
//!    token's frequency in a corpus ([`TokenCounts`]): frequent tokens ("the", "?") count
//!    little in a prompt's mean, rare ones a lot. The weights are baked into the rows.
//! 4. Store int8 rows with a per-row scale ([`StaticTable`]).
//!
//! Run by `routeiq-embed distill` (see `models/README.md`); the trainer can call
//! [`distill_static`] directly.

use std::path::Path;
use std::time::Instant;

use nalgebra::{DMatrix, SymmetricEigen};

use super::embed::EmbedError;
use super::static_embed::{RowType, StaticTable};
use super::transformer::TransformerEmbedder;
use super::wordpiece::WordPiece;

/// A teacher that embeds token-id sequences (special tokens included, as given).
pub trait TokenEmbedder {
    /// Embedding-space id of the teacher.
    fn id(&self) -> &str;
    /// Embeddings of the sequences, one per sequence.
    fn embed_token_ids(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

impl TokenEmbedder for TransformerEmbedder {
    fn id(&self) -> &str {
        super::embed::Embedder::id(self)
    }

    fn embed_token_ids(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError> {
        TransformerEmbedder::embed_token_ids(self, sequences)
    }
}

/// Token counts over a corpus, for the SIF weights.
#[derive(Debug, Clone)]
pub struct TokenCounts {
    counts: Vec<u64>,
    total: u64,
    texts: usize,
}

impl TokenCounts {
    /// No counts yet, for a vocabulary of `vocab_size`.
    pub fn new(vocab_size: usize) -> Self {
        Self {
            counts: vec![0; vocab_size],
            total: 0,
            texts: 0,
        }
    }

    /// Counts the tokens of `texts` (all of each text, no truncation).
    pub fn from_texts<S: AsRef<str>>(
        tokenizer: &WordPiece,
        texts: impl IntoIterator<Item = S>,
    ) -> Self {
        let mut counts = Self::new(tokenizer.vocab_size());
        let mut ids = Vec::new();
        for text in texts {
            tokenizer.encode_into(text.as_ref(), false, None, &mut ids);
            counts.add(&ids);
        }
        counts
    }

    /// Counts one text's token ids.
    pub fn add(&mut self, ids: &[u32]) {
        for &id in ids {
            if let Some(c) = self.counts.get_mut(id as usize) {
                *c += 1;
                self.total += 1;
            }
        }
        self.texts += 1;
    }

    /// Occurrences of token `id`.
    pub fn count(&self, id: u32) -> u64 {
        self.counts.get(id as usize).copied().unwrap_or(0)
    }

    /// Tokens counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Texts counted.
    pub fn texts(&self) -> usize {
        self.texts
    }

    /// SIF weight `a / (a + p)` of token `id` (1 with no counts).
    pub fn sif_weight(&self, id: u32, a: f64) -> f64 {
        if self.total == 0 {
            return 1.0;
        }
        let p = self.count(id) as f64 / self.total as f64;
        a / (a + p)
    }
}

/// Settings of [`distill_static`].
#[derive(Debug, Clone)]
pub struct DistillConfig {
    /// Dimensions kept by PCA (at most the teacher's).
    pub dim: usize,
    /// SIF coefficient `a` (model2vec uses 1e-4).
    pub sif_coefficient: f64,
    /// Token sequences per teacher call.
    pub batch_size: usize,
    /// Row storage.
    pub dtype: RowType,
    /// Embedding-space id; default `static-<teacher family>-pca<dim>`.
    pub id: Option<String>,
}

impl Default for DistillConfig {
    fn default() -> Self {
        Self {
            dim: 128,
            sif_coefficient: 1e-4,
            batch_size: 64,
            dtype: RowType::I8,
            id: None,
        }
    }
}

/// What a distillation did.
#[derive(Debug, Clone)]
pub struct DistillReport {
    /// Vocabulary tokens embedded by the teacher.
    pub tokens_embedded: usize,
    /// Seconds spent in the teacher.
    pub teacher_seconds: f64,
    /// Seconds spent in PCA and weighting.
    pub pca_seconds: f64,
    /// Share of the variance the kept components explain.
    pub explained_variance: f64,
}

/// The teacher's embedding of every ordinary vocabulary token (step 1 of the recipe).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenMatrix {
    /// Teacher id.
    pub teacher: String,
    /// Vocabulary ids of the rows.
    pub ids: Vec<u32>,
    /// Row length.
    pub width: usize,
    /// `ids.len() × width` values, row-major.
    pub data: Vec<f32>,
}

const MATRIX_MAGIC: &[u8; 8] = b"RIQTOKM1";

impl TokenMatrix {
    /// Serialises the matrix (a cache, so distillations with other settings skip the teacher):
    /// magic `RIQTOKM1`, `u32` teacher-id length, the id, `u32` rows, `u32` width, rows ×
    /// `u32` ids, rows × width `f32`; little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(24 + self.teacher.len() + 4 * (self.ids.len() + self.data.len()));
        out.extend_from_slice(MATRIX_MAGIC);
        out.extend_from_slice(&(self.teacher.len() as u32).to_le_bytes());
        out.extend_from_slice(self.teacher.as_bytes());
        out.extend_from_slice(&(self.ids.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.width as u32).to_le_bytes());
        self.ids
            .iter()
            .for_each(|i| out.extend_from_slice(&i.to_le_bytes()));
        self.data
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        out
    }

    /// Parses [`TokenMatrix::to_bytes`] output.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EmbedError> {
        let bad = || EmbedError::Load {
            path: "token matrix".into(),
            message: "malformed token matrix".into(),
        };
        let mut cursor = Cursor { bytes, at: 0 };
        if cursor.take(8).ok_or_else(bad)? != MATRIX_MAGIC {
            return Err(bad());
        }
        let len = cursor.u32().ok_or_else(bad)? as usize;
        let teacher =
            String::from_utf8(cursor.take(len).ok_or_else(bad)?.to_vec()).map_err(|_| bad())?;
        let rows = cursor.u32().ok_or_else(bad)? as usize;
        let width = cursor.u32().ok_or_else(bad)? as usize;
        let ids = cursor
            .take(4 * rows)
            .ok_or_else(bad)?
            .chunks_exact(4)
            .map(le_u32)
            .collect();
        let data = cursor
            .take(4 * rows * width)
            .ok_or_else(bad)?
            .chunks_exact(4)
            .map(|b| f32::from_bits(le_u32(b)))
            .collect();
        if cursor.at != bytes.len() {
            return Err(bad());
        }
        Ok(Self {
            teacher,
            ids,
            width,
            data,
        })
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(le_u32)
    }
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Embeds every ordinary vocabulary token as `[CLS] token [SEP]` with `teacher` (step 1).
///
/// `progress(done, total)` is called after each teacher batch.
pub fn teacher_token_embeddings(
    teacher: &dyn TokenEmbedder,
    tokenizer: &WordPiece,
    batch_size: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<TokenMatrix, EmbedError> {
    let fail = |message: String| EmbedError::Inference(format!("distillation: {message}"));
    let (cls, sep) = tokenizer.cls_sep_ids();
    let ids: Vec<u32> = (0..tokenizer.vocab_size() as u32)
        .filter(|&id| !tokenizer.is_special(id))
        .collect();
    if ids.len() < 2 {
        return Err(fail(
            "fewer than two ordinary tokens in the vocabulary".into(),
        ));
    }
    let batch_size = batch_size.max(1);
    let mut data: Vec<f32> = Vec::new();
    let mut width = 0usize;
    for (done, chunk) in ids.chunks(batch_size).enumerate() {
        let seqs: Vec<Vec<u32>> = chunk.iter().map(|&id| vec![cls, id, sep]).collect();
        let vecs = teacher.embed_token_ids(&seqs)?;
        if vecs.len() != chunk.len() {
            return Err(fail(format!(
                "the teacher returned {} vectors for {}",
                vecs.len(),
                chunk.len()
            )));
        }
        for v in vecs {
            if width == 0 {
                width = v.len();
            }
            if v.len() != width || width == 0 {
                return Err(fail(format!(
                    "teacher vectors of length {} and {width}",
                    v.len()
                )));
            }
            data.extend_from_slice(&v);
        }
        progress(((done + 1) * batch_size).min(ids.len()), ids.len());
    }
    Ok(TokenMatrix {
        teacher: teacher.id().to_owned(),
        ids,
        width,
        data,
    })
}

/// Distils a static token-embedding table from `teacher` (see the module docs).
///
/// `progress(done, total)` is called after each teacher batch.
pub fn distill_static(
    teacher: &dyn TokenEmbedder,
    tokenizer: &WordPiece,
    counts: &TokenCounts,
    config: &DistillConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(StaticTable, DistillReport), EmbedError> {
    let started = Instant::now();
    let matrix = teacher_token_embeddings(teacher, tokenizer, config.batch_size, progress)?;
    let teacher_seconds = started.elapsed().as_secs_f64();
    let (table, mut report) = distill_from_matrix(&matrix, tokenizer, counts, config)?;
    report.teacher_seconds = teacher_seconds;
    Ok((table, report))
}

/// Steps 2–4 of the recipe (PCA, SIF weights, table) over the teacher's token embeddings.
pub fn distill_from_matrix(
    matrix: &TokenMatrix,
    tokenizer: &WordPiece,
    counts: &TokenCounts,
    config: &DistillConfig,
) -> Result<(StaticTable, DistillReport), EmbedError> {
    let fail = |message: String| EmbedError::Inference(format!("distillation: {message}"));
    let (n, width) = (matrix.ids.len(), matrix.width);
    if n < 2 || width == 0 || matrix.data.len() != n * width {
        return Err(fail(format!(
            "{} values for {n} tokens of width {width}",
            matrix.data.len()
        )));
    }
    if let Some(&bad) = matrix
        .ids
        .iter()
        .find(|&&id| id as usize >= tokenizer.vocab_size())
    {
        return Err(fail(format!("token id {bad} is outside the vocabulary")));
    }

    // 2. PCA.
    let started = Instant::now();
    let k = config.dim.clamp(1, width);
    let mut x = DMatrix::from_row_iterator(n, width, matrix.data.iter().map(|&v| f64::from(v)));
    let mean = x.row_mean();
    for mut row in x.row_iter_mut() {
        row -= &mean;
    }
    let cov = x.tr_mul(&x) / (n as f64 - 1.0);
    let eig = SymmetricEigen::new(cov);
    let mut order: Vec<usize> = (0..width).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let total_var: f64 = eig.eigenvalues.iter().map(|v| v.max(0.0)).sum();
    let kept_var: f64 = order[..k]
        .iter()
        .map(|&i| eig.eigenvalues[i].max(0.0))
        .sum();
    let mut basis = DMatrix::<f64>::zeros(width, k);
    for (j, &i) in order[..k].iter().enumerate() {
        let mut col = eig.eigenvectors.column(i).clone_owned();
        // Deterministic sign: the largest component positive (as sklearn's svd_flip).
        let big = col
            .iter()
            .copied()
            .fold(0f64, |m, v| if v.abs() > m.abs() { v } else { m });
        if big < 0.0 {
            col.neg_mut();
        }
        basis.set_column(j, &col);
    }
    let projected = x * basis;

    // 3. SIF weights, 4. the table (zero rows for special tokens).
    let mut rows = vec![0f32; tokenizer.vocab_size() * k];
    for (r, &id) in matrix.ids.iter().enumerate() {
        let w = counts.sif_weight(id, config.sif_coefficient);
        let dst = &mut rows[id as usize * k..(id as usize + 1) * k];
        for (j, v) in dst.iter_mut().enumerate() {
            *v = (projected[(r, j)] * w) as f32;
        }
    }
    let pca_seconds = started.elapsed().as_secs_f64();
    let explained_variance = if total_var > 0.0 {
        kept_var / total_var
    } else {
        0.0
    };
    let family = matrix.teacher.split('-').next().unwrap_or("teacher");
    let id = config
        .id
        .clone()
        .unwrap_or_else(|| format!("static-{family}-pca{k}"));
    let source = serde_json::json!({
        "method": "model2vec-style: [CLS] token [SEP] through the teacher, PCA, SIF weights a/(a+p)",
        "teacher": matrix.teacher,
        "pca_dims": k,
        "explained_variance": explained_variance,
        "sif_coefficient": config.sif_coefficient,
        "corpus_texts": counts.texts(),
        "corpus_tokens": counts.total(),
        "tokens_embedded": n,
    });
    let table = StaticTable::from_rows(id, tokenizer, k, &rows, config.dtype, source)?;
    Ok((
        table,
        DistillReport {
            tokens_embedded: n,
            teacher_seconds: 0.0,
            pca_seconds,
            explained_variance,
        },
    ))
}

/// The prompts of the routing data under `data_dir` (the repository's `../shared/data`):
/// `llmrouter/train.json` questions and the `prompt` column of `routellm/mmlu/*.csv`. Used
/// as the token-frequency corpus; missing parts are skipped, so the result may be empty.
pub fn routing_corpus(data_dir: &Path) -> Result<Vec<String>, std::io::Error> {
    let mut texts = Vec::new();
    let train = data_dir.join("llmrouter/train.json");
    if train.is_file() {
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(&train)?)?;
        texts.extend(
            rows.iter()
                .filter_map(|r| r.get("question")?.as_str().map(str::to_owned)),
        );
    }
    let mmlu = data_dir.join("routellm/mmlu");
    if mmlu.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(&mmlu)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "csv"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file)?;
            let mut records = parse_csv(&text).into_iter();
            let column = records
                .next()
                .and_then(|h| h.iter().position(|c| c == "prompt"))
                .unwrap_or(0);
            texts.extend(records.filter_map(|r| r.into_iter().nth(column)));
        }
    }
    Ok(texts)
}

/// RFC 4180 CSV (quoted fields, doubled quotes, newlines inside quotes) into records.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => record.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::embed::{Embedder, cosine};
    use crate::ml::static_embed::StaticEmbedder;

    /// A teacher whose token vectors are known: token t → e_(t mod 6) + 0.1·e_((t+1) mod 6).
    struct FakeTeacher;

    impl TokenEmbedder for FakeTeacher {
        fn id(&self) -> &str {
            "fake-teacher"
        }
        fn embed_token_ids(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError> {
            Ok(sequences
                .iter()
                .map(|s| {
                    let t = s[1] as usize;
                    let mut v = vec![0f32; 6];
                    v[t % 6] = 1.0;
                    v[(t + 1) % 6] += 0.1;
                    v
                })
                .collect())
        }
    }

    fn tokenizer() -> WordPiece {
        WordPiece::from_tokenizer_json(include_str!("../../tests/data/tiny/tokenizer.json"))
            .unwrap()
    }

    #[test]
    fn distils_a_table_with_pca_and_sif_weights() {
        let tok = tokenizer();
        let counts = TokenCounts::from_texts(&tok, ["the the the the route", "the model", "hello"]);
        assert_eq!(counts.count(tok.token_id("the").unwrap()), 5);
        assert_eq!(counts.texts(), 3);
        let config = DistillConfig {
            dim: 6,
            sif_coefficient: 0.1,
            batch_size: 4,
            dtype: RowType::F32,
            id: None,
        };
        let mut calls = 0;
        let (table, report) =
            distill_static(&FakeTeacher, &tok, &counts, &config, &mut |_, _| calls += 1).unwrap();
        assert_eq!(table.header().id, "static-fake-pca6");
        assert_eq!(report.tokens_embedded, tok.vocab_size() - 5);
        assert!(calls >= report.tokens_embedded / 4);
        assert!(
            (report.explained_variance - 1.0).abs() < 1e-9,
            "all components kept"
        );

        // Special tokens have zero rows; "the" (frequent) is down-weighted against "hello".
        assert!(
            table
                .row(tok.token_id("[CLS]").unwrap() as usize)
                .unwrap()
                .iter()
                .all(|&v| v == 0.0)
        );
        let norm = |t: &str| {
            table
                .row(tok.token_id(t).unwrap() as usize)
                .unwrap()
                .iter()
                .map(|v| v * v)
                .sum::<f32>()
                .sqrt()
        };
        assert!(
            norm("the") < 0.5 * norm("hello"),
            "{} vs {}",
            norm("the"),
            norm("hello")
        );

        // With all dimensions kept, similarities between single tokens follow the teacher's
        // centred vectors; fewer dimensions still give a working embedder.
        let emb = StaticEmbedder::new(table).unwrap();
        let a = emb.embed("hello").unwrap();
        assert!((a.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(cosine(&a, &emb.embed("hello").unwrap()) > 0.9999);
        let small = DistillConfig {
            dim: 2,
            dtype: RowType::I8,
            id: Some("s2".into()),
            ..config
        };
        let (t2, r2) = distill_static(&FakeTeacher, &tok, &counts, &small, &mut |_, _| {}).unwrap();
        assert_eq!((t2.header().id.as_str(), t2.header().dim), ("s2", 2));
        assert!(r2.explained_variance < 1.0 && r2.explained_variance > 0.0);
    }

    #[test]
    fn token_matrix_round_trip_and_reuse() {
        let tok = tokenizer();
        let m = teacher_token_embeddings(&FakeTeacher, &tok, 7, &mut |_, _| {}).unwrap();
        assert_eq!(
            (m.ids.len(), m.width, m.teacher.as_str()),
            (tok.vocab_size() - 5, 6, "fake-teacher")
        );
        let bytes = m.to_bytes();
        assert_eq!(TokenMatrix::from_bytes(&bytes).unwrap(), m);
        assert!(TokenMatrix::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        let counts = TokenCounts::new(tok.vocab_size());
        let config = DistillConfig {
            dim: 3,
            ..DistillConfig::default()
        };
        let (from_matrix, _) = distill_from_matrix(&m, &tok, &counts, &config).unwrap();
        let (direct, _) =
            distill_static(&FakeTeacher, &tok, &counts, &config, &mut |_, _| {}).unwrap();
        assert_eq!(from_matrix.to_bytes().unwrap(), direct.to_bytes().unwrap());
    }

    #[test]
    fn csv_quotes_and_newlines() {
        let recs = parse_csv("prompt,a,b\n\"line1\nline2, \"\"q\"\"\",1,0\r\nplain,0,1\n");
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[1][0], "line1\nline2, \"q\"");
        assert_eq!(recs[2], vec!["plain", "0", "1"]);
    }

    #[test]
    fn corpus_of_a_missing_dir_is_empty() {
        assert!(
            routing_corpus(Path::new("/nonexistent"))
                .unwrap()
                .is_empty()
        );
    }
}
