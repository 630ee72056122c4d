//! Validate stage of `#[handler]`: the signature rules.

use quote::ToTokens;

use crate::diag::{Diag, find_ident};
use crate::sig::ItemFnTokens;

/// Checks `func`'s signature, recording every violation in `diag`.
pub(crate) fn handler(diag: &Diag, func: &ItemFnTokens) {
    let sig = &func.sig;
    if let Some(constness) = &sig.constness {
        diag.error(constness, "#[handler] functions cannot be `const`");
    }
    if sig.asyncness.is_none() {
        diag.error(
            sig.fn_token,
            format_args!(
                "#[handler] functions must be `async`; write `async fn {}`",
                sig.ident
            ),
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        diag.error(unsafety, "#[handler] functions cannot be `unsafe`");
    }
    if let Some(abi) = &sig.abi {
        diag.error(abi, "#[handler] functions cannot be `extern`");
    }
    if !sig.generics.params.is_empty() {
        diag.error(
            &sig.generics,
            "#[handler] functions cannot be generic; use concrete parameter types",
        );
    } else if let Some(where_clause) = &sig.generics.where_clause {
        diag.error(
            where_clause,
            "#[handler] functions cannot have a `where` clause",
        );
    }
    if let Some(variadic) = &sig.variadic {
        diag.error(variadic, "#[handler] functions cannot be variadic");
    }
    for input in &sig.inputs {
        match input {
            syn::FnArg::Receiver(receiver) => diag.error(
                receiver,
                "#[handler] functions cannot take `self`; write a free `async fn`",
            ),
            syn::FnArg::Typed(typed) => {
                if let Some(span) = find_ident(typed.ty.to_token_stream(), "impl") {
                    diag.error_at(
                        span,
                        "`impl Trait` parameters are not supported in #[handler] functions; name the type",
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(func: ItemFnTokens) -> Vec<String> {
        let diag = Diag::new();
        handler(&diag, &func);
        match diag.finish() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn valid_signature_passes() {
        assert_eq!(
            errors(syn::parse_quote! {
                pub async fn custom(cmd: CustomCommand, session: Session) -> anyhow::Result<GameMessage> { todo!() }
            }),
            Vec::<String>::new()
        );
    }

    #[test]
    fn signature_errors_are_all_reported() {
        assert_eq!(
            errors(syn::parse_quote! {
                unsafe fn f<T>(&self, x: impl Into<u8>) {}
            }),
            [
                "#[handler] functions must be `async`; write `async fn f`",
                "#[handler] functions cannot be `unsafe`",
                "#[handler] functions cannot be generic; use concrete parameter types",
                "#[handler] functions cannot take `self`; write a free `async fn`",
                "`impl Trait` parameters are not supported in #[handler] functions; name the type",
            ]
        );
        assert_eq!(
            errors(syn::parse_quote! {
                async fn f() where u8: Copy {}
            }),
            ["#[handler] functions cannot have a `where` clause"]
        );
    }
}
