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
    if !gamewire_tests::tools::available("mdbook", "cargo install --locked mdbook") {
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

/// The `[dependencies]` keys of a Cargo.toml text: `name = …` and
/// `name.workspace = true` lines up to the next section.
fn dependency_names(manifest: &str) -> Vec<String> {
    manifest
        .split("[dependencies]\n")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .take_while(|line| !line.starts_with('['))
        .filter_map(|line| line.split(['=', '.']).next())
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The tutorial's readers type along in a crate of their own, whose
/// Cargo.toml chapter 1 shows as plain text (the examples' own manifests
/// inherit from the workspace and do not work outside it). Every
/// dependency of the tutorial's example crates must be in it, and every
/// tokio feature an example adds must be in the `tokio = …` line of its
/// chapter or an earlier one.
#[test]
fn the_tutorials_cargo_toml_has_what_the_examples_need() {
    let tutorial = book_dir().join("src/tutorial");
    let chapter_1 = std::fs::read_to_string(tutorial.join("01-hello.md")).unwrap();
    let manifest = chapter_1
        .split("```toml\n")
        .nth(1)
        .and_then(|block| block.split("```").next())
        .expect("chapter 1 shows the reader's Cargo.toml as a ```toml block");
    assert!(
        manifest.contains("gamewire = { path = \"../gamewire/framework\" }"),
        "{manifest}"
    );
    let framework = Path::new(env!("CARGO_MANIFEST_DIR")).join("../framework/Cargo.toml");
    let framework = std::fs::read_to_string(framework).unwrap();
    assert!(
        framework.contains("\nname = \"gamewire\"\n"),
        "framework/ is the gamewire crate"
    );
    let in_book = dependency_names(manifest);

    let mut chapters: Vec<_> = std::fs::read_dir(&tutorial)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    chapters.sort();
    let mut tokio_line = String::new();
    for chapter in chapters {
        let stem = chapter.file_stem().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&chapter).unwrap();
        if let Some(line) = text.lines().rfind(|l| l.starts_with("tokio = ")) {
            tokio_line = line.to_owned();
        }
        let example = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(format!("tutorial-{stem}/Cargo.toml"));
        let example = std::fs::read_to_string(&example)
            .unwrap_or_else(|e| panic!("{}: {e}", example.display()));
        for name in dependency_names(&example) {
            assert!(
                in_book.contains(&name),
                "examples/tutorial-{stem} depends on `{name}`, which chapter 1's Cargo.toml lacks"
            );
        }
        let Some(line) = example.lines().find(|l| l.starts_with("tokio = ")) else {
            continue;
        };
        let features = line.split("features = [").nth(1).unwrap_or_default();
        for feature in features.split(']').next().unwrap().split(',') {
            let feature = feature.trim();
            if !feature.is_empty() {
                assert!(
                    tokio_line.contains(feature),
                    "examples/tutorial-{stem} needs tokio's {feature}; the book's line by then is {tokio_line}"
                );
            }
        }
    }
}
