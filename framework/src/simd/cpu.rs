//! Run-time CPU feature report.

use std::fmt;

/// The CPU features the `simd` fast paths look for, as detected at run time.
///
/// Detection uses `std`'s `is_x86_feature_detected!` /
/// `is_aarch64_feature_detected!`, which read the CPU once and cache the
/// answer, so [`cpu_features`] is cheap. Fields for another architecture are
/// always `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CpuFeatures {
    /// The architecture this binary was compiled for (`std::env::consts::ARCH`).
    pub arch: &'static str,
    /// x86_64 SSE4.2: the `crc32` instruction behind [`fast_checksum`](super::fast_checksum),
    /// and one of simdutf8's two x86 paths.
    pub sse42: bool,
    /// x86_64 AVX2: simdutf8's faster x86 path.
    pub avx2: bool,
    /// x86_64 carry-less multiply. Reported for completeness: the `crc32c`
    /// crate does not need it (it runs three `crc32` streams side by side
    /// and merges them with tables), but PCLMUL-folding CRCs do.
    pub pclmulqdq: bool,
    /// aarch64 NEON (Advanced SIMD): simdutf8's aarch64 path.
    pub neon: bool,
    /// aarch64 CRC32 instructions, used by `fast_checksum` on aarch64.
    pub crc: bool,
}

impl CpuFeatures {
    /// Whether [`fast_checksum`](super::fast_checksum) runs on CRC
    /// instructions (SSE4.2 or ARMv8 CRC) rather than the software table.
    ///
    /// # Examples
    ///
    /// ```
    /// let features = gamewire::simd::cpu_features();
    /// println!("hardware crc32c: {}", features.hardware_crc32c());
    /// ```
    #[must_use]
    pub fn hardware_crc32c(&self) -> bool {
        // The `crc32c` crate has hardware paths for these two targets only.
        (cfg!(target_arch = "x86_64") && self.sse42) || (cfg!(target_arch = "aarch64") && self.crc)
    }

    /// The features relevant to this architecture, with whether each was
    /// detected.
    fn flags(&self) -> Vec<(&'static str, bool)> {
        match self.arch {
            "x86_64" | "x86" => vec![
                ("sse4.2", self.sse42),
                ("avx2", self.avx2),
                ("pclmulqdq", self.pclmulqdq),
            ],
            "aarch64" => vec![("neon", self.neon), ("crc", self.crc)],
            _ => Vec::new(),
        }
    }
}

/// Formats as `arch: +feature -feature …`, e.g.
/// `x86_64: +sse4.2 +avx2 +pclmulqdq` (`+` detected, `-` not), listing the
/// features relevant to the architecture.
impl fmt::Display for CpuFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.arch)?;
        f.write_str(":")?;
        let flags = self.flags();
        if flags.is_empty() {
            return f.write_str(" no SIMD fast paths (scalar fallbacks)");
        }
        for (name, detected) in flags {
            let sign = if detected { '+' } else { '-' };
            write!(f, " {sign}{name}")?;
        }
        Ok(())
    }
}

/// Reports which CPU features the `simd` fast paths can use on this machine.
///
/// Useful in a startup log line, so a slow deployment can be traced to a
/// CPU (or VM) that hides SSE4.2 or AVX2.
///
/// # Examples
///
/// ```
/// let features = gamewire::simd::cpu_features();
/// assert_eq!(features.arch, std::env::consts::ARCH);
/// println!("simd: {features}"); // e.g. "simd: x86_64: +sse4.2 +avx2 +pclmulqdq"
/// ```
#[must_use]
pub fn cpu_features() -> CpuFeatures {
    let mut features = CpuFeatures {
        arch: std::env::consts::ARCH,
        sse42: false,
        avx2: false,
        pclmulqdq: false,
        neon: false,
        crc: false,
    };
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        features.sse42 = std::arch::is_x86_feature_detected!("sse4.2");
        features.avx2 = std::arch::is_x86_feature_detected!("avx2");
        features.pclmulqdq = std::arch::is_x86_feature_detected!("pclmulqdq");
    }
    #[cfg(target_arch = "aarch64")]
    {
        features.neon = std::arch::is_aarch64_feature_detected!("neon");
        features.crc = std::arch::is_aarch64_feature_detected!("crc");
    }
    features
}
