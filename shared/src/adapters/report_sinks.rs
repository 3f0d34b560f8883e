//! Report sinks without AWS: in memory (tests) and a local directory (the CLI).

use crate::core::errors::BackendError;
use crate::recon::ports::ReportSink;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct MemoryReportSink {
    objects: Mutex<BTreeMap<String, (String, Vec<u8>)>>,
}

impl MemoryReportSink {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn keys(&self) -> Vec<String> {
        self.objects.lock().expect("lock").keys().cloned().collect()
    }

    pub fn text(&self, key: &str) -> Option<String> {
        self.objects
            .lock()
            .expect("lock")
            .get(key)
            .map(|(_, body)| String::from_utf8_lossy(body).into_owned())
    }

    pub fn content_type(&self, key: &str) -> Option<String> {
        self.objects
            .lock()
            .expect("lock")
            .get(key)
            .map(|(ct, _)| ct.clone())
    }
}

#[async_trait]
impl ReportSink for MemoryReportSink {
    async fn put(&self, key: &str, content_type: &str, body: Vec<u8>) -> Result<(), BackendError> {
        self.objects
            .lock()
            .expect("lock")
            .insert(key.to_string(), (content_type.to_string(), body));
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self
            .objects
            .lock()
            .expect("lock")
            .get(key)
            .map(|(_, body)| body.clone()))
    }
}

/// Objects as files under `root` (the key's `/` become directories).
#[derive(Debug, Clone)]
pub struct LocalDirReportSink {
    root: PathBuf,
}

impl LocalDirReportSink {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Keys are built from store codes and run ids, both restricted to `[A-Za-z0-9_-]`; this refuses anything
    /// that could still leave `root`.
    fn path(&self, key: &str) -> Result<PathBuf, BackendError> {
        let relative = Path::new(key);
        let plain = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        if key.is_empty() || !plain {
            return Err(BackendError::new(
                "reports",
                format!("report key {key:?} is not a plain relative path"),
            ));
        }
        Ok(self.root.join(relative))
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> BackendError {
    BackendError::new("reports", format!("{what} {}: {e}", path.display()))
}

#[async_trait]
impl ReportSink for LocalDirReportSink {
    async fn put(&self, key: &str, _content_type: &str, body: Vec<u8>) -> Result<(), BackendError> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| io_error("create", dir, e))?;
        }
        // Write then rename, so a reader (or a crash) never sees half a report.
        let temporary = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&temporary, body)
            .await
            .map_err(|e| io_error("write", &temporary, e))?;
        tokio::fs::rename(&temporary, &path)
            .await
            .map_err(|e| io_error("rename", &path, e))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(body) => Ok(Some(body)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("read", &path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_directory_round_trip_and_refuses_escapes() {
        let root =
            std::env::temp_dir().join(format!("recon-sink-{}", uuid::Uuid::new_v4().simple()));
        let sink = LocalDirReportSink::new(&root);
        sink.put("reports/a/b.json", "application/json", b"{}".to_vec())
            .await
            .unwrap();
        sink.put("reports/a/b.json", "application/json", b"[1]".to_vec())
            .await
            .unwrap();
        assert_eq!(sink.get("reports/a/b.json").await.unwrap().unwrap(), b"[1]");
        assert!(sink.get("reports/a/none.json").await.unwrap().is_none());
        assert!(sink.put("../x", "t", vec![]).await.is_err());
        assert!(sink.put("/etc/x", "t", vec![]).await.is_err());
        let leftovers: Vec<_> = std::fs::read_dir(root.join("reports/a")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left");
        std::fs::remove_dir_all(root).unwrap();
    }
}
