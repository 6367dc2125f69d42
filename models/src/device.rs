//! The one place that turns `cpu`, `cuda` or `cuda:N` into a candle [`Device`].

use candle_core::Device;

use crate::{Error, Result};

/// Parses a device name: `cpu`, `cuda` (the first GPU) or `cuda:N`. Asking for CUDA in a
/// build without the `cuda` feature is an error that says how to get one.
pub fn device(spec: &str) -> Result<Device> {
    let s = spec.trim().to_ascii_lowercase();
    let bad = |reason: String| Error::Device { spec: spec.to_string(), reason };
    if s == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = match s.strip_prefix("cuda") {
        Some("") => 0,
        Some(rest) => rest
            .strip_prefix(':')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| bad("expected cpu, cuda or cuda:N".into()))?,
        None => return Err(bad("expected cpu, cuda or cuda:N".into())),
    };
    if !cfg!(feature = "cuda") {
        return Err(bad(
            "this build has no CUDA support; rebuild with `cargo build --release --features cuda`"
                .into(),
        ));
    }
    Device::new_cuda(ordinal).map_err(|e| bad(format!("cannot open GPU {ordinal}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_errors_say_why() {
        assert!(matches!(device("cpu").unwrap(), Device::Cpu));
        assert!(matches!(device(" CPU ").unwrap(), Device::Cpu));
        for bad in ["gpu", "cuda:x", "cuda:", "tpu:0"] {
            let e = device(bad).unwrap_err().to_string();
            assert!(e.contains("expected cpu, cuda or cuda:N"), "{bad}: {e}");
        }
        if !cfg!(feature = "cuda") {
            let e = device("cuda:0").unwrap_err().to_string();
            assert!(e.contains("--features cuda"), "{e}");
        }
    }
}
