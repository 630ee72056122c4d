//! The book builds, and every `{{#include}}` in it resolves to something:
//! mdBook silently includes nothing for a missing anchor.

use std::path::{Path, PathBuf};

fn book_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../book")
}

/// Every `{{#include path[:anchor]}}` of the chapters under `book/src`.
fn includes() -> Vec<(PathBuf, String, Option<String>)> {
    let mut found = Vec::new();
    let mut dirs = vec![book_dir().join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split("{{#include ").skip(1) {
                    let target = piece.split("}}").next().unwrap().trim();
                    let (file, anchor) = match target.split_once(':') {
                        Some((file, anchor)) => (file, Some(anchor.to_owned())),
                        None => (target, None),
                    };
                    found.push((path.clone(), file.to_owned(), anchor));
                }
            }
        }
    }
    found
}

#[test]
fn every_include_resolves_to_a_non_empty_region() {
    let includes = includes();
    assert!(!includes.is_empty(), "the book includes listings");
    for (chapter, file, anchor) in includes {
        let target = chapter.parent().unwrap().join(&file);
        let text = std::fs::read_to_string(&target)
            .unwrap_or_else(|e| panic!("{}: cannot read {file}: {e}", chapter.display()));
        let region = match &anchor {
            None => text,
            Some(anchor) => {
                let start = format!("ANCHOR: {anchor}\n");
                let end = format!("ANCHOR_END: {anchor}");
                let from = text.find(&start).unwrap_or_else(|| {
                    panic!("{}: no anchor `{anchor}` in {file}", chapter.display())
                });
                let rest = &text[from + start.len()..];
                rest[..rest
                    .find(&end)
                    .unwrap_or_else(|| panic!("{file}: anchor `{anchor}` never ends"))]
                    .to_owned()
            }
        };
        assert!(
            !region.trim().is_empty(),
            "{}: {file}:{anchor:?} is empty",
            chapter.display()
        );
    }
}

#[test]
fn the_book_builds() {
    let has_mdbook = std::process::Command::new("mdbook")
        .arg("--version")
        .output()
        .is_ok();
    if !has_mdbook {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must build the book: install mdbook with `cargo install --locked mdbook`"
        );
        eprintln!("skipped: mdbook is not installed (cargo install --locked mdbook)");
        return;
    }
    let out = std::env::temp_dir().join(format!("gamewire-book-{}", std::process::id()));
    let status = std::process::Command::new("mdbook")
        .arg("build")
        .arg(book_dir())
        .arg("--dest-dir")
        .arg(&out)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&out);
    assert!(
        status.status.success(),
        "mdbook build failed:\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
}
