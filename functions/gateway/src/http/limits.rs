//! Request limits beyond the body size: JSON nesting depth (checked on the raw bytes, before
//! parsing, so a deeply nested body costs one linear scan) and the number of chat messages.

use crate::error::GatewayError;

/// Refuses a body whose arrays and objects nest deeper than `max_depth` (400). Brackets
/// inside strings do not count. Invalid JSON is left to the parser to report.
pub fn check_json_depth(bytes: &[u8], max_depth: usize) -> Result<(), GatewayError> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // Skip the string: to its closing quote, past escapes (`\"`, `\\`). Prompts
                // are long strings, so this jump (memchr) is where the scan spends its time.
                i += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &bytes[i.min(bytes.len())..]) {
                        None => return Ok(()), // unterminated: the parser reports it
                        Some(at) if bytes[i + at] == b'\\' => i += at + 2,
                        Some(at) => {
                            i += at;
                            break;
                        }
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(GatewayError::invalid(format!(
                        "request body nests JSON deeper than {max_depth} levels (ROUTEIQ_MAX_JSON_DEPTH)"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Refuses a chat request with more than `max` messages (400).
pub fn check_message_count(count: usize, max: usize) -> Result<(), GatewayError> {
    if count > max {
        return Err(GatewayError::invalid_param(
            format!(
                "'messages' has {count} entries; at most {max} are allowed (ROUTEIQ_MAX_MESSAGES)"
            ),
            "messages",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_only_structure() {
        assert!(check_json_depth(br#"{"a":[{"b":[1]}]}"#, 4).is_ok());
        assert!(check_json_depth(br#"{"a":[{"b":[1]}]}"#, 3).is_err());
        // Brackets inside strings, with escaped quotes, are text.
        assert!(check_json_depth(br#"{"a":"[[[[\"{{{{"}"#, 1).is_ok());
        let deep = format!("{}1{}", "[".repeat(65), "]".repeat(65));
        let e = check_json_depth(deep.as_bytes(), 64).unwrap_err();
        assert_eq!(e.status_code(), 400);
        assert!(e.to_string().contains("64"));
        assert!(check_json_depth(b"", 1).is_ok());
        // An escaped backslash ends before the quote that closes the string.
        assert!(check_json_depth(br#"{"a":"x\\\\","b":[[1]]}"#, 3).is_ok());
        assert!(check_json_depth(br#"{"a":"x\\\\","b":[[1]]}"#, 2).is_err());
        // Unterminated strings and a trailing escape end the scan without panicking.
        assert!(check_json_depth(br#"{"a":"[[[["#, 1).is_ok());
        assert!(check_json_depth(br#"{"a":"\"#, 1).is_ok());
        assert!(check_json_depth(b"\"", 1).is_ok());
    }

    #[test]
    fn message_count() {
        assert!(check_message_count(2048, 2048).is_ok());
        let e = check_message_count(2049, 2048).unwrap_err();
        assert_eq!(e.status_code(), 400);
    }
}
