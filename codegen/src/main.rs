//! `gamewire-codegen`: generates a client for a protocol this binary links
//! in (the built-in `ChatMessage`). For your own protocol, make a binary of
//! your crate that calls [`gamewire_codegen::cli`]; see the crate's docs.

fn main() -> std::process::ExitCode {
    gamewire_codegen::cli()
}
