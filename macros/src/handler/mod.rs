//! `#[handler(Enum::Variant)]`: an `async fn` registered as the handler of
//! one variant.
//!
//! [`parse`] reads the attribute argument and the signature (the body stays
//! raw tokens, see [`crate::sig`]), [`validate`] checks the signature, and
//! [`expand`](mod@self::expand) re-emits the fn unchanged followed by the
//! hidden checks, the trampoline and the registration. On error the fn is
//! emitted unchanged next to the `compile_error!`.

use proc_macro2::TokenStream;

use crate::diag::{Diag, not_expected_here};
use crate::sig::ItemFnTokens;

mod expand;
mod parse;
mod validate;

/// Expands `#[handler(args)] item`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let diag = Diag::new();
    let func = match syn::parse2::<ItemFnTokens>(item.clone()) {
        Ok(func) => func,
        Err(error) => {
            match syn::parse2::<syn::Item>(item.clone()) {
                Ok(syn::Item::Verbatim(_)) | Err(_) => diag.push(error),
                Ok(other) => diag.push(not_expected_here("handler", "an `async fn`", &other)),
            }
            return with_errors(item, diag);
        }
    };
    let handler = parse::handler(&diag, args, &func);
    validate::handler(&diag, &func);
    match (diag.finish(), handler) {
        (Ok(()), Some(handler)) => expand::handler(&handler),
        (Err(error), _) => {
            let mut out = item;
            out.extend(error.to_compile_error());
            out
        }
        (Ok(()), None) => unreachable!("parse returns no handler only after an error"),
    }
}

/// `item` unchanged, followed by the errors of `diag`.
fn with_errors(mut item: TokenStream, diag: Diag) -> TokenStream {
    if let Err(error) = diag.finish() {
        item.extend(error.to_compile_error());
    }
    item
}

/// A `#[handler]` fn, read.
pub(crate) struct Handler<'a> {
    /// The fn as written, body as raw tokens.
    pub(crate) func: &'a ItemFnTokens,
    /// The protocol enum: the attribute's path minus its last segment.
    pub(crate) protocol: syn::Path,
    /// The handled variant: the attribute's last segment, with its span.
    pub(crate) variant: syn::Ident,
    /// The parameter types, in order.
    pub(crate) params: Vec<&'a syn::Type>,
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    #[test]
    fn error_keeps_the_fn_unchanged() {
        let item = quote!(
            fn f(x: u32) {}
        );
        let out = expand(quote!(E::A), item.clone()).to_string();
        assert!(out.starts_with(&item.to_string()), "{out}");
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(
            out.contains("#[handler] functions must be `async`"),
            "{out}"
        );
    }

    #[test]
    fn wrong_item_kinds() {
        let out = expand(
            quote!(E::A),
            quote!(
                struct S;
            ),
        )
        .to_string();
        assert!(
            out.contains("not expected here; #[handler] goes on an `async fn`, not on a `struct`"),
            "{out}"
        );
        let out = expand(quote!(E::A), quote!(impl S {})).to_string();
        assert!(out.contains("not on an inherent `impl` block"), "{out}");
    }

    #[test]
    fn valid_handler_expands() {
        let out = expand(
            quote!(GameMessage::CustomCommand),
            quote! {
                async fn custom(cmd: CustomCommand, session: Session) -> anyhow::Result<GameMessage> {
                    todo!()
                }
            },
        );
        let file: syn::File = syn::parse2(out).unwrap();
        assert_eq!(file.items.len(), 2);
    }
}
