//! Numbers as people read them: thousands separators and units.

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A rate: `4.02 M`, `812 k`, `75`.
pub fn per_second(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2} M", rate / 1e6)
    } else if rate >= 1e4 {
        format!("{:.0} k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

/// Milliseconds in the unit that reads best: `850 µs`, `12.3 ms`, `1.25 s`.
pub fn millis(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.0} µs", ms * 1000.0)
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// Bytes in the unit that reads best: `1,217 B`, `22.4 KiB`, `3.1 MiB`.
pub fn bytes(n: f64) -> String {
    if n < 10_000.0 {
        format!("{} B", thousands(n.round() as u64))
    } else if n < 10.0 * 1024.0 * 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else {
        format!("{:.1} MiB", n / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(24_547_200), "24,547,200");
        assert_eq!(per_second(4_015_235.0), "4.02 M");
        assert_eq!(per_second(81_234.0), "81 k");
        assert_eq!(millis(0.85), "850 µs");
        assert_eq!(millis(246.911), "246.9 ms");
        assert_eq!(millis(1250.0), "1.25 s");
        assert_eq!(bytes(1216.5), "1,217 B");
        assert_eq!(bytes(22_937.0), "22.4 KiB");
    }
}
