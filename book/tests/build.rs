//! Prepares the book's chapters for rustdoc.
//!
//! A code block that only `{{#include}}`s a file of a tested crate is not
//! Rust until mdBook runs; rustdoc would count it as an ignored test. This
//! copies every chapter of `SUMMARY.md` to `OUT_DIR` with such blocks
//! turned into `text`, so rustdoc compiles every other Rust block and
//! ignores none, and writes `chapters.rs`, a module per chapter carrying
//! it as docs, so no chapter can be left out. A Rust
//! block marked `ignore` that is not an include is refused: the book
//! promises that every listing is compiled.

use std::path::Path;

fn main() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../src");
    let out = Path::new(&std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).to_owned();
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).expect("book/src/SUMMARY.md");
    println!(
        "cargo::rerun-if-changed={}",
        src.join("SUMMARY.md").display()
    );
    let mut modules = String::new();
    for chapter in summary.lines().filter_map(chapter_path) {
        let path = src.join(chapter);
        println!("cargo::rerun-if-changed={}", path.display());
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let prepared = prepare(&text).unwrap_or_else(|e| panic!("{chapter}: {e}"));
        let target = out.join(chapter);
        std::fs::create_dir_all(target.parent().expect("a chapter is a file")).unwrap();
        std::fs::write(&target, prepared).unwrap();
        // `tutorial/01-hello.md` → `tutorial_01_hello`.
        let module = chapter.trim_end_matches(".md").replace(['/', '-'], "_");
        modules.push_str(&format!(
            "#[doc = include_str!(concat!(env!(\"OUT_DIR\"), \"/{chapter}\"))]\npub mod {module} {{}}\n\n"
        ));
    }
    std::fs::write(out.join("chapters.rs"), modules).unwrap();
}

/// `- [Title](path.md)` or `[Title](path.md)` → `path.md`.
fn chapter_path(line: &str) -> Option<&str> {
    let start = line.find("](")? + 2;
    let end = start + line[start..].find(')')?;
    Some(&line[start..end])
}

/// The chapter with include-only code blocks fenced as `text`.
fn prepare(text: &str) -> Result<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let Some(info) = line.strip_prefix("```").filter(|info| !info.is_empty()) else {
            out.push_str(line);
            out.push('\n');
            i += 1;
            continue;
        };
        let end = (i + 1..lines.len())
            .find(|&j| lines[j].starts_with("```"))
            .ok_or_else(|| format!("line {}: unclosed code block", i + 1))?;
        let body = &lines[i + 1..end];
        let include_only = body
            .iter()
            .all(|l| l.trim().is_empty() || l.contains("{{#include"));
        let rust = info.split(',').any(|word| word.trim() == "rust");
        let ignored = info.split(',').any(|word| word.trim() == "ignore");
        if rust && ignored && !include_only {
            return Err(format!(
                "line {}: a Rust block marked `ignore` that is not an include; make it compile (use `no_run` or hidden lines)",
                i + 1
            ));
        }
        out.push_str(if rust && include_only {
            "```text"
        } else {
            line
        });
        out.push('\n');
        for l in &lines[i + 1..=end] {
            out.push_str(l);
            out.push('\n');
        }
        i = end + 1;
    }
    Ok(out)
}
