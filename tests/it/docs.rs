//! `cargo doc` builds the whole workspace without a warning: no broken
//! intra-doc link, no undocumented public item (`missing_docs` is denied in
//! the workspace lints, so the build itself enforces that part).

use std::path::Path;
use std::process::Command;

#[test]
fn the_docs_build_without_warnings() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // A target dir of its own: the `cargo test` running this holds the
    // lock on the usual one.
    let target = workspace.join("target").join("doc-check");
    let output = Command::new(env!("CARGO"))
        .args(["doc", "--workspace", "--no-deps", "--locked", "--quiet"])
        .env("RUSTDOCFLAGS", "-D warnings")
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&workspace)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo doc failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
