//! A pure-Rust BERT WordPiece tokenizer (the pipeline of all-MiniLM-L6-v2's `tokenizer.json`).
//!
//! It reproduces Hugging Face `tokenizers` for BERT-style files: special tokens matched in the
//! raw text, `BertNormalizer` (clean text, spaces around CJK ideographs, NFD + removal of
//! non-spacing marks, lowercase), `BertPreTokenizer` (split on whitespace, isolate
//! punctuation), greedy longest-match-first `WordPiece`, `[CLS] … [SEP]` and truncation.
//! The `tokenizers` crate itself is not wasm-friendly and is heavy to build; this one needs
//! only two small Unicode-table crates, so the static embedder builds with default features
//! (and for `wasm32-unknown-unknown`). The `embed_models` test checks that both produce the
//! same ids over the routing corpus.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use unicode_categories::UnicodeCategories;
use unicode_normalization::UnicodeNormalization;

use super::embed::EmbedError;

/// Bytes of text normalised at a time (see [`WordPiece::encode_plain`]).
const CHUNK: usize = 2048;

/// Settings of a BERT WordPiece pipeline (what `tokenizer.json` says about it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordPieceConfig {
    /// Drop control characters and map every whitespace to a space.
    pub clean_text: bool,
    /// Put spaces around CJK ideographs so that each is a word of its own.
    pub handle_chinese_chars: bool,
    /// Decompose (NFD) and drop non-spacing marks.
    pub strip_accents: bool,
    /// Lowercase the text.
    pub lowercase: bool,
    /// Token for words that cannot be split into vocabulary pieces.
    pub unk_token: String,
    /// Prefix of the pieces that continue a word (`##`).
    pub continuing_subword_prefix: String,
    /// Words longer than this (in characters) become `unk_token`.
    pub max_input_chars_per_word: usize,
    /// Token put before the sequence when special tokens are added.
    pub cls_token: String,
    /// Token put after the sequence when special tokens are added.
    pub sep_token: String,
    /// Tokens matched verbatim in the raw text before normalisation (`[CLS]`, `[MASK]`, …).
    pub special_tokens: Vec<String>,
    /// Maximum sequence length, special tokens included (`None`: no truncation).
    pub max_length: Option<usize>,
}

/// A WordPiece tokenizer: vocabulary plus [`WordPieceConfig`].
#[derive(Debug, Clone)]
pub struct WordPiece {
    config: WordPieceConfig,
    tokens: Vec<String>,
    ids: HashMap<String, u32>,
    unk_id: u32,
    cls_id: u32,
    sep_id: u32,
    /// Special tokens with their ids, longest first (so that the longest match wins).
    special: Vec<(String, u32)>,
    /// `is_special` by id.
    special_mask: Vec<bool>,
}

impl WordPiece {
    /// A tokenizer over `tokens` (token `i` has id `i`).
    pub fn new(tokens: Vec<String>, config: WordPieceConfig) -> Result<Self, EmbedError> {
        let ids: HashMap<String, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        if ids.len() != tokens.len() {
            return Err(load_error("the vocabulary has duplicate tokens"));
        }
        let id_of = |t: &str| {
            ids.get(t)
                .copied()
                .ok_or_else(|| load_error(&format!("token '{t}' is not in the vocabulary")))
        };
        let unk_id = id_of(&config.unk_token)?;
        let cls_id = id_of(&config.cls_token)?;
        let sep_id = id_of(&config.sep_token)?;
        let mut special = config
            .special_tokens
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| Ok((t.clone(), id_of(t)?)))
            .collect::<Result<Vec<_>, EmbedError>>()?;
        special.sort_by_key(|t| std::cmp::Reverse(t.0.len()));
        let special_mask = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let id = i as u32;
                special.iter().any(|(_, s)| *s == id)
                    || id == unk_id
                    || id == cls_id
                    || id == sep_id
                    || (t.starts_with("[unused") && t.ends_with(']'))
            })
            .collect();
        Ok(Self {
            config,
            tokens,
            ids,
            unk_id,
            cls_id,
            sep_id,
            special,
            special_mask,
        })
    }

    /// Reads a Hugging Face `tokenizer.json` with a BERT WordPiece pipeline.
    ///
    /// Accepts the pipeline of BERT-family models (`BertNormalizer` or none,
    /// `BertPreTokenizer`, `WordPiece`, `TemplateProcessing`/`BertProcessing` wrapping the
    /// sequence in `[CLS]`/`[SEP]`); anything else is an error rather than a silently
    /// different tokenisation.
    pub fn from_tokenizer_json(json: &str) -> Result<Self, EmbedError> {
        let file: TokenizerFile =
            serde_json::from_str(json).map_err(|e| load_error(&format!("tokenizer.json: {e}")))?;
        if file.model.kind != "WordPiece" {
            return Err(load_error(&format!(
                "model type '{}' is not WordPiece",
                file.model.kind
            )));
        }
        match file.pre_tokenizer.as_ref().map(|p| p.kind.as_str()) {
            Some("BertPreTokenizer") => {}
            other => {
                return Err(load_error(&format!(
                    "pre-tokenizer {other:?} is not BertPreTokenizer"
                )));
            }
        }
        let (clean_text, handle_chinese_chars, strip_accents, lowercase) = match &file.normalizer {
            None => (false, false, false, false),
            Some(n) if n.kind == "BertNormalizer" => {
                let lowercase = n.lowercase.unwrap_or(true);
                (
                    n.clean_text.unwrap_or(true),
                    n.handle_chinese_chars.unwrap_or(true),
                    n.strip_accents.unwrap_or(lowercase),
                    lowercase,
                )
            }
            Some(n) => {
                return Err(load_error(&format!(
                    "normalizer '{}' is not BertNormalizer",
                    n.kind
                )));
            }
        };
        let (cls_token, sep_token) = match &file.post_processor {
            Some(p) => p.cls_sep()?,
            None => return Err(load_error("no post-processor: expected [CLS] $A [SEP]")),
        };
        let mut vocab: Vec<(String, u32)> = file.model.vocab.into_iter().collect();
        vocab.sort_by_key(|(_, id)| *id);
        if vocab
            .iter()
            .enumerate()
            .any(|(i, (_, id))| *id as usize != i)
        {
            return Err(load_error("vocabulary ids are not 0..n"));
        }
        let special_tokens = file
            .added_tokens
            .iter()
            .map(|t| {
                if t.normalized || t.single_word || t.lstrip || t.rstrip {
                    Err(load_error(&format!(
                        "added token '{}' has options this tokenizer lacks",
                        t.content
                    )))
                } else {
                    Ok(t.content.clone())
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let config = WordPieceConfig {
            clean_text,
            handle_chinese_chars,
            strip_accents,
            lowercase,
            unk_token: file.model.unk_token,
            continuing_subword_prefix: file.model.continuing_subword_prefix,
            max_input_chars_per_word: file.model.max_input_chars_per_word,
            cls_token,
            sep_token,
            special_tokens,
            max_length: file.truncation.map(|t| t.max_length),
        };
        Self::new(vocab.into_iter().map(|(t, _)| t).collect(), config)
    }

    /// The settings.
    pub fn config(&self) -> &WordPieceConfig {
        &self.config
    }

    /// The vocabulary, indexed by id.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// Id of `token`, if it is in the vocabulary.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    /// Id of the unknown-word token.
    pub fn unk_id(&self) -> u32 {
        self.unk_id
    }

    /// Ids of `[CLS]` and `[SEP]`.
    pub fn cls_sep_ids(&self) -> (u32, u32) {
        (self.cls_id, self.sep_id)
    }

    /// True for the special tokens (`[CLS]`, `[PAD]`, …) and unused slots (`[unused12]`):
    /// vocabulary entries that ordinary text never tokenises to.
    #[inline]
    pub fn is_special(&self, id: u32) -> bool {
        self.special_mask.get(id as usize).copied().unwrap_or(false)
    }

    /// Token ids of `text`, like `tokenizers`' `encode(text, add_special_tokens)` with the
    /// file's truncation.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Vec<u32> {
        let mut out = Vec::new();
        self.encode_into(text, add_special_tokens, self.config.max_length, &mut out);
        out
    }

    /// Appends the ids of `text` to `out` (cleared first), keeping at most `max_length` ids
    /// (special tokens included; `None`: no limit). Stops reading the text once full.
    pub fn encode_into(
        &self,
        text: &str,
        add_special_tokens: bool,
        max_length: Option<usize>,
        out: &mut Vec<u32>,
    ) {
        out.clear();
        let reserved = if add_special_tokens { 2 } else { 0 };
        let limit = max_length.map_or(usize::MAX, |m| m.saturating_sub(reserved));
        if add_special_tokens {
            out.push(self.cls_id);
        }
        let base = out.len();
        let end = base.saturating_add(limit);
        let mut scratch = Scratch::default();
        let mut rest = text;
        while !rest.is_empty() && out.len() < end {
            match self.next_special(rest) {
                Some((at, len, id)) => {
                    self.encode_plain(&rest[..at], end, out, &mut scratch);
                    if out.len() < end {
                        out.push(id);
                    }
                    rest = &rest[at + len..];
                }
                None => {
                    self.encode_plain(rest, end, out, &mut scratch);
                    rest = "";
                }
            }
        }
        out.truncate(end);
        if add_special_tokens {
            out.push(self.sep_id);
        }
    }

    /// The earliest special token in `text` (longest at equal positions): byte offset, byte
    /// length, id.
    fn next_special(&self, text: &str) -> Option<(usize, usize, u32)> {
        let mut best: Option<(usize, usize, u32)> = None;
        for (tok, id) in &self.special {
            if let Some(at) = text.find(tok.as_str()) {
                // `special` is sorted longest first, so a tie keeps the longer token.
                if best.is_none_or(|(b, _, _)| at < b) {
                    best = Some((at, tok.len(), *id));
                }
            }
        }
        best
    }

    /// Normalises, pre-tokenises and WordPiece-splits text with no special tokens in it,
    /// appending ids to `out` until it holds `limit` ids.
    ///
    /// Long text is processed in pieces of about [`CHUNK`] bytes, cut before a space followed
    /// by an ASCII letter or digit: nothing in the pipeline crosses such a point (the space
    /// separates words, and the letter after it starts a new NFD sequence), so the ids are the
    /// same, and a huge prompt costs only the pieces read before the limit is reached.
    fn encode_plain(
        &self,
        mut text: &str,
        limit: usize,
        out: &mut Vec<u32>,
        scratch: &mut Scratch,
    ) {
        while text.len() > CHUNK && out.len() < limit {
            let cut = text.as_bytes()[CHUNK..]
                .windows(2)
                .position(|w| w[0] == b' ' && w[1].is_ascii_alphanumeric())
                .map(|i| CHUNK + i);
            let Some(cut) = cut else { break };
            self.encode_piece(&text[..cut], limit, out, scratch);
            text = &text[cut..];
        }
        self.encode_piece(text, limit, out, scratch);
    }

    /// [`WordPiece::encode_plain`] of one piece.
    fn encode_piece(&self, text: &str, limit: usize, out: &mut Vec<u32>, scratch: &mut Scratch) {
        if text.is_empty() || out.len() >= limit {
            return;
        }
        self.normalize(text, &mut scratch.normalized);
        let normalized = std::mem::take(&mut scratch.normalized);
        for word in normalized.split(char::is_whitespace) {
            let mut start = 0;
            for (i, c) in word.char_indices() {
                if is_bert_punctuation(c) {
                    self.word_pieces(&word[start..i], out, scratch);
                    self.word_pieces(&word[i..i + c.len_utf8()], out, scratch);
                    start = i + c.len_utf8();
                }
            }
            self.word_pieces(&word[start..], out, scratch);
            if out.len() >= limit {
                break;
            }
        }
        scratch.normalized = normalized;
    }

    /// `BertNormalizer` over `text`, into `into` (cleared first).
    fn normalize(&self, text: &str, into: &mut String) {
        into.clear();
        let c = &self.config;
        let cleaned = text.chars().filter_map(|ch| {
            if !c.clean_text {
                Some(ch)
            } else if ch == '\0' || ch == '\u{fffd}' || is_control(ch) {
                None
            } else if is_whitespace(ch) {
                Some(' ')
            } else {
                Some(ch)
            }
        });
        // Spaces around CJK ideographs, as a char stream.
        let spaced = cleaned.flat_map(|ch| {
            if c.handle_chinese_chars && is_chinese_char(ch) {
                [Some(' '), Some(ch), Some(' ')]
            } else {
                [Some(ch), None, None]
            }
            .into_iter()
            .flatten()
        });
        if c.strip_accents {
            let stripped = spaced.nfd().filter(|ch| !ch.is_mark_nonspacing());
            push_case(into, stripped, c.lowercase);
        } else {
            push_case(into, spaced, c.lowercase);
        }
    }

    /// WordPiece split of one pre-token (greedy longest match first).
    fn word_pieces(&self, word: &str, out: &mut Vec<u32>, scratch: &mut Scratch) {
        if word.is_empty() {
            return;
        }
        if word.chars().count() > self.config.max_input_chars_per_word {
            out.push(self.unk_id);
            return;
        }
        let mark = out.len();
        let prefix = &self.config.continuing_subword_prefix;
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let mut found = None;
            while start < end {
                let piece = &word[start..end];
                let id = if start > 0 {
                    scratch.piece.clear();
                    scratch.piece.push_str(prefix);
                    scratch.piece.push_str(piece);
                    self.ids.get(scratch.piece.as_str())
                } else {
                    self.ids.get(piece)
                };
                if let Some(&id) = id {
                    found = Some(id);
                    break;
                }
                // Step back one character.
                end -= piece.chars().next_back().map_or(1, char::len_utf8);
            }
            match found {
                Some(id) => {
                    out.push(id);
                    start = end;
                }
                None => {
                    out.truncate(mark);
                    out.push(self.unk_id);
                    return;
                }
            }
        }
    }
}

/// Reusable buffers of one `encode` call.
#[derive(Default)]
struct Scratch {
    normalized: String,
    piece: String,
}

fn push_case(into: &mut String, chars: impl Iterator<Item = char>, lowercase: bool) {
    if lowercase {
        chars
            .flat_map(char::to_lowercase)
            .for_each(|ch| into.push(ch));
    } else {
        chars.for_each(|ch| into.push(ch));
    }
}

fn load_error(message: &str) -> EmbedError {
    EmbedError::Load {
        path: "tokenizer".into(),
        message: message.into(),
    }
}

/// Whitespace as BERT sees it (tab, newline and carriage return included).
fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

/// Control characters as BERT sees them: Unicode "Other" categories, except tab and newlines.
fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && c.is_other()
}

/// ASCII punctuation (`$`, `+`, `^`, … included) or a Unicode punctuation category.
fn is_bert_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || c.is_punctuation()
}

/// CJK Unified Ideographs (and extensions, compatibility ideographs).
fn is_chinese_char(c: char) -> bool {
    matches!(
        c as u32,
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B920..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

/// The parts of `tokenizer.json` this tokenizer reads.
#[derive(Deserialize)]
struct TokenizerFile {
    #[serde(default)]
    added_tokens: Vec<AddedToken>,
    normalizer: Option<Normalizer>,
    pre_tokenizer: Option<Typed>,
    post_processor: Option<PostProcessor>,
    truncation: Option<Truncation>,
    model: Model,
}

#[derive(Deserialize)]
struct AddedToken {
    content: String,
    #[serde(default)]
    single_word: bool,
    #[serde(default)]
    lstrip: bool,
    #[serde(default)]
    rstrip: bool,
    #[serde(default)]
    normalized: bool,
}

#[derive(Deserialize)]
struct Normalizer {
    #[serde(rename = "type")]
    kind: String,
    clean_text: Option<bool>,
    handle_chinese_chars: Option<bool>,
    strip_accents: Option<bool>,
    lowercase: Option<bool>,
}

#[derive(Deserialize)]
struct Typed {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct PostProcessor {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    single: Vec<serde_json::Value>,
    cls: Option<(String, u32)>,
    sep: Option<(String, u32)>,
}

impl PostProcessor {
    /// `[CLS]` and `[SEP]` of a `TemplateProcessing` `[CLS] $A [SEP]` or a `BertProcessing`.
    fn cls_sep(&self) -> Result<(String, String), EmbedError> {
        match self.kind.as_str() {
            "BertProcessing" => match (&self.cls, &self.sep) {
                (Some(c), Some(s)) => Ok((c.0.clone(), s.0.clone())),
                _ => Err(load_error("BertProcessing without cls/sep")),
            },
            "TemplateProcessing" => {
                let special = |v: &serde_json::Value| {
                    v.pointer("/SpecialToken/id")
                        .and_then(|s| s.as_str())
                        .map(str::to_owned)
                };
                match self.single.as_slice() {
                    [first, seq, last] if seq.get("Sequence").is_some() => {
                        match (special(first), special(last)) {
                            (Some(c), Some(s)) => Ok((c, s)),
                            _ => Err(load_error("template is not [CLS] $A [SEP]")),
                        }
                    }
                    _ => Err(load_error("template is not [CLS] $A [SEP]")),
                }
            }
            other => Err(load_error(&format!(
                "post-processor '{other}' is not supported"
            ))),
        }
    }
}

#[derive(Deserialize)]
struct Truncation {
    max_length: usize,
}

#[derive(Deserialize)]
struct Model {
    #[serde(rename = "type")]
    kind: String,
    unk_token: String,
    #[serde(default = "default_prefix")]
    continuing_subword_prefix: String,
    #[serde(default = "default_max_chars")]
    max_input_chars_per_word: usize,
    vocab: HashMap<String, u32>,
}

fn default_prefix() -> String {
    "##".into()
}

fn default_max_chars() -> usize {
    100
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> WordPiece {
        let json = include_str!("../../tests/data/tiny/tokenizer.json");
        match WordPiece::from_tokenizer_json(json) {
            Ok(t) => t,
            Err(e) => panic!("tiny tokenizer: {e}"),
        }
    }

    #[test]
    fn tiny_tokenizer_matches_the_python_ids() {
        let expected: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/tiny/expected.json")).unwrap();
        let tok = tiny();
        for case in expected["cases"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let ids: Vec<u32> = case["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(tok.encode(text, true), ids, "{text:?}");
        }
    }

    #[test]
    fn special_tokens_punctuation_and_truncation() {
        let tok = tiny();
        let id = |t: &str| tok.token_id(t).unwrap();
        // "[MASK]" in the raw text is the special token; "hello!" splits the "!".
        assert_eq!(
            tok.encode("hello[MASK]world!", false),
            vec![id("hello"), id("[MASK]"), id("world"), id("!")]
        );
        // Continuation pieces and unknown words.
        assert_eq!(
            tok.encode("rusty routers", false),
            vec![id("rust"), id("##y"), id("route"), id("##r"), id("##s")]
        );
        assert_eq!(tok.encode("qqq", false), vec![tok.unk_id()]);
        // Truncation keeps [CLS] and [SEP] within max_length (8 in the tiny file).
        let long = tok.encode("a b a b a b a b a b a b", true);
        assert_eq!(long.len(), 8);
        assert_eq!(long.first(), Some(&id("[CLS]")));
        assert_eq!(long.last(), Some(&id("[SEP]")));
        assert_eq!(tok.encode("", true), vec![id("[CLS]"), id("[SEP]")]);
        assert!(tok.encode(" \t\n", false).is_empty());
        // Accents stripped, case folded, control characters dropped.
        assert_eq!(tok.encode("CAFÉ\u{0007}", false), vec![id("cafe")]);
        assert!(tok.is_special(id("[PAD]")) && !tok.is_special(id("hello")));
    }

    #[test]
    fn long_text_in_pieces_gives_the_same_ids() {
        let tok = tiny();
        let text = "Hello, world! Café rusty routers \u{301}are fast; un known zzz ".repeat(200);
        assert!(text.len() > 4 * CHUNK);
        // Reference: the whole text normalised at once.
        let mut whole = Vec::new();
        tok.encode_piece(&text, usize::MAX, &mut whole, &mut Scratch::default());
        assert_eq!(tok.encode_into_vec(&text), whole);
        // A limit stops early and keeps a prefix.
        let mut some = Vec::new();
        tok.encode_into(&text, false, Some(10), &mut some);
        assert_eq!(some, whole[..10]);
    }

    impl WordPiece {
        fn encode_into_vec(&self, text: &str) -> Vec<u32> {
            let mut out = Vec::new();
            self.encode_into(text, false, None, &mut out);
            out
        }
    }

    #[test]
    fn rejects_other_pipelines() {
        let mut file: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/tiny/tokenizer.json")).unwrap();
        file["model"]["type"] = "BPE".into();
        assert!(WordPiece::from_tokenizer_json(&file.to_string()).is_err());
        assert!(WordPiece::from_tokenizer_json("{").is_err());
    }
}
