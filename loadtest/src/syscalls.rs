//! Send syscalls of the server, counted by `perf stat` on the kernel's
//! syscall tracepoints (no ptrace, so the server runs at full speed).
//!
//! Needs `perf` (Debian's linux-perf) and permission to read tracepoints
//! (root, or `kernel.perf_event_paranoid` ≤ −1); without them the figure is
//! simply not reported.

use std::time::Duration;

/// The syscalls a server can send with.
const SEND_EVENTS: [&str; 4] = [
    "syscalls:sys_enter_write",
    "syscalls:sys_enter_writev",
    "syscalls:sys_enter_sendto",
    "syscalls:sys_enter_sendmsg",
];

/// Counts the send syscalls `pid` makes during the next `window`.
pub(crate) async fn count_sends(pid: u32, window: Duration) -> Option<u64> {
    let output = tokio::process::Command::new("perf")
        .args([
            "stat",
            "-x",
            ",",
            "-e",
            &SEND_EVENTS.join(","),
            "-p",
            &pid.to_string(),
        ])
        .args(["--", "sleep", &format!("{:.3}", window.as_secs_f64())])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .await
        .ok()?;
    if !output.status.success() {
        return None;
    }
    parse(&String::from_utf8_lossy(&output.stderr))
}

/// Sums the counts of `perf stat -x ,` output: `count,unit,event,...`.
fn parse(text: &str) -> Option<u64> {
    let counts: Vec<u64> = text
        .lines()
        .filter(|line| SEND_EVENTS.iter().any(|event| line.contains(event)))
        .filter_map(|line| line.split(',').next()?.trim().parse().ok())
        .collect();
    (!counts.is_empty()).then(|| counts.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_csv_is_summed() {
        let text = "12,,syscalls:sys_enter_write,1000,100.00,,\n\
                    3,,syscalls:sys_enter_writev,1000,100.00,,\n\
                    <not supported>,,syscalls:sys_enter_sendto,0,100.00,,\n";
        assert_eq!(parse(text), Some(15));
        assert_eq!(parse("nothing here"), None);
    }
}
