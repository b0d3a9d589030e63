//! Where model files come from: a [`ModelStore`] turns a URI into a local file, and
//! [`fetch_verified`] checks the files of a model directory against its `manifest.json`.
//!
//! A model directory (what `models/fetch_models.sh` and `routeiq-embed distill` write) holds
//! its files and a `manifest.json`:
//!
//! ```json
//! {"format": 1, "id": "minilm-l6-v2-int8w",
//!  "files": {"model.onnx": {"sha256": "1be4…", "bytes": 22929293}, "tokenizer.json": {…}}}
//! ```
//!
//! # Sync, on purpose
//!
//! The trait is synchronous although the gateway is async. Models are loaded at start-up and
//! on reload, never on the request path, and what follows a fetch (sha256 of tens of MB,
//! parsing and optimising the ONNX graph) is CPU-bound work that has to run off the async
//! runtime anyway (`tokio::task::spawn_blocking`). A sync store lets fetch + verify + load be
//! one blocking closure; the S3 store (with the AWS work) will hold a runtime handle and
//! `block_on` its SDK calls inside that blocking thread, download into a local cache
//! directory keyed by ETag and return the cached path. It also keeps this crate free of an
//! async runtime (it builds for wasm32). [`ModelStore::version`] is the cheap check
//! (file mtime + size here, the object ETag on S3) a reload loop polls.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why a model file could not be fetched or verified.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The URI's scheme has no store in this build (e.g. `s3://` before the AWS work).
    #[error("no model store for '{uri}' (supported here: local paths and file:// URIs)")]
    UnsupportedScheme { uri: String },
    /// Reading the file failed.
    #[error("model file '{uri}': {message}")]
    Io { uri: String, message: String },
    /// The manifest is missing, unreadable or does not list the file.
    #[error("manifest '{uri}': {message}")]
    Manifest { uri: String, message: String },
    /// The file's size or sha256 differs from the manifest's.
    #[error("model file '{uri}' does not match its manifest: {message}")]
    Mismatch { uri: String, message: String },
}

/// A model file made available locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// Where to read it.
    pub path: PathBuf,
    /// The store's version tag of the object (see [`ModelStore::version`]).
    pub version: String,
}

/// A source of model files addressed by URI.
pub trait ModelStore: Send + Sync {
    /// Makes the object at `uri` available as a local file (a remote store downloads it into
    /// its cache first) and returns where.
    fn fetch(&self, uri: &str) -> Result<LocalFile, StoreError>;

    /// A cheap tag that changes whenever the object at `uri` changes (file mtime and size,
    /// an S3 ETag), for hot-reload polling.
    fn version(&self, uri: &str) -> Result<String, StoreError>;
}

/// Joins a directory URI and a file name (`s3://b/models` + `x.onnx` → `s3://b/models/x.onnx`).
pub fn join_uri(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The local filesystem: plain paths (absolute, or relative to the store's root) and
/// `file://` URIs.
#[derive(Debug, Clone, Default)]
pub struct FsModelStore {
    root: Option<PathBuf>,
}

impl FsModelStore {
    /// A store that resolves relative paths against the current directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that resolves relative paths against `root`.
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        Self {
            root: Some(root.into()),
        }
    }

    /// The local path of `uri`.
    pub fn resolve(&self, uri: &str) -> Result<PathBuf, StoreError> {
        let path = if let Some(rest) = uri.strip_prefix("file://") {
            PathBuf::from(rest)
        } else if uri.contains("://") {
            return Err(StoreError::UnsupportedScheme {
                uri: uri.to_owned(),
            });
        } else {
            PathBuf::from(uri)
        };
        Ok(match &self.root {
            Some(root) if path.is_relative() => root.join(path),
            _ => path,
        })
    }
}

impl ModelStore for FsModelStore {
    fn fetch(&self, uri: &str) -> Result<LocalFile, StoreError> {
        let path = self.resolve(uri)?;
        let version = self.version(uri)?;
        Ok(LocalFile { path, version })
    }

    fn version(&self, uri: &str) -> Result<String, StoreError> {
        let path = self.resolve(uri)?;
        let meta = std::fs::metadata(&path).map_err(|e| io_error(uri, &e))?;
        if !meta.is_file() {
            return Err(StoreError::Io {
                uri: uri.to_owned(),
                message: "not a file".into(),
            });
        }
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Ok(format!("{}-{}", meta.len(), mtime))
    }
}

fn io_error(uri: &str, e: &std::io::Error) -> StoreError {
    StoreError::Io {
        uri: uri.to_owned(),
        message: e.to_string(),
    }
}

/// One file of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Lowercase hex sha256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// A model directory's `manifest.json` (other keys are kept in `extra`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format (1).
    pub format: u32,
    /// Embedding-space or model id.
    #[serde(default)]
    pub id: String,
    /// The files, by name relative to the directory.
    pub files: std::collections::BTreeMap<String, ManifestEntry>,
    /// Everything else (provenance, dims, …).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Manifest {
    /// Name of the manifest file in a model directory.
    pub const FILE_NAME: &'static str = "manifest.json";

    /// A manifest listing `files` (name → local path), with their sums computed now.
    pub fn for_files<'a>(
        id: impl Into<String>,
        files: impl IntoIterator<Item = (&'a str, &'a Path)>,
        extra: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, StoreError> {
        let files = files
            .into_iter()
            .map(|(name, path)| {
                let (sha256, bytes) = sha256_file(path)?;
                Ok((name.to_owned(), ManifestEntry { sha256, bytes }))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Self {
            format: 1,
            id: id.into(),
            files,
            extra,
        })
    }

    /// Parses manifest JSON.
    pub fn from_json(uri: &str, json: &[u8]) -> Result<Self, StoreError> {
        let m: Manifest = serde_json::from_slice(json).map_err(|e| StoreError::Manifest {
            uri: uri.to_owned(),
            message: e.to_string(),
        })?;
        if m.format != 1 {
            return Err(StoreError::Manifest {
                uri: uri.to_owned(),
                message: format!("format {} (this build reads 1)", m.format),
            });
        }
        Ok(m)
    }

    /// Checks the local file `path` against the entry `name`.
    pub fn verify(&self, name: &str, path: &Path) -> Result<(), StoreError> {
        let uri = path.display().to_string();
        let entry = self.files.get(name).ok_or_else(|| StoreError::Manifest {
            uri: uri.clone(),
            message: format!("'{name}' is not listed"),
        })?;
        let len = std::fs::metadata(path)
            .map_err(|e| io_error(&uri, &e))?
            .len();
        if len != entry.bytes {
            return Err(StoreError::Mismatch {
                uri,
                message: format!("{len} bytes, manifest says {}", entry.bytes),
            });
        }
        let (sum, _) = sha256_file(path)?;
        if !sum.eq_ignore_ascii_case(&entry.sha256) {
            return Err(StoreError::Mismatch {
                uri,
                message: format!("sha256 {sum}, manifest says {}", entry.sha256),
            });
        }
        Ok(())
    }
}

/// Lowercase hex sha256 and size of a file.
pub fn sha256_file(path: &Path) -> Result<(String, u64), StoreError> {
    let uri = path.display().to_string();
    let mut file = std::fs::File::open(path).map_err(|e| io_error(&uri, &e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| io_error(&uri, &e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex(&hasher.finalize()), total))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| {
            [
                DIGITS[(b >> 4) as usize] as char,
                DIGITS[(b & 15) as usize] as char,
            ]
        })
        .collect()
}

/// Files of a model directory, fetched and checked against its manifest.
#[derive(Debug, Clone)]
pub struct VerifiedModel {
    /// The directory URI.
    pub dir_uri: String,
    /// Its manifest.
    pub manifest: Manifest,
    /// Local path of each requested file, in request order.
    pub files: Vec<(String, PathBuf)>,
    /// Version tag of the manifest (a new model always comes with a new manifest).
    pub version: String,
}

impl VerifiedModel {
    /// Local path of `name`, if it was requested.
    pub fn path(&self, name: &str) -> Option<&Path> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.as_path())
    }
}

/// Fetches `dir_uri/manifest.json` and `dir_uri/<name>` for each of `names` from `store` and
/// checks each file's size and sha256 against the manifest.
pub fn fetch_verified(
    store: &dyn ModelStore,
    dir_uri: &str,
    names: &[&str],
) -> Result<VerifiedModel, StoreError> {
    let manifest_uri = join_uri(dir_uri, Manifest::FILE_NAME);
    let local = store.fetch(&manifest_uri)?;
    let json = std::fs::read(&local.path).map_err(|e| io_error(&manifest_uri, &e))?;
    let manifest = Manifest::from_json(&manifest_uri, &json)?;
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let file = store.fetch(&join_uri(dir_uri, name))?;
        manifest.verify(name, &file.path)?;
        files.push(((*name).to_owned(), file.path));
    }
    Ok(VerifiedModel {
        dir_uri: dir_uri.to_owned(),
        manifest,
        files,
        version: local.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("routeiq-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn sha256_of_known_bytes() {
        let dir = temp_dir("sha");
        let p = dir.join("abc");
        std::fs::write(&p, b"abc").unwrap();
        let (sum, n) = sha256_file(&p).unwrap();
        assert_eq!(
            sum,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(n, 3);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn verified_fetch_accepts_matching_files_and_rejects_changed_ones() {
        let dir = temp_dir("verify");
        std::fs::write(dir.join("a.bin"), b"hello").unwrap();
        std::fs::write(dir.join("b.bin"), b"world").unwrap();
        let manifest = Manifest::for_files(
            "test",
            [
                ("a.bin", dir.join("a.bin").as_path()),
                ("b.bin", dir.join("b.bin").as_path()),
            ],
            serde_json::Map::new(),
        )
        .unwrap();
        std::fs::write(
            dir.join("manifest.json"),
            serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();

        let store = FsModelStore::new();
        let uri = format!("file://{}", dir.display());
        let ok = fetch_verified(&store, &uri, &["a.bin", "b.bin"]).unwrap();
        assert_eq!(ok.path("b.bin"), Some(dir.join("b.bin").as_path()));
        assert_eq!(ok.manifest.id, "test");

        // Relative to a root; unknown names; changed content of the same size.
        let rooted = FsModelStore::with_root(dir.parent().unwrap());
        let name = dir.file_name().unwrap().to_str().unwrap();
        assert!(fetch_verified(&rooted, name, &["a.bin"]).is_ok());
        assert!(matches!(
            fetch_verified(&store, &uri, &["c.bin"]),
            Err(StoreError::Io { .. })
        ));
        std::fs::write(dir.join("c.bin"), b"x").unwrap();
        assert!(matches!(
            fetch_verified(&store, &uri, &["c.bin"]),
            Err(StoreError::Manifest { .. })
        ));
        std::fs::write(dir.join("a.bin"), b"jello").unwrap();
        let err = fetch_verified(&store, &uri, &["a.bin"]).unwrap_err();
        assert!(matches!(err, StoreError::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains("sha256"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn versions_change_with_the_file_and_s3_is_not_here_yet() {
        let dir = temp_dir("version");
        let p = dir.join("m.bin");
        std::fs::write(&p, b"one").unwrap();
        let store = FsModelStore::new();
        let uri = p.display().to_string();
        let v1 = store.version(&uri).unwrap();
        std::fs::write(&p, b"three").unwrap();
        assert_ne!(store.version(&uri).unwrap(), v1);
        assert!(matches!(
            store.fetch("s3://bucket/models/m.bin"),
            Err(StoreError::UnsupportedScheme { .. })
        ));
        assert_eq!(join_uri("s3://b/models", "x.onnx"), "s3://b/models/x.onnx");
        assert_eq!(join_uri("s3://b/models/", "x.onnx"), "s3://b/models/x.onnx");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
