//! `#[message]`: a protocol enum, its payload types and its wire format.
//!
//! [`expand()`] runs the three stages: [`parse`] reads the enum and its
//! `#[gamewire(...)]` attributes into a [`Protocol`], [`validate`] checks the
//! rules that span variants (unique ids, unique payload types, no serde
//! attributes), and [`expand`](mod@self::expand) generates the code. On error
//! the enum is still emitted, with stub impls, next to the `compile_error!`.

use proc_macro2::TokenStream;
use syn::ext::IdentExt;

use crate::diag::Diag;

mod expand;
mod lock;
mod parse;
mod validate;

/// Expands `#[message(args)] item`; `source` is the file the enum is in,
/// where a lock file is looked for (`None` outside the compiler).
pub(crate) fn expand(
    args: TokenStream,
    item: TokenStream,
    source: Option<std::path::PathBuf>,
) -> TokenStream {
    let diag = Diag::new();
    let parsed = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(parsed) => parsed,
        Err(error) => {
            diag.push(error);
            return with_errors(item, diag);
        }
    };
    let protocol = parse::protocol(&diag, args, &parsed);
    let history = protocol.as_ref().map(|protocol| {
        validate::protocol(&diag, protocol);
        lock::check(&diag, protocol, source.as_deref())
    });
    match (diag.finish(), protocol) {
        (Ok(()), Some(protocol)) => {
            let history = history.unwrap_or_else(|| lock::History::first(&protocol));
            expand::full(&protocol, &history)
        }
        (Err(error), Some(protocol)) => {
            let mut out = expand::fallback(&protocol);
            out.extend(error.to_compile_error());
            out
        }
        (Err(error), None) => {
            let mut out = item;
            out.extend(error.to_compile_error());
            out
        }
        (Ok(()), None) => unreachable!("parse returns no protocol only after an error"),
    }
}

/// `item` unchanged, followed by the errors of `diag`.
fn with_errors(mut item: TokenStream, diag: Diag) -> TokenStream {
    if let Err(error) = diag.finish() {
        item.extend(error.to_compile_error());
    }
    item
}

/// A `#[message]` enum, read.
pub(crate) struct Protocol<'a> {
    /// The enum as written.
    pub(crate) item: &'a syn::ItemEnum,
    /// `#[message(builtin)]`: a protocol shipped by gamewire itself.
    pub(crate) builtin: bool,
    /// `#[message(lock = "...")]`: the lock file, relative to the enum's
    /// source file.
    pub(crate) lock: Option<syn::LitStr>,
    /// `#[message(major = N)]`, 1 by default.
    pub(crate) major: u32,
    /// The variants, in declaration order.
    pub(crate) variants: Vec<Variant<'a>>,
    /// Every path listed in the enum's `#[derive(...)]` attributes.
    pub(crate) derives: Vec<syn::Path>,
}

impl Protocol<'_> {
    /// The enum's name as a string, without `r#`.
    pub(crate) fn name(&self) -> String {
        self.item.ident.unraw().to_string()
    }
}

/// One variant of a `#[message]` enum.
pub(crate) struct Variant<'a> {
    /// The variant as written, `#[gamewire]` attributes included.
    pub(crate) original: &'a syn::Variant,
    /// Declaration index.
    pub(crate) index: usize,
    /// The wire id (meaningless when `id_source` is `Invalid` or `Overflow`,
    /// which are errors).
    pub(crate) id: u32,
    /// Where the id comes from, for error messages.
    pub(crate) id_source: IdSource,
    /// `direction = ...`, `Both` by default.
    pub(crate) direction: Direction,
    /// `#[gamewire(droppable)]`.
    pub(crate) droppable: bool,
    /// `#[gamewire(unhandled)]`.
    pub(crate) unhandled: bool,
    /// `#[gamewire(retired)]`.
    pub(crate) retired: bool,
}

impl<'a> Variant<'a> {
    /// The variant's ident.
    pub(crate) fn ident(&self) -> &'a syn::Ident {
        &self.original.ident
    }

    /// The variant's name as a string, without `r#`.
    pub(crate) fn name(&self) -> String {
        self.original.ident.unraw().to_string()
    }

    /// The variant's fields, classified.
    pub(crate) fn shape(&self) -> Shape<'a> {
        match &self.original.fields {
            syn::Fields::Unit => Shape::Unit,
            syn::Fields::Unnamed(fields) if fields.unnamed.len() == 1 => {
                Shape::Newtype(&fields.unnamed[0].ty)
            }
            syn::Fields::Unnamed(fields) => Shape::Tuple(fields.unnamed.iter().collect()),
            syn::Fields::Named(fields) => Shape::Struct(fields.named.iter().collect()),
        }
    }
}

/// Where a variant's id comes from.
pub(crate) enum IdSource {
    /// `#[gamewire(id = 7)]`, the literal as written.
    Explicit(syn::LitInt),
    /// The previous variant's id plus one (or `0` for the first).
    Implicit,
    /// An `id = ...` that is not a `u32` literal (already reported).
    Invalid,
    /// The previous id plus one does not fit in a `u32`.
    Overflow,
}

/// `#[gamewire(direction = ...)]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// `to_server`.
    ToServer,
    /// `to_client`.
    ToClient,
    /// `both`, the default.
    Both,
}

/// The fields of a variant.
pub(crate) enum Shape<'a> {
    /// `Leave`: payload struct `Leave;`.
    Unit,
    /// `Move(MoveCmd)`: the payload is `MoveCmd` itself.
    Newtype(&'a syn::Type),
    /// `Pair(u32, String)` (or `Empty()`): payload struct `Pair(u32, String);`.
    Tuple(Vec<&'a syn::Field>),
    /// `Ping { nonce: u64 }`: payload struct `Ping { nonce: u64 }`.
    Struct(Vec<&'a syn::Field>),
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    #[test]
    fn error_keeps_the_enum_and_adds_one_compile_error() {
        let out = expand(
            TokenStream::new(),
            quote! {
                pub enum E {
                    #[gamewire(id = 1)]
                    A,
                    #[gamewire(id = 1)]
                    B { x: u32 },
                }
            },
            None,
        );
        let file: syn::File = syn::parse2(out.clone()).unwrap();
        let text = out.to_string();
        assert_eq!(text.matches("compile_error").count(), 1, "{text}");
        assert!(!text.contains("gamewire (id"), "{text}");
        assert!(
            file.items
                .iter()
                .any(|i| matches!(i, syn::Item::Enum(e) if e.ident == "E"))
        );
    }

    #[test]
    fn non_enum_is_emitted_unchanged() {
        let item = quote!(
            struct S;
        );
        let out = expand(TokenStream::new(), item.clone(), None).to_string();
        assert!(out.starts_with(&item.to_string()), "{out}");
        assert!(out.contains("not expected here; #[message] goes on an `enum`, not on a `struct`"));
    }
}
