//! `#[payload]`: a struct or enum of yours, carried inside messages.
//!
//! A field of a `#[message]` variant needs serde's traits. Deriving them
//! directly would make every user depend on serde; `#[payload]` derives
//! them through gamewire's own copy instead, and adds `Debug` and `Clone`
//! when the item does not derive them, since message fields need both.
//! It derives `Describe` too, so generated clients know the type.
//! There is no cross-item rule to validate, so the stages are parse and
//! expand.

use proc_macro2::{Span, TokenStream};
use quote::quote;

use crate::diag::{self, Diag};
use crate::paths;

/// Expands `#[payload(args)] item`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let diag = Diag::new();
    if let Some(first) = args.clone().into_iter().next() {
        diag.error(first, "#[payload] takes no arguments; write #[payload]");
    }
    let parsed = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            diag.push(error);
            None
        }
    };
    let derives = match &parsed {
        Some(syn::Item::Struct(s)) => Some(missing_std_derives(&s.attrs)),
        Some(syn::Item::Enum(e)) => Some(missing_std_derives(&e.attrs)),
        Some(other) => {
            diag.push(diag::not_expected_here(
                "payload",
                "a `struct` or an `enum`",
                other,
            ));
            None
        }
        None => None,
    };
    if let Err(error) = diag.finish() {
        // Fail gently: the item as written, and the one error.
        let mut out = item;
        out.extend(error.to_compile_error());
        return out;
    }
    let serialize = paths::serialize(Span::call_site());
    let deserialize = paths::deserialize(Span::call_site());
    let serde_crate = paths::SERDE_CRATE;
    let std_derives = derives.unwrap_or_default();
    let describe = quote!(::gamewire::Describe);
    quote! {
        #[derive(#serialize, #deserialize, #describe)]
        #[serde(crate = #serde_crate)]
        #(#[derive(#std_derives)])*
        #item
    }
}

/// `Debug` and `Clone`, as derive paths, for those `attrs` do not derive.
fn missing_std_derives(attrs: &[syn::Attribute]) -> Vec<TokenStream> {
    let derived: Vec<String> = attrs
        .iter()
        .filter(|attr| attr.path().is_ident("derive"))
        .filter_map(|attr| {
            attr.parse_args_with(
                syn::punctuated::Punctuated::<syn::Path, syn::Token![,]>::parse_terminated,
            )
            .ok()
        })
        .flatten()
        .filter_map(|path| path.segments.last().map(|s| s.ident.to_string()))
        .collect();
    [
        ("Debug", quote!(::core::fmt::Debug)),
        ("Clone", quote!(::core::clone::Clone)),
    ]
    .into_iter()
    .filter(|(name, _)| !derived.iter().any(|d| d == name))
    .map(|(_, path)| path)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_quote(args: TokenStream, item: TokenStream) -> String {
        expand(args, item).to_string()
    }

    #[test]
    fn adds_serde_through_gamewire_and_missing_std_derives() {
        let out = expand_quote(
            quote!(),
            quote!(
                #[derive(Clone)]
                pub struct Cell {
                    x: u8,
                }
            ),
        );
        assert!(
            out.contains("gamewire :: __private :: serde :: Serialize"),
            "{out}"
        );
        assert!(out.contains("\"::gamewire::__private::serde\""), "{out}");
        assert!(out.contains("core :: fmt :: Debug"), "{out}");
        assert!(
            !out.contains("core :: clone :: Clone"),
            "Clone was derived already: {out}"
        );
        syn::parse_str::<syn::File>(&out).unwrap();
    }

    #[test]
    fn refuses_functions_and_arguments() {
        let out = expand_quote(
            quote!(),
            quote!(
                fn cell() {}
            ),
        );
        assert!(
            out.contains("#[payload] goes on a `struct` or an `enum`, not on a `fn`"),
            "{out}"
        );
        let out = expand_quote(
            quote!(strict),
            quote!(
                struct Cell;
            ),
        );
        assert!(out.contains("#[payload] takes no arguments"), "{out}");
    }
}
