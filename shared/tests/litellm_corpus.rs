//! LiteLLM's own example configs (`tests/configs/litellm_corpus/`, sources in its
//! `SOURCES.md`) load as the loading policy says: each serves, with the warnings recorded in
//! `expected.txt`, or is refused only for an access or spend control RouteIQ cannot enforce
//! (or, in two docs examples, an unfilled placeholder: [`UNFILLED_PLACEHOLDERS`]).
//!
//! - Every `os.environ/NAME` is set to a placeholder (hosts 127.0.0.1, ports a closed one,
//!   URLs `https://`), as a user switching binaries would have them set.
//! - `expected.txt` is the golden outcome of every file; `ROUTEIQ_BLESS=1 cargo test -p routeiq
//!   --test litellm_corpus` rewrites it (review the diff).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use routeiq::config::{ConfigError, load_str_with};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/configs/litellm_corpus")
}

/// Docs examples whose value at this path is an unfilled placeholder (`<your redis host>`):
/// a bad value of a key RouteIQ implements, so an error, as for any user's config.
const UNFILLED_PLACEHOLDERS: [(&str, &str); 4] = [
    (
        "35_docs_configs_load_balancing.yaml",
        "router_settings.redis_host",
    ),
    (
        "43_docs_lb_router_cache_params.yaml",
        "router_settings.redis_host",
    ),
    (
        "51_docs_virtual_keys_ollama.yaml",
        "general_settings.database_url",
    ),
    (
        "69_docs_vector_store_registry.yaml",
        "general_settings.database_url",
    ),
];

fn files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

/// One file's outcome, as `expected.txt` records it.
fn outcome(path: &Path) -> (bool, String) {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let yaml = std::fs::read_to_string(path).unwrap();
    let env = |var: &str| Some(routeiq_testkit::litellm_placeholder(var));
    // `include:` reads beside the config, as the gateway does for a config file; the files
    // corpus configs include live in `included/` (so the corpus scan does not take them).
    let read = |name: &str| {
        std::fs::read_to_string(corpus_dir().join("included").join(name)).map_err(|e| e.to_string())
    };
    let mut out = String::new();
    match load_str_with(&yaml, &env, Some(&read)) {
        Ok(l) => {
            let groups: std::collections::BTreeSet<&str> = l
                .config
                .model_list
                .iter()
                .map(|d| d.model_name.as_str())
                .collect();
            // Auto routers (`auto_router/...`) are model names, not deployments.
            let autos = l
                .config
                .model_list
                .iter()
                .filter(|d| d.litellm_params.auto_router.is_some())
                .count();
            let autos_note = match autos {
                0 => String::new(),
                n => format!(", {n} auto routers"),
            };
            writeln!(
                out,
                "## {name}: serves ({} deployments, {} groups{autos_note})",
                l.config.model_list.len() - autos,
                groups.len()
            )
            .unwrap();
            for w in &l.warnings {
                writeln!(out, "warning {} [{}]", w.path, w.kind.as_str()).unwrap();
            }
            (true, out)
        }
        Err(ConfigError::Invalid { problems, .. }) => {
            writeln!(out, "## {name}: refused").unwrap();
            let placeholder = UNFILLED_PLACEHOLDERS
                .iter()
                .find(|(file, _)| *file == name)
                .map(|(_, path)| *path);
            for p in &problems {
                assert!(
                    p.message.contains("which RouteIQ cannot enforce yet")
                        || placeholder == Some(p.path.as_str()),
                    "{name}: refused for something other than an unenforceable control: {p}"
                );
                writeln!(out, "error {}", p.path).unwrap();
            }
            (false, out)
        }
        Err(e @ ConfigError::Yaml(_)) => panic!("{name}: {e}"),
    }
}

#[test]
fn litellm_example_configs_serve_or_fail_closed() {
    let files = files();
    assert!(files.len() >= 20, "the corpus holds {} files", files.len());
    let mut report = String::new();
    let mut serving = 0;
    for f in &files {
        let (serves, text) = outcome(f);
        serving += usize::from(serves);
        report.push_str(&text);
    }
    writeln!(report, "## {serving} of {} serve", files.len()).unwrap();
    let golden = corpus_dir().join("expected.txt");
    if std::env::var("ROUTEIQ_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&golden, &report).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        expected == report,
        "the corpus outcome changed (ROUTEIQ_BLESS=1 rewrites {}):\n{}",
        golden.display(),
        diff(&expected, &report)
    );
    assert!(serving >= 20, "only {serving} LiteLLM configs serve");
}

/// The lines only one side has, marked `-` (expected) and `+` (now).
fn diff(expected: &str, now: &str) -> String {
    let old: Vec<&str> = expected.lines().collect();
    let new: Vec<&str> = now.lines().collect();
    let mut out = String::new();
    for l in &old {
        if !new.contains(l) {
            writeln!(out, "- {l}").unwrap();
        }
    }
    for l in &new {
        if !old.contains(l) {
            writeln!(out, "+ {l}").unwrap();
        }
    }
    out
}
