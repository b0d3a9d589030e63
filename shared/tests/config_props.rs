//! Property tests of the config loader (the stable-toolchain stand-in for cargo-fuzz):
//! arbitrary text, arbitrary YAML-ish documents and mutations of the corpus files never make
//! `load_str_with_env` panic, and every problem it reports names a path.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;

use proptest::prelude::*;
use routeiq::config::{ConfigError, load_str_with_env};

fn env(name: &str) -> Option<String> {
    (name == "SET_VAR").then(|| "value".to_string())
}

fn check(yaml: &str) -> Result<(), TestCaseError> {
    match load_str_with_env(yaml, &env) {
        Ok(_) | Err(ConfigError::Yaml(_)) => Ok(()),
        Err(ConfigError::Invalid { problems, .. }) => {
            prop_assert!(!problems.is_empty());
            for p in &problems {
                prop_assert!(!p.path.trim().is_empty(), "problem without a path: {p:?}");
                prop_assert!(
                    !p.message.trim().is_empty(),
                    "problem without a message: {p:?}"
                );
            }
            Ok(())
        }
    }
}

/// The corpus: every config under tests/configs (valid and invalid).
fn corpus() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/configs");
    let mut files = Vec::new();
    for dir in [root.clone(), root.join("invalid")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "yaml")
                && let Ok(text) = std::fs::read_to_string(&p)
            {
                files.push(text);
            }
        }
    }
    files.sort();
    assert!(
        files.len() >= 10,
        "config corpus not found under {}",
        root.display()
    );
    files
}

/// One edit to a document.
#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    Duplicate { at: usize, len: usize },
    Replace { at: usize, text: String },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let fragment = prop_oneof![
        Just("\n".to_string()),
        Just("  ".to_string()),
        Just(": ".to_string()),
        Just("- ".to_string()),
        Just("os.environ/".to_string()),
        Just("os.environ/UNSET_VAR".to_string()),
        Just("<<: *a\n".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("[".to_string()),
        Just("{".to_string()),
        Just("!!binary ".to_string()),
        Just("1e400".to_string()),
        Just("-1".to_string()),
        Just("null".to_string()),
        Just("~".to_string()),
        Just("\"".to_string()),
        Just("\t".to_string()),
        "[a-z_]{1,12}",
        any::<String>(),
    ];
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), fragment.clone()).prop_map(|(at, text)| Mutation::Insert { at, text }),
        (any::<usize>(), 0usize..80).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        (any::<usize>(), fragment).prop_map(|(at, text)| Mutation::Replace { at, text }),
    ]
}

fn boundary(s: &str, at: usize) -> usize {
    let mut i = at % (s.len() + 1);
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(doc: &mut String, m: &Mutation) {
    match m {
        Mutation::Delete { at, len } => {
            let a = boundary(doc, *at);
            let b = boundary(doc, a + len);
            doc.replace_range(a..b.max(a), "");
        }
        Mutation::Insert { at, text } => {
            let a = boundary(doc, *at);
            doc.insert_str(a, text);
        }
        Mutation::Duplicate { at, len } => {
            let a = boundary(doc, *at);
            let b = boundary(doc, a + len).max(a);
            let piece = doc[a..b].to_string();
            doc.insert_str(b, &piece);
        }
        Mutation::Replace { at, text } => {
            let a = boundary(doc, *at);
            let b = boundary(doc, a + text.len()).max(a);
            doc.replace_range(a..b, text);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn yaml_shaped_text_never_panics(
        lines in proptest::collection::vec(
            "( {0,6})(- )?([a-z_]{1,16}|os\\.environ/[A-Z_]{1,8}|[0-9.e+-]{1,6})(: ?)?([a-z0-9_./\\-\\[\\]{}]{0,16})?",
            0..40,
        )
    ) {
        check(&lines.join("\n"))?;
    }

    #[test]
    fn mutated_corpus_files_never_panic(
        pick in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 1..8),
    ) {
        let files = corpus();
        let mut doc = pick.get(&files).clone();
        for m in &mutations {
            apply(&mut doc, m);
        }
        check(&doc)?;
    }
}

/// Inputs that once looked risky, kept as regression cases.
#[test]
fn regression_inputs() {
    for yaml in [
        "",
        "~",
        "[]",
        "model_list:",
        "model_list: ~\nrouter_settings: 3",
        "model_list:\n  - ~\n  - 3\n  - []",
        "model_list:\n  - model_name: a\n    litellm_params: {model: 'openai/x', rpm: -1}",
        "<<: *undefined",
        "a: &x [*x]",
        "router_settings:\n  fallbacks: [{a: [b]}, 3, ~]",
        "environment_variables: {A: os.environ/A}",
        "model_list: [{model_name: a, litellm_params: {model: os.environ/}}]",
        "general_settings: {max_request_size_mb: 1e400}",
    ] {
        if let Err(e) = check(yaml) {
            panic!("{yaml:?}: {e}");
        }
    }
}
