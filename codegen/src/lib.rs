//! Typed clients in other languages, generated from a gamewire protocol.
//!
//! A `#[message]` enum describes itself
//! ([`gamewire::schema::ProtocolSchema`]): its variants, ids,
//! directions, field types and fingerprint. [`typescript`] turns that into
//! one dependency-free TypeScript module: the message types, an encoder and
//! decoder of the wire chapter's bincode subset, the fingerprint, and a
//! WebSocket client class.
//!
//! ```
//! use gamewire::ChatMessage;
//! use gamewire::schema::ProtocolSchema;
//!
//! let module = gamewire_codegen::typescript(&ProtocolSchema::of::<ChatMessage>())?;
//! assert!(module.contains("export const FINGERPRINT = 0x0cb3a068034bd912n;"));
//! # Ok::<(), gamewire_codegen::CodegenError>(())
//! ```
//!
//! From the command line, [`cli`] generates any protocol the binary links
//! in. `cargo run -p gamewire-codegen -- typescript ChatMessage --out
//! chat.ts` does it for the built-in chat; for your own protocol, add a
//! binary to your crate (`src/bin/codegen.rs`) that names your crate so its
//! protocols are linked, and calls it:
//!
//! ```no_run
//! // use my_game as _;
//! fn main() -> std::process::ExitCode {
//!     gamewire_codegen::cli()
//! }
//! ```

mod typescript;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gamewire::schema::{self, ProtocolSchema};

pub use typescript::typescript;

/// Why a protocol cannot be generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodegenError {
    /// Field types that do not describe themselves.
    #[error(
        "protocol `{protocol}` uses types that do not describe themselves: {}; derive `gamewire::Describe` for them (or use `#[payload]`)",
        list(.fields)
    )]
    Undescribed {
        /// The protocol's name.
        protocol: String,
        /// Where each is used (`Variant.field`) and its Rust type.
        fields: Vec<(String, &'static str)>,
    },
    /// A shape the generated language cannot represent faithfully.
    #[error(
        "protocol `{protocol}`: {place} is {what}, which the TypeScript client cannot represent"
    )]
    Unsupported {
        /// The protocol's name.
        protocol: String,
        /// Where (`Variant.field` or `Type.field`).
        place: String,
        /// What it is.
        what: String,
    },
    /// A name the generated module already uses for itself.
    #[error(
        "protocol `{protocol}`: the type `{name}` has the name of a part of the generated module; rename it"
    )]
    NameTaken {
        /// The protocol's name.
        protocol: String,
        /// The clashing name.
        name: String,
    },
}

fn list(fields: &[(String, &'static str)]) -> String {
    fields
        .iter()
        .map(|(place, ty)| format!("{place} (`{ty}`)"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Parser)]
#[command(about = "Generates typed clients for the gamewire protocols this binary links in")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Lists the protocols this binary links in, with their fingerprints.
    List,
    /// Writes a TypeScript module for one protocol.
    Typescript {
        /// The protocol enum's name, such as `ChatMessage`.
        protocol: String,
        /// Where to write the module; standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// The command line of a client generator: `list`, and `typescript
/// PROTOCOL [--out FILE]`, over the protocols the calling binary links in.
pub fn cli() -> ExitCode {
    let args = Args::parse();
    let protocols = schema::linked();
    match args.command {
        Command::List => {
            for protocol in &protocols {
                println!("{} {:#018x}", protocol.name, protocol.fingerprint);
            }
            ExitCode::SUCCESS
        }
        Command::Typescript { protocol, out } => {
            let Some(schema) = protocols.iter().find(|p| p.name == protocol) else {
                let names: Vec<&str> = protocols.iter().map(|p| p.name.as_str()).collect();
                eprintln!(
                    "error: no protocol `{protocol}` is linked into this binary (it has: {})",
                    names.join(", ")
                );
                return ExitCode::FAILURE;
            };
            match write(schema, out) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn write(schema: &ProtocolSchema, out: Option<PathBuf>) -> Result<(), Box<dyn std::error::Error>> {
    let module = typescript(schema)?;
    match out {
        Some(path) => std::fs::write(&path, module)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => print!("{module}"),
    }
    Ok(())
}
