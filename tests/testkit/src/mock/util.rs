//! Small helpers shared by the mock's endpoints.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// One raw query parameter.
pub(crate) fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

/// ~4 characters per token, at least 1.
pub(crate) fn tokens(chars: usize) -> u64 {
    (chars.div_ceil(4)).max(1) as u64
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The characters of the text in a message content: a string, or an array of parts with `text`
/// (OpenAI `{"type":"text","text":..}`, Anthropic text blocks); other parts count their JSON.
pub(crate) fn content_chars(content: &Value) -> usize {
    match content {
        Value::Null => 0,
        Value::String(s) => s.chars().count(),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p.get("text").and_then(Value::as_str) {
                Some(t) => t.chars().count(),
                None => match p.get("content") {
                    Some(c) => content_chars(c),
                    None => p.to_string().len(),
                },
            })
            .sum(),
        other => other.to_string().len(),
    }
}

/// The plain text of a message content (strings and `text` parts only), lower-cased.
pub(crate) fn own_text_lower(content: &Value) -> String {
    match content {
        Value::String(s) => s.to_lowercase(),
        Value::Array(parts) => parts
            .iter()
            .filter(|p| {
                matches!(
                    p.get("type").and_then(Value::as_str),
                    None | Some("text") | Some("input_text")
                )
            })
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase(),
        _ => String::new(),
    }
}

/// Whether the conversation's last message is a user message asking to "use the tool".
pub(crate) fn wants_tool(messages: Option<&Value>) -> bool {
    let Some(last) = messages.and_then(Value::as_array).and_then(|m| m.last()) else {
        return false;
    };
    last.get("role").and_then(Value::as_str) == Some("user")
        && last
            .get("content")
            .map(own_text_lower)
            .is_some_and(|t| t.contains("use the tool"))
}

/// Arguments that satisfy a JSON schema (roughly): every property gets a value of its type.
pub(crate) fn sample_args(schema: Option<&Value>) -> Value {
    match schema {
        Some(s) => sample_value(s, 0),
        None => Value::Object(Map::new()),
    }
}

fn sample_value(schema: &Value, depth: usize) -> Value {
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match ty {
        "object" => {
            let mut out = Map::new();
            if depth < 8 {
                if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                    for (k, v) in props {
                        out.insert(k.clone(), sample_value(v, depth + 1));
                    }
                }
            }
            Value::Object(out)
        }
        "array" => match schema.get("items") {
            Some(items) if depth < 8 => Value::Array(vec![sample_value(items, depth + 1)]),
            _ => Value::Array(Vec::new()),
        },
        "integer" | "number" => Value::from(1),
        "boolean" => Value::Bool(true),
        "null" => Value::Null,
        _ => Value::String("mock".into()),
    }
}

/// The text split into stream pieces: words, each after the first with its leading space.
pub(crate) fn pieces(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, word) in text.split(' ').enumerate() {
        if i == 0 {
            if !word.is_empty() {
                out.push(word.to_string());
            }
        } else {
            out.push(format!(" {word}"));
        }
    }
    out
}

/// A JSON string split into `n`-character pieces (for argument / input_json deltas).
pub(crate) fn split_chars(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

/// A deterministic unit vector for an input.
pub(crate) fn embedding(input: &str, dims: usize) -> Vec<f32> {
    // FNV-1a seed, then xorshift64*.
    let mut state: u64 = 0xcbf2_9ce4_8422_2325;
    for b in input.bytes() {
        state ^= u64::from(b);
        state = state.wrapping_mul(0x0100_0000_01b3);
    }
    if state == 0 {
        state = 1;
    }
    let mut v: Vec<f32> = (0..dims)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let x = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in &mut v {
            *x /= norm;
        }
    }
    v
}

/// Standard base64 with padding.
pub(crate) fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embedding("hello", 16);
        assert_eq!(a, embedding("hello", 16));
        assert_ne!(a, embedding("world", 16));
        let norm: f32 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }

    #[test]
    fn samples_schema() {
        let schema = json!({"type":"object","properties":{
            "city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]},"days":{"type":"integer"}}});
        assert_eq!(
            sample_args(Some(&schema)),
            json!({"city":"mock","unit":"c","days":1})
        );
    }

    #[test]
    fn splits_words() {
        assert_eq!(
            pieces("mock answer from x"),
            ["mock", " answer", " from", " x"]
        );
        assert!(pieces("").is_empty());
    }

    #[test]
    fn query_params() {
        assert_eq!(
            query_param("a=1&api-version=2024-06-01", "api-version"),
            Some("2024-06-01")
        );
        assert_eq!(query_param("a=1", "b"), None);
    }
}
