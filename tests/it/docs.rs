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

/// The architecture chapter's map of the code names every file of the
/// `gamewire` crate (a directory entry such as `pool/` covers its files),
/// and nothing that is gone.
#[test]
fn the_architecture_map_names_every_file() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../framework/src");
    let chapter = include_str!("../../book/src/guides/architecture.md");
    let map = chapter
        .split("## The map of the code")
        .nth(1)
        .expect("the chapter has a map")
        .split("\n## ")
        .next()
        .unwrap();
    let entries: Vec<&str> = map
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|line| line.split('`').next())
        .collect();
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(&src).unwrap();
                files.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    for file in &files {
        let named = entries
            .iter()
            .any(|e| e == file || (e.ends_with('/') && file.starts_with(e)));
        assert!(
            named,
            "the architecture chapter's map does not name `{file}`"
        );
    }
    for entry in &entries {
        let exists = files
            .iter()
            .any(|f| f == entry || (entry.ends_with('/') && f.starts_with(entry)));
        assert!(
            exists,
            "the map names `{entry}`, which is not in framework/src"
        );
    }
}
