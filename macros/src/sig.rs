//! A function item read as attributes, visibility and signature, with the
//! body kept as raw tokens.
//!
//! `#[handler]` only needs the signature. Keeping the body unparsed means it
//! is re-emitted exactly as written, so rustc reports errors inside it at
//! the user's lines, and a body syn cannot parse still compiles.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::{ToTokens, TokenStreamExt};
use syn::parse::{Parse, ParseStream};

/// A function item with an unparsed body.
pub(crate) struct ItemFnTokens {
    /// Outer attributes, doc comments included.
    pub(crate) attrs: Vec<syn::Attribute>,
    /// The visibility.
    pub(crate) vis: syn::Visibility,
    /// The signature, from the qualifiers to the return type and `where`.
    pub(crate) sig: syn::Signature,
    /// The braced body, as written.
    pub(crate) body: TokenStream,
}

impl Parse for ItemFnTokens {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(syn::Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig: syn::Signature = input.parse()?;
        let body: TokenStream = input.parse()?;
        let mut trees = body.clone().into_iter();
        match (trees.next(), trees.next()) {
            (Some(TokenTree::Group(group)), None) if group.delimiter() == Delimiter::Brace => {}
            _ => {
                return Err(syn::Error::new(
                    sig.ident.span(),
                    "expected a function body",
                ));
            }
        }
        Ok(ItemFnTokens {
            attrs,
            vis,
            sig,
            body,
        })
    }
}

impl ToTokens for ItemFnTokens {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.append_all(&self.attrs);
        self.vis.to_tokens(tokens);
        self.sig.to_tokens(tokens);
        self.body.to_tokens(tokens);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn body_round_trips_as_tokens() {
        let item = quote! {
            /// Docs.
            pub async fn f(x: u32) -> u32 { let y = x + 1; y }
        };
        let parsed: ItemFnTokens = syn::parse2(item.clone()).unwrap();
        assert_eq!(parsed.sig.ident, "f");
        assert_eq!(parsed.attrs.len(), 1);
        assert_eq!(parsed.to_token_stream().to_string(), item.to_string());
    }

    #[test]
    fn body_syn_cannot_parse_is_kept() {
        let item = quote!(async fn f() { some_macro!(@ weird ~ tokens) ; let = ; });
        let parsed: ItemFnTokens = syn::parse2(item.clone()).unwrap();
        assert_eq!(parsed.to_token_stream().to_string(), item.to_string());
    }

    #[test]
    fn non_functions_do_not_parse() {
        assert!(
            syn::parse2::<ItemFnTokens>(quote!(
                struct S;
            ))
            .is_err()
        );
        assert!(
            syn::parse2::<ItemFnTokens>(quote!(
                fn f();
            ))
            .is_err()
        );
    }
}
