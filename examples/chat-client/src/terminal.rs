//! The client on a terminal: rustyline edits the line being typed on a
//! thread of its own, and what arrives is printed above it through
//! rustyline's external printer, so it never breaks into the line.
//!
//! When the conversation ends (`/quit`, Ctrl-D, or the server closing) the
//! process exits at once, with the terminal's settings as they were before
//! the editor changed them: the editor's thread may be waiting for a key,
//! and nothing can interrupt that wait.

use std::io::Write;

use gamewire::ChatMessage;
use gamewire::client::Client;
use nix::sys::termios::{SetArg, Termios, tcgetattr, tcsetattr};
use rustyline::{DefaultEditor, ExternalPrinter};
use tokio::sync::mpsc;

/// Runs the conversation on the terminal, then exits the process.
pub(crate) async fn run(client: Client<ChatMessage>) -> anyhow::Result<()> {
    let saved: Option<Termios> = tcgetattr(std::io::stdin()).ok();
    let mut editor = DefaultEditor::new()?;
    let mut printer = editor.create_external_printer()?;
    let (lines, typed) = mpsc::channel(16);
    std::thread::spawn(move || {
        // Ctrl-C, Ctrl-D or a broken terminal end the input.
        while let Ok(line) = editor.readline("> ") {
            let _ = editor.add_history_entry(line.as_str());
            if lines.blocking_send(line).is_err() {
                break;
            }
        }
    });
    let result = crate::converse(client, typed, |text| {
        printer
            .print(text.to_owned())
            .map_err(std::io::Error::other)
    })
    .await;
    if let Some(saved) = saved {
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &saved);
    }
    // The line being typed stays on the screen: end it.
    println!();
    let _ = std::io::stdout().flush();
    match result {
        Ok(()) => std::process::exit(0),
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::exit(1)
        }
    }
}
