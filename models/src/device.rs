//! The one place that turns `cpu`, `cuda` or `cuda:N` into a candle [`Device`], and `f32`,
//! `f16` or `bf16` into a weight dtype.

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

/// Parses a float dtype for model weights: `f32`, `f16` or `bf16`.
pub fn dtype(spec: &str) -> Result<candle_core::DType> {
    use candle_core::DType;
    match spec.trim().to_ascii_lowercase().as_str() {
        "f32" | "fp32" | "float32" => Ok(DType::F32),
        "f16" | "fp16" | "float16" | "half" => Ok(DType::F16),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        _ => Err(Error::Setting {
            name: "dtype",
            reason: format!("`{spec}`: expected f32, f16 or bf16"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtypes_parse_and_errors_say_why() {
        assert_eq!(dtype("F16").unwrap(), candle_core::DType::F16);
        assert_eq!(dtype("bf16").unwrap(), candle_core::DType::BF16);
        assert_eq!(dtype(" f32").unwrap(), candle_core::DType::F32);
        let e = dtype("int8").unwrap_err().to_string();
        assert!(e.contains("`int8`: expected f32, f16 or bf16"), "{e}");
    }

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
