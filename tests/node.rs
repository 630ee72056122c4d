//! Node.js for the tests of the generated TypeScript client and the browser
//! demo: finding it (and the packages pinned in `clients/typescript`),
//! compiling with the pinned `tsc`, and running `node --test` bounded in
//! time. Without them a test says it was skipped and why; under CI (`CI`
//! set) it fails instead.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::tools::missing;

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
        .to_owned()
}

/// The package of the TypeScript client and its tests.
pub fn client_dir() -> PathBuf {
    repo().join("clients/typescript")
}

/// Node.js and the packages of `clients/typescript`.
#[derive(Debug)]
pub struct Node {
    /// `--experimental-websocket` where `WebSocket` is not yet a global
    /// (Node.js before 22).
    flags: Vec<&'static str>,
}

impl Node {
    /// Node with `npm ci` done, or `None` on a machine without them.
    pub fn find() -> Option<Node> {
        let Ok(version) = std::process::Command::new("node").arg("--version").output() else {
            missing("`node`", "Debian packages `nodejs` and `npm`");
            return None;
        };
        if !client_dir().join("node_modules/typescript").exists() {
            missing(
                "clients/typescript/node_modules",
                "run `npm ci` in clients/typescript",
            );
            return None;
        }
        let version = String::from_utf8_lossy(&version.stdout);
        let major: u32 = version
            .trim()
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|major| major.parse().ok())
            .expect("node prints vMAJOR.MINOR.PATCH");
        let flags = if major < 22 {
            vec!["--experimental-websocket"]
        } else {
            Vec::new()
        };
        Some(Node { flags })
    }

    /// Runs `node` with `args` in `clients/typescript`, bounded at two
    /// minutes; prints its output, and fails the test unless it succeeds.
    pub async fn run(&self, args: &[&str], env: &[(&str, String)]) {
        let mut command = tokio::process::Command::new("node");
        command
            .args(&self.flags)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(client_dir())
            .kill_on_drop(true);
        let output = tokio::time::timeout(Duration::from_secs(120), command.output())
            .await
            .expect("node finished within 120 s")
            .expect("node started");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        println!("{stdout}{stderr}");
        assert!(
            output.status.success(),
            "node {args:?} failed:\n{stdout}\n{stderr}"
        );
    }

    /// Compiles `sources` with the pinned `tsc` and the client's compiler
    /// options, or the client itself when `sources` is empty, into `out`.
    pub async fn tsc(&self, sources: &[&Path], out: &Path) {
        let tsc = client_dir().join("node_modules/typescript/bin/tsc");
        let tsc = tsc.to_str().unwrap();
        let out = out.to_str().unwrap();
        let mut args = vec![tsc, "--outDir", out];
        let sources: Vec<&str> = sources.iter().map(|s| s.to_str().unwrap()).collect();
        if sources.is_empty() {
            args.extend(["-p", "."]);
        } else {
            args.extend([
                "--target",
                "ES2020",
                "--module",
                "ES2020",
                "--strict",
                "--noUnusedLocals",
                "--noUnusedParameters",
                "--noImplicitReturns",
            ]);
            args.extend(sources);
        }
        self.run(&args, &[]).await;
    }
}

/// Debian's Chromium, or `None` on a machine without it.
pub fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from(
        std::env::var_os("GAMEWIRE_CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()),
    );
    if path.exists() {
        Some(path)
    } else {
        missing(
            "Chromium",
            "Debian packages `chromium` and `chromium-driver`",
        );
        None
    }
}

/// A fresh directory under `parent` for one test's files.
pub fn scratch(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
