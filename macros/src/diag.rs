//! Diagnostics: the error accumulator every macro reports through, the
//! shared wording of "not expected here" errors, and the debug dump.

use std::cell::RefCell;
use std::fmt::Display;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;

/// Collects the errors of one macro call so they are reported together.
///
/// Parse and validate push errors and keep going; one [`Diag::finish`] call
/// merges them. Dropping a `Diag` without calling `finish` panics, so an
/// error cannot be recorded and then forgotten.
pub(crate) struct Diag {
    /// `None` once `finish` has run.
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Diag {
    /// An empty accumulator.
    pub(crate) fn new() -> Self {
        Diag {
            errors: RefCell::new(Some(Vec::new())),
        }
    }

    /// Records an error.
    pub(crate) fn push(&self, error: syn::Error) {
        self.errors
            .borrow_mut()
            .as_mut()
            .expect("Diag used after finish")
            .push(error);
    }

    /// Records an error spanning `tokens`.
    pub(crate) fn error(&self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error at `span`.
    pub(crate) fn error_at(&self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    /// Merges every recorded error into one, or `Ok` when there is none.
    pub(crate) fn finish(self) -> syn::Result<()> {
        let errors = self
            .errors
            .borrow_mut()
            .take()
            .expect("Diag::finish called twice");
        let mut errors = errors.into_iter();
        match errors.next() {
            None => Ok(()),
            Some(mut first) => {
                for error in errors {
                    first.combine(error);
                }
                Err(first)
            }
        }
    }
}

impl Drop for Diag {
    fn drop(&mut self) {
        if self.errors.borrow().is_some() && !std::thread::panicking() {
            panic!("gamewire-macros bug: a `Diag` was dropped without `finish()`");
        }
    }
}

/// The error for a macro placed on the wrong kind of item, spanned at the
/// item's keyword: "not expected here; #\[handler\] goes on an `async fn`,
/// not on a `struct`".
pub(crate) fn not_expected_here(attr: &str, goes_on: &str, item: &syn::Item) -> syn::Error {
    let (span, what) = describe_item(item);
    syn::Error::new(
        span,
        format!("not expected here; #[{attr}] goes on {goes_on}, not on {what}"),
    )
}

/// The keyword span of `item` and how to name its kind in a message.
fn describe_item(item: &syn::Item) -> (Span, &'static str) {
    use syn::Item;
    use syn::spanned::Spanned;
    match item {
        Item::Struct(s) => (s.struct_token.span, "a `struct`"),
        Item::Enum(e) => (e.enum_token.span, "an `enum`"),
        Item::Union(u) => (u.union_token.span, "a `union`"),
        Item::Fn(f) if f.sig.asyncness.is_some() => (f.sig.fn_token.span, "an `async fn`"),
        Item::Fn(f) => (f.sig.fn_token.span, "a `fn`"),
        Item::Impl(i) if i.trait_.is_some() => (i.impl_token.span, "a trait `impl` block"),
        Item::Impl(i) => (i.impl_token.span, "an inherent `impl` block"),
        Item::Trait(t) => (t.trait_token.span, "a `trait`"),
        Item::TraitAlias(t) => (t.trait_token.span, "a trait alias"),
        Item::Mod(m) => (m.mod_token.span, "a `mod`"),
        Item::Const(c) => (c.const_token.span, "a `const`"),
        Item::Static(s) => (s.static_token.span, "a `static`"),
        Item::Type(t) => (t.type_token.span, "a `type` alias"),
        Item::Use(u) => (u.use_token.span, "a `use` declaration"),
        Item::ExternCrate(e) => (e.extern_token.span, "an `extern crate` declaration"),
        Item::ForeignMod(f) => (f.abi.extern_token.span, "an `extern` block"),
        Item::Macro(m) => (m.mac.path.span(), "a macro invocation"),
        _ => (Span::call_site(), "this item"),
    }
}

/// `tokens` as a user would write them: `Vec<u8>`, `&'static str`,
/// `(u32, String)`, for use inside backticks in a message.
pub(crate) fn pretty(tokens: &impl ToTokens) -> String {
    let raw = tokens.to_token_stream().to_string();
    let chars: Vec<char> = raw.chars().collect();
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '\'';
    let mut out = String::with_capacity(raw.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let prev = out.chars().last();
            let next = chars.get(i + 1).copied();
            let keep = matches!((prev, next), (Some(p), Some(n)) if word(p) && word(n))
                || prev == Some(',');
            if keep {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The span of the first identifier `name` in `tokens`, searching groups.
pub(crate) fn find_ident(tokens: TokenStream, name: &str) -> Option<Span> {
    tokens.into_iter().find_map(|tree| match tree {
        TokenTree::Ident(ident) if ident == name => Some(ident.span()),
        TokenTree::Group(group) => find_ident(group.stream(), name),
        _ => None,
    })
}

/// Prints `expanded` to stderr when `GAMEWIRE_MACROS_DEBUG=1`.
pub(crate) fn debug_dump(macro_name: &str, expanded: &TokenStream) {
    if std::env::var_os("GAMEWIRE_MACROS_DEBUG").is_some_and(|v| v == "1") {
        eprintln!("gamewire-macros: #[{macro_name}] expands to:\n{expanded}\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_merges_errors() {
        let diag = Diag::new();
        assert!(diag.finish().is_ok());

        let diag = Diag::new();
        diag.error_at(Span::call_site(), "first");
        diag.error_at(Span::call_site(), "second");
        let messages: Vec<String> = diag
            .finish()
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(messages, ["first", "second"]);
    }

    #[test]
    #[should_panic(expected = "without `finish()`")]
    fn dropping_unfinished_diag_panics() {
        let diag = Diag::new();
        diag.error_at(Span::call_site(), "forgotten");
    }

    #[test]
    fn pretty_prints_types_as_written() {
        let ty: syn::Type = syn::parse_quote!(Vec<u8>);
        assert_eq!(pretty(&ty), "Vec<u8>");
        let ty: syn::Type = syn::parse_quote!(&'static str);
        assert_eq!(pretty(&ty), "&'static str");
        let ty: syn::Type = syn::parse_quote!((u32, ::std::string::String));
        assert_eq!(pretty(&ty), "(u32, ::std::string::String)");
    }

    #[test]
    fn not_expected_here_names_the_item() {
        let item: syn::Item = syn::parse_quote!(
            struct S;
        );
        let error = not_expected_here("message", "an `enum`", &item);
        assert_eq!(
            error.to_string(),
            "not expected here; #[message] goes on an `enum`, not on a `struct`"
        );
    }
}
