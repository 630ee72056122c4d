//! The terminal of the examples' clients (the chat client, the tutorial's
//! game client).
//!
//! On a terminal, rustyline edits the line being typed on a thread of its
//! own, and what the client prints goes above that line through
//! rustyline's external printer, so an incoming line never breaks into
//! the one being typed. When the client is done (`/quit`, Ctrl-D, or the
//! server closing), [`Terminal::exit`] ends the process at once, with the
//! terminal's settings as they were before the editor changed them: the
//! editor's thread may be waiting for a key, and nothing interrupts that
//! wait. With piped input, lines are read on a plain thread and printed
//! to standard output.
//!
//! ```no_run
//! # async fn client() -> anyhow::Result<()> { Ok(()) }
//! # #[tokio::main]
//! # async fn main() {
//! let mut terminal = example_terminal::open("> ").expect("a terminal");
//! let mut lines = terminal.lines();
//! // … each line from `lines` is a command; `terminal.print(text)` shows text …
//! # let _ = lines.recv().await;
//! terminal.exit(client().await)
//! # }
//! ```

use std::io::{IsTerminal, Write};

use nix::sys::termios::{SetArg, Termios, tcgetattr, tcsetattr};
use rustyline::{DefaultEditor, ExternalPrinter};
use tokio::sync::mpsc;

/// Lines typed, and a way to print without breaking the one being typed.
pub struct Terminal {
    lines: Option<mpsc::Receiver<String>>,
    print: Box<dyn FnMut(String) -> std::io::Result<()> + Send>,
    /// The terminal's settings before the editor changed them.
    saved: Option<Termios>,
}

impl std::fmt::Debug for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Terminal")
            .field("editing", &self.saved.is_some())
            .finish_non_exhaustive()
    }
}

/// Opens the terminal: a line editor showing `prompt` when standard input
/// is a terminal, plain lines otherwise.
///
/// # Errors
///
/// When the line editor cannot start.
pub fn open(prompt: &str) -> anyhow::Result<Terminal> {
    let (send, lines) = mpsc::channel(16);
    if !std::io::stdin().is_terminal() {
        std::thread::spawn(move || {
            for line in std::io::stdin().lines().map_while(Result::ok) {
                if send.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        let mut stdout = std::io::stdout();
        return Ok(Terminal {
            lines: Some(lines),
            print: Box::new(move |text| writeln!(stdout, "{text}")),
            saved: None,
        });
    }
    let saved = tcgetattr(std::io::stdin()).ok();
    let mut editor = DefaultEditor::new()?;
    let mut printer = editor.create_external_printer()?;
    let prompt = prompt.to_owned();
    std::thread::spawn(move || {
        // Ctrl-C, Ctrl-D or a broken terminal end the input.
        while let Ok(line) = editor.readline(&prompt) {
            let _ = editor.add_history_entry(line.as_str());
            if send.blocking_send(line).is_err() {
                break;
            }
        }
    });
    Ok(Terminal {
        lines: Some(lines),
        print: Box::new(move |text| printer.print(text).map_err(std::io::Error::other)),
        saved,
    })
}

impl Terminal {
    /// The lines typed; `None` at the end of input. Taken once.
    ///
    /// # Panics
    ///
    /// When taken twice.
    pub fn lines(&mut self) -> mpsc::Receiver<String> {
        self.lines.take().expect("the lines are taken once")
    }

    /// Prints `text` above the line being typed.
    ///
    /// # Errors
    ///
    /// When the terminal is gone.
    pub fn print(&mut self, text: &str) -> std::io::Result<()> {
        (self.print)(text.to_owned())
    }

    /// Ends the process: restores the terminal, says what went wrong if
    /// something did, and exits with 0 or 1.
    pub fn exit(self, result: anyhow::Result<()>) -> ! {
        if let Some(saved) = &self.saved {
            // The editor's thread draws what was printed last, and the
            // prompt again, on its own time: let it finish first.
            std::thread::sleep(std::time::Duration::from_millis(50));
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, saved);
            // The line being typed stays on the screen: end it.
            println!();
        }
        let _ = std::io::stdout().flush();
        match result {
            Ok(()) => std::process::exit(0),
            Err(error) => {
                eprintln!("error: {error:#}");
                std::process::exit(1)
            }
        }
    }
}
