//! The tools some tests need beyond the Rust toolchain (mdbook, `ss`,
//! Node.js, Chromium, `redis-server`): without one, a test says it was
//! skipped and why on a newcomer's machine; under CI (`CI` set) it fails.

/// Says the calling test is skipped because `what` is missing, or fails it
/// under CI. `remedy` says how to get it.
pub fn missing(what: &str, remedy: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is missing; CI must have it ({remedy})"
    );
    eprintln!("skipped: {what} is missing ({remedy})");
}

/// Whether `tool` runs (`tool --version`); when it does not, [`missing`].
pub fn available(tool: &str, remedy: &str) -> bool {
    let found = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        missing(&format!("`{tool}`"), remedy);
    }
    found
}
