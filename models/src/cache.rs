//! The process-wide model cache: a model loads once per process, whatever number of strategies
//! and threads ask for it, and is shared read-only behind an [`Arc`].
//!
//! Entries are keyed by the model's type, its canonical path and the device. Two threads asking
//! for the same model at once load it once: the second waits for the first. A failed load is
//! not cached, so fixing the file and asking again works.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use candle_core::Device;

use crate::embed::TextEncoder;
use crate::forecast::Forecaster;
use crate::llm::Gemma;
use crate::{Error, Result};

type Slot = Arc<Mutex<Option<Arc<dyn Any + Send + Sync>>>>;

/// A cache of loaded models. [`global`] is the one the strategies use.
#[derive(Default)]
pub struct ModelCache {
    slots: Mutex<HashMap<(TypeId, PathBuf, String), Slot>>,
    /// Loads run so far (successful or not), per canonical path.
    loads: Mutex<HashMap<PathBuf, usize>>,
}

impl std::fmt::Debug for ModelCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelCache").field("loads", &self.loads()).finish_non_exhaustive()
    }
}

/// The process's cache.
pub fn global() -> &'static ModelCache {
    static CACHE: OnceLock<ModelCache> = OnceLock::new();
    CACHE.get_or_init(ModelCache::default)
}

impl ModelCache {
    /// An empty cache (tests; the strategies use [`global`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// How many loads this cache has run (successful or not).
    pub fn loads(&self) -> usize {
        self.loads.lock().unwrap_or_else(|p| p.into_inner()).values().sum()
    }

    /// How many loads this cache has run for the model at `path` (any type or device). Unlike
    /// [`loads`](Self::loads) it does not move when other models load on other threads.
    pub fn loads_of(&self, path: &Path) -> usize {
        let Ok(canonical) = path.canonicalize() else { return 0 };
        let counts = self.loads.lock().unwrap_or_else(|p| p.into_inner());
        counts.get(&canonical).copied().unwrap_or(0)
    }

    /// The model of type `T` at `path` on `device` (`cpu`, `cuda:0`), loading it with `load`
    /// the first time.
    pub fn get_or_load<T: Send + Sync + 'static>(
        &self,
        path: &Path,
        device: &str,
        load: impl FnOnce(&Path, &Device) -> Result<T>,
    ) -> Result<Arc<T>> {
        let canonical =
            path.canonicalize().map_err(|cause| Error::Io { path: path.to_path_buf(), cause })?;
        let dev = crate::device(device)?;
        let key = (TypeId::of::<T>(), canonical.clone(), format!("{dev:?}"));
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(key).or_default().clone()
        };
        let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(model) = guard.as_ref() {
            return downcast(model.clone(), &canonical);
        }
        *self
            .loads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(canonical.clone())
            .or_default() += 1;
        let model: Arc<T> = Arc::new(load(&canonical, &dev)?);
        *guard = Some(model.clone());
        Ok(model)
    }

    /// A forecaster folder written by `kairos train`.
    pub fn forecaster(&self, dir: &Path, device: &str) -> Result<Arc<Forecaster>> {
        self.get_or_load(dir, device, |p, d| Forecaster::load(p, d))
    }

    /// A Gemma GGUF file, behind a mutex (generation mutates its KV cache).
    pub fn gemma(&self, file: &Path, device: &str) -> Result<Arc<Mutex<Gemma>>> {
        self.get_or_load(file, device, |p, d| Ok(Mutex::new(Gemma::load(p, d)?)))
    }

    /// A sentence encoder folder (all-MiniLM-L6-v2).
    pub fn text_encoder(&self, dir: &Path, device: &str) -> Result<Arc<TextEncoder>> {
        self.get_or_load(dir, device, |p, d| TextEncoder::load(p, d))
    }
}

fn downcast<T: Send + Sync + 'static>(
    model: Arc<dyn Any + Send + Sync>,
    path: &Path,
) -> Result<Arc<T>> {
    model.downcast::<T>().map_err(|_| Error::ModelFile {
        path: path.to_path_buf(),
        reason: "cached under another type".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_once_across_threads_and_retries_after_a_failure() {
        let cache = ModelCache::new();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let err = cache
            .get_or_load::<String>(&dir, "cpu", |_, _| Err(Error::Data("broken".into())))
            .unwrap_err();
        assert!(err.to_string().contains("broken"));
        let got: Vec<Arc<String>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        cache
                            .get_or_load(&dir, "cpu", |p, _| {
                                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                std::thread::yield_now();
                                Ok(p.display().to_string())
                            })
                            .unwrap()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(got.iter().all(|m| Arc::ptr_eq(m, &got[0])));
        assert_eq!(cache.loads(), 2);
        assert_eq!(cache.loads_of(&dir), 2);
        assert_eq!(cache.loads_of(&dir.join("missing")), 0);
        // Another type at the same path is another entry.
        let n = cache.get_or_load(&dir, "cpu", |_, _| Ok(7u32)).unwrap();
        assert_eq!(*n, 7);
        let e = cache.get_or_load::<u8>(&dir.join("missing"), "cpu", |_, _| Ok(1)).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
