//! Lenient scalar deserializers for the raw config types.
//!
//! - Numbers and booleans accept strings that parse as such: a value resolved from
//!   `os.environ/NAME` is a string, and LiteLLM's pydantic models coerce them the same way.
//! - Booleans accept PyYAML spellings (`yes`/`no`/`on`/`off`).
//! - Strings accept numbers, kept as written (a numeric `model_info.id` is common).
//! - Secrets never echo their value in an error.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Unexpected, Visitor};

use super::SecretString;

/// Parses a PyYAML-style boolean (`true`, `yes`, `on`, `1`, ... in any case).
pub(super) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "on" | "1" => Some(true),
        "false" | "no" | "n" | "off" | "0" => Some(false),
        _ => None,
    }
}

macro_rules! lenient {
    ($name:ident, $fn:ident, $t:ty, $expecting:literal, $from_u64:expr, $from_i64:expr, $from_f64:expr, $from_bool:expr, $from_str:expr) => {
        pub(super) struct $name(pub(super) Option<$t>);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_unit<E: de::Error>(self) -> Result<$name, E> {
                        Ok($name(None))
                    }
                    fn visit_none<E: de::Error>(self) -> Result<$name, E> {
                        Ok($name(None))
                    }
                    fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<$name, D2::Error> {
                        d.deserialize_any(V)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$name, E> {
                        let f: fn(u64) -> Option<$t> = $from_u64;
                        f(v).map(|x| $name(Some(x)))
                            .ok_or_else(|| E::invalid_value(Unexpected::Unsigned(v), &self))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$name, E> {
                        let f: fn(i64) -> Option<$t> = $from_i64;
                        f(v).map(|x| $name(Some(x)))
                            .ok_or_else(|| E::invalid_value(Unexpected::Signed(v), &self))
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$name, E> {
                        let f: fn(f64) -> Option<$t> = $from_f64;
                        f(v).map(|x| $name(Some(x)))
                            .ok_or_else(|| E::invalid_value(Unexpected::Float(v), &self))
                    }
                    fn visit_bool<E: de::Error>(self, v: bool) -> Result<$name, E> {
                        let f: fn(bool) -> Option<$t> = $from_bool;
                        f(v).map(|x| $name(Some(x)))
                            .ok_or_else(|| E::invalid_type(Unexpected::Bool(v), &self))
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        let f: fn(&str) -> Option<$t> = $from_str;
                        f(v).map(|x| $name(Some(x)))
                            .ok_or_else(|| E::invalid_type(Unexpected::Str(v), &self))
                    }
                }
                d.deserialize_any(V)
            }
        }

        pub(super) fn $fn<'de, D: Deserializer<'de>>(d: D) -> Result<Option<$t>, D::Error> {
            $name::deserialize(d).map(|v| v.0)
        }
    };
}

fn f64_to_u64(v: f64) -> Option<u64> {
    (v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 1.8e19).then_some(v as u64)
}

/// `s` without Python's digit-group underscores (`100_000`, as `int()` and YAML 1.1 read
/// it): each `_` must sit between two digits, else `s` is returned as is (and fails to parse).
fn without_digit_underscores(s: &str) -> std::borrow::Cow<'_, str> {
    let b = s.as_bytes();
    let grouped = b.iter().enumerate().all(|(i, &c)| {
        c != b'_'
            || (i > 0 && b[i - 1].is_ascii_digit() && b.get(i + 1).is_some_and(u8::is_ascii_digit))
    });
    if grouped && s.contains('_') {
        std::borrow::Cow::Owned(s.replace('_', ""))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn str_to_u64(s: &str) -> Option<u64> {
    let s = without_digit_underscores(s.trim());
    s.parse::<u64>()
        .ok()
        .or_else(|| str_to_f64(&s).and_then(f64_to_u64))
}

fn str_to_f64(s: &str) -> Option<f64> {
    without_digit_underscores(s.trim())
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
}

lenient!(
    U64Like,
    opt_u64,
    u64,
    "a non-negative integer",
    Some,
    |v| u64::try_from(v).ok(),
    f64_to_u64,
    |_| None,
    str_to_u64
);

lenient!(
    U32Like,
    opt_u32,
    u32,
    "a non-negative integer",
    |v| u32::try_from(v).ok(),
    |v| u32::try_from(v).ok(),
    |v| f64_to_u64(v).and_then(|x| u32::try_from(x).ok()),
    |_| None,
    |s| str_to_u64(s).and_then(|x| u32::try_from(x).ok())
);

lenient!(
    F64Like,
    opt_f64,
    f64,
    "a number",
    |v| Some(v as f64),
    |v| Some(v as f64),
    Some,
    |_| None,
    str_to_f64
);

lenient!(
    BoolLike,
    opt_bool,
    bool,
    "a boolean",
    |_| None,
    |_| None,
    |_| None,
    Some,
    parse_bool
);

/// A string; numbers are accepted and kept as written (`api_version: 2024.10` is rare, but a
/// numeric `model_info.id` is common).
pub(super) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(StringLike).map(|s| s.0)
}

/// A secret: like [`opt_string`], and its errors never contain the value.
pub(super) fn opt_secret<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<SecretString>, D::Error> {
    d.deserialize_any(StringLike)
        .map(|s| s.0.map(SecretString::new))
}

struct ScalarString(Option<String>);
struct StringLike;

impl<'de> Visitor<'de> for StringLike {
    type Value = ScalarString;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_unit<E: de::Error>(self) -> Result<ScalarString, E> {
        Ok(ScalarString(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<ScalarString, E> {
        Ok(ScalarString(None))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<ScalarString, D::Error> {
        d.deserialize_any(StringLike)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarString, E> {
        Ok(ScalarString(Some(v.to_string())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarString, E> {
        Ok(ScalarString(Some(v.to_string())))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarString, E> {
        Ok(ScalarString(Some(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarString, E> {
        Ok(ScalarString(Some(v.to_string())))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<ScalarString, E> {
        Err(E::invalid_type(Unexpected::Other("a boolean"), &self))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        #[serde(default, deserialize_with = "opt_u64")]
        n: Option<u64>,
        #[serde(default, deserialize_with = "opt_u32")]
        small: Option<u32>,
        #[serde(default, deserialize_with = "opt_f64")]
        x: Option<f64>,
        #[serde(default, deserialize_with = "opt_bool")]
        b: Option<bool>,
        #[serde(default, deserialize_with = "opt_string")]
        s: Option<String>,
        #[serde(default, deserialize_with = "opt_secret")]
        secret: Option<SecretString>,
    }

    fn de(yaml: &str) -> Result<Sample, String> {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
        serde_path_to_error::deserialize(v).map_err(|e| format!("{}: {}", e.path(), e.inner()))
    }

    #[test]
    fn numbers_accept_numeric_strings() {
        let s = de("n: '100'\nsmall: 2000.0\nx: '0.5'").unwrap();
        assert_eq!(s.n, Some(100));
        assert_eq!(s.small, Some(2000));
        assert_eq!(s.x, Some(0.5));
        assert_eq!(de("n: ~").unwrap().n, None);
        // Python's digit groups, as LiteLLM's examples write limits.
        assert_eq!(de("n: '100_000'").unwrap().n, Some(100_000));
        assert_eq!(de("x: '1_000.5'").unwrap().x, Some(1000.5));
        assert!(de("n: '_100'").is_err());
        assert!(de("n: '100__0'").is_err());
        assert!(de("n: '1_'").is_err());
    }

    #[test]
    fn number_type_errors_name_the_field() {
        let e = de("n: abc").unwrap_err();
        assert_eq!(
            e,
            "n: invalid type: string \"abc\", expected a non-negative integer"
        );
        let e = de("n: -5").unwrap_err();
        assert!(e.starts_with("n: invalid value: integer `-5`"), "{e}");
        let e = de("small: 5000000000").unwrap_err();
        assert!(e.starts_with("small: invalid value"), "{e}");
        assert!(de("n: 1.5").is_err());
    }

    #[test]
    fn bools_accept_pyyaml_spellings() {
        assert_eq!(de("b: 'yes'").unwrap().b, Some(true));
        assert_eq!(de("b: False").unwrap().b, Some(false));
        assert_eq!(de("b: on").unwrap().b, Some(true));
        assert!(de("b: 3").is_err());
    }

    #[test]
    fn strings_keep_numbers_as_written() {
        assert_eq!(de("s: 2").unwrap().s.as_deref(), Some("2"));
        assert!(de("s: true").is_err());
    }

    #[test]
    fn secret_errors_do_not_echo() {
        let s = de("secret: 12345").unwrap();
        assert_eq!(s.secret.unwrap().expose(), "12345");
        let e = de("secret: {sk-abc: 1}").unwrap_err();
        assert!(!e.contains("sk-abc"), "{e}");
    }
}
