//! Hot reload: a router artifact in a slot that can be swapped while requests use it.
//!
//! A [`RouterSlot`] holds the current [`LoadedRouter`] behind an `Arc`. A request takes a
//! clone of that `Arc` and keeps using it to the end, so a swap never changes a decision
//! half-way; a reload loads and verifies the new file *beside* the old router and swaps the
//! pointer only when the new one is good. A broken new file (unreadable, bad manifest or
//! signature, wrong strategy or embedding space) leaves the old router serving, and the
//! error is returned (and kept, for `/router/explain` and logs).
//!
//! Change detection is the store's [`ModelStore::version`] of the artifact and of its
//! directory's `manifest.json` (file size + mtime locally, the ETag on S3); polling is the
//! caller's loop (`routing_strategy_args.hot_reload` + `reload_interval` in the gateway). A
//! failed version is not retried until the file changes again.

use std::sync::{Arc, Mutex, RwLock};

use super::artifact::{ArtifactError, VerifyPolicy};
use super::predictor::{LoadedRouter, ScorerLoader};
use super::store::{ModelStore, join_uri};
use super::strategies::MlStrategyName;

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The files have not changed since the last attempt.
    Unchanged,
    /// A new router is serving.
    Reloaded { version: String, sha256: String },
}

/// A swappable, verified router artifact.
pub struct RouterSlot {
    uri: String,
    name: String,
    manifest_uri: String,
    store: Arc<dyn ModelStore>,
    policy: VerifyPolicy,
    expected: MlStrategyName,
    /// The embedder the gateway runs (id and probe): a new artifact must use it.
    embedder: Option<(String, Vec<f32>)>,
    load_custom: Option<Arc<ScorerLoader>>,
    current: RwLock<Option<Arc<LoadedRouter>>>,
    /// Store versions (artifact, manifest) of the last attempt, successful or not.
    seen: Mutex<Option<String>>,
    last_error: Mutex<Option<String>>,
}

impl std::fmt::Debug for RouterSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterSlot")
            .field("uri", &self.uri)
            .field("strategy", &self.expected)
            .finish_non_exhaustive()
    }
}

/// Splits `dir/name` into the directory URI and the file name.
fn split_uri(uri: &str) -> (&str, &str) {
    match uri.rfind('/') {
        Some(i) => (&uri[..i], &uri[i + 1..]),
        None => ("", uri),
    }
}

impl RouterSlot {
    /// A slot for the artifact at `uri` (a path or a URI the store understands); the manifest
    /// is `manifest_uri`, else `manifest.json` in the artifact's directory. Nothing is loaded
    /// until [`RouterSlot::reload`].
    pub fn new(
        uri: &str,
        manifest_uri: Option<&str>,
        store: Arc<dyn ModelStore>,
        policy: VerifyPolicy,
        expected: MlStrategyName,
        embedder: Option<(String, Vec<f32>)>,
        load_custom: Option<Arc<ScorerLoader>>,
    ) -> RouterSlot {
        let (dir, name) = split_uri(uri);
        RouterSlot {
            uri: uri.to_string(),
            name: name.to_string(),
            manifest_uri: manifest_uri
                .map(str::to_string)
                .unwrap_or_else(|| join_uri(dir, "manifest.json")),
            store,
            policy,
            expected,
            embedder,
            load_custom,
            current: RwLock::new(None),
            seen: Mutex::new(None),
            last_error: Mutex::new(None),
        }
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    pub fn strategy(&self) -> MlStrategyName {
        self.expected
    }

    /// The router serving now, if one ever loaded.
    pub fn current(&self) -> Option<Arc<LoadedRouter>> {
        self.current.read().ok().and_then(|g| g.clone())
    }

    /// Why the last load failed, when it did (cleared by a successful load).
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|g| g.clone())
    }

    fn versions(&self) -> Result<String, ArtifactError> {
        let a = self
            .store
            .version(&self.uri)
            .map_err(|e| ArtifactError::Read {
                path: self.uri.clone(),
                message: e.to_string(),
            })?;
        let m = self.store.version(&self.manifest_uri).unwrap_or_default();
        Ok(format!("{a}|{m}"))
    }

    /// Loads the artifact if its files changed since the last attempt (`force`: always).
    /// On failure the previous router keeps serving and the error is returned.
    pub fn reload(&self, force: bool) -> Result<ReloadOutcome, ArtifactError> {
        let result = self.try_reload(force);
        if let Ok(mut last) = self.last_error.lock() {
            match &result {
                Ok(ReloadOutcome::Reloaded { .. }) => *last = None,
                Ok(ReloadOutcome::Unchanged) => {}
                Err(e) => *last = Some(e.to_string()),
            }
        }
        result
    }

    fn try_reload(&self, force: bool) -> Result<ReloadOutcome, ArtifactError> {
        let versions = self.versions()?;
        if !force && self.seen.lock().ok().and_then(|g| g.clone()).as_deref() == Some(&versions) {
            return Ok(ReloadOutcome::Unchanged);
        }
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(versions);
        }
        let read = |uri: &str| -> Result<Vec<u8>, ArtifactError> {
            let err = |message: String| ArtifactError::Read {
                path: uri.to_string(),
                message,
            };
            let local = self.store.fetch(uri).map_err(|e| err(e.to_string()))?;
            std::fs::read(&local.path).map_err(|e| err(e.to_string()))
        };
        let artifact = read(&self.uri)?;
        let manifest = read(&self.manifest_uri).ok();
        let router = LoadedRouter::from_bytes(
            &self.uri,
            &self.name,
            &artifact,
            manifest.as_deref(),
            &self.policy,
            Some(self.expected),
            self.load_custom.as_deref(),
        )?;
        if let Some((want, probe)) = &self.embedder {
            if &router.embedder.id != want {
                return Err(ArtifactError::Invalid {
                    path: self.uri.clone(),
                    message: format!(
                        "it was trained on embeddings '{}', the gateway runs '{want}'",
                        router.embedder.id
                    ),
                });
            }
            if !super::artifact::probe_matches(&router.embedder.probe, probe) {
                return Err(ArtifactError::Invalid {
                    path: self.uri.clone(),
                    message: format!(
                        "it was trained on another version of embedder '{want}' (its probe \
                         embedding differs): retrain it on the embedder the gateway runs"
                    ),
                });
            }
        }
        for w in &router.verification.warnings {
            tracing::warn!(artifact = %self.uri, "{w}");
        }
        let outcome = ReloadOutcome::Reloaded {
            version: router.version.clone(),
            sha256: router.verification.sha256.clone(),
        };
        if let Ok(mut cur) = self.current.write() {
            *cur = Some(Arc::new(router));
        }
        Ok(outcome)
    }

    /// One poll of a reload loop: reloads when the files changed, logs the outcome.
    pub fn poll(&self) {
        match self.reload(false) {
            Ok(ReloadOutcome::Unchanged) => {}
            Ok(ReloadOutcome::Reloaded { version, sha256 }) => tracing::info!(
                strategy = self.expected.as_str(),
                artifact = %self.uri,
                %version,
                %sha256,
                "router reloaded"
            ),
            Err(e) => tracing::warn!(
                strategy = self.expected.as_str(),
                artifact = %self.uri,
                error = %e,
                "router reload failed; the previous router keeps serving"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::artifact::{
        EmbedderSpec, FORMAT, FORMAT_VERSION, ModelSpec, RouterArtifact, RouterParams,
        update_manifest,
    };
    use crate::ml::store::FsModelStore;

    fn artifact(version: &str, ratings: Vec<f32>) -> Vec<u8> {
        RouterArtifact {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            strategy: "llmrouter-elo".into(),
            version: version.into(),
            embedder: EmbedderSpec {
                id: "hashed-ngram-v1-16".into(),
                dim: 16,
                probe: Vec::new(),
            },
            models: ["a", "b"]
                .iter()
                .map(|n| ModelSpec {
                    name: n.to_string(),
                    size_b: None,
                    input_price: None,
                    output_price: None,
                    mean_quality: None,
                })
                .collect(),
            params: RouterParams::Elo { ratings },
            training: serde_json::Value::Null,
        }
        .to_bytes()
    }

    fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) {
        let manifest = std::fs::read(dir.join("manifest.json")).ok();
        let m = update_manifest(
            manifest.as_deref(),
            name,
            bytes,
            serde_json::json!({}),
            None,
        )
        .unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
        std::fs::write(dir.join("manifest.json"), m).unwrap();
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir()
            .join(format!(
                "routeiq-slot-{tag}-{}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
            ))
            .with_extension("d");
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn another_version_of_the_embedder_is_refused() {
        let dir = temp_dir("probe");
        let mut art: serde_json::Value =
            serde_json::from_slice(&artifact("v1", vec![1000.0, 1100.0])).unwrap();
        art["embedder"]["probe"] = serde_json::json!([0.5, 0.5]);
        write(&dir, "elo.json", &serde_json::to_vec(&art).unwrap());
        let slot = |probe: Vec<f32>| {
            RouterSlot::new(
                &dir.join("elo.json").display().to_string(),
                None,
                Arc::new(FsModelStore::new()),
                VerifyPolicy::default(),
                MlStrategyName::Elo,
                Some(("hashed-ngram-v1-16".into(), probe)),
                None,
            )
        };
        let e = slot(vec![0.1, 0.2]).reload(true).unwrap_err();
        assert!(e.to_string().contains("another version"), "{e}");
        assert!(slot(vec![0.5, 0.5]).reload(true).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn reload_swaps_good_files_and_keeps_the_old_router_on_broken_ones() {
        let dir = temp_dir("reload");
        write(&dir, "elo.json", &artifact("v1", vec![1000.0, 1100.0]));
        let uri = dir.join("elo.json").display().to_string();
        let slot = RouterSlot::new(
            &uri,
            None,
            Arc::new(FsModelStore::new()),
            VerifyPolicy::default(),
            MlStrategyName::Elo,
            Some(("hashed-ngram-v1-16".into(), Vec::new())),
            None,
        );
        assert!(slot.current().is_none());
        assert!(matches!(
            slot.reload(false),
            Ok(ReloadOutcome::Reloaded { .. })
        ));
        let v1 = slot.current().unwrap();
        assert_eq!(v1.version, "v1");
        assert_eq!(slot.reload(false), Ok(ReloadOutcome::Unchanged));

        // A broken file (and its manifest) arrives: v1 keeps serving, the error is kept.
        write(&dir, "elo.json", b"{\"format\": \"routeiq-router\", trunc");
        assert!(slot.reload(false).is_err());
        assert_eq!(slot.current().unwrap().version, "v1");
        assert!(slot.last_error().unwrap().contains("not a valid"));
        // Not retried until the file changes.
        assert_eq!(slot.reload(false), Ok(ReloadOutcome::Unchanged));

        // A file whose manifest was not updated: mismatch, still v1.
        std::fs::write(dir.join("elo.json"), artifact("v-unlisted", vec![1.0, 2.0])).unwrap();
        let e = slot.reload(false).unwrap_err();
        assert!(matches!(e, ArtifactError::Mismatch { .. }), "{e}");
        assert_eq!(slot.current().unwrap().version, "v1");

        // A good v2: swapped in; a request holding v1 still has it.
        write(&dir, "elo.json", &artifact("v2", vec![1200.0, 1000.0]));
        assert!(matches!(
            slot.reload(false),
            Ok(ReloadOutcome::Reloaded { .. })
        ));
        assert_eq!(slot.current().unwrap().version, "v2");
        assert_eq!(v1.version, "v1");
        assert!(slot.last_error().is_none());

        // Another strategy's artifact is refused.
        let mut other: serde_json::Value =
            serde_json::from_slice(&artifact("v3", vec![1.0, 2.0])).unwrap();
        other["strategy"] = "llmrouter-knn".into();
        write(&dir, "elo.json", &serde_json::to_vec(&other).unwrap());
        let e = slot.reload(true).unwrap_err();
        assert!(e.to_string().contains("configured strategy"), "{e}");
        assert_eq!(slot.current().unwrap().version, "v2");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
