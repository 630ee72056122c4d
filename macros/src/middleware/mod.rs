//! `#[middleware(order = N)]`: an `impl MessageMiddleware<P> for T` block
//! registered for every server of protocol `P`.
//!
//! [`parse`] reads `order` and the impl header, [`validate`] checks the
//! header, and [`expand`](mod@self::expand) re-emits the impl block unchanged
//! (other attributes such as `#[async_trait]` included) followed by the
//! order check, the factory and the registration. On error the block is
//! emitted unchanged next to the `compile_error!`.

use proc_macro2::TokenStream;

use crate::diag::Diag;

mod expand;
mod parse;
mod validate;

/// Expands `#[middleware(args)] item`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let diag = Diag::new();
    let parsed = syn::parse2::<syn::Item>(item.clone());
    let middleware = match &parsed {
        Ok(parsed) => parse::middleware(&diag, args, parsed),
        Err(error) => {
            diag.push(error.clone());
            None
        }
    };
    if let Some(middleware) = &middleware {
        validate::middleware(&diag, middleware);
    }
    match (diag.finish(), middleware) {
        (Ok(()), Some(middleware)) => expand::middleware(&middleware, item),
        (Err(error), _) => {
            let mut out = item;
            out.extend(error.to_compile_error());
            out
        }
        (Ok(()), None) => unreachable!("parse returns no middleware only after an error"),
    }
}

/// A `#[middleware]` impl block, read.
pub(crate) struct Middleware<'a> {
    /// The impl block as written.
    pub(crate) item: &'a syn::ItemImpl,
    /// `order = N`, as a value and as the user's tokens (`10`, `-5`).
    pub(crate) order: (i32, syn::Expr),
    /// `P` in `MessageMiddleware<P>`.
    pub(crate) protocol: &'a syn::Type,
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    #[test]
    fn valid_middleware_expands_after_the_unchanged_impl() {
        let item = quote! {
            #[gamewire::async_trait]
            impl MessageMiddleware<GameMessage> for RateLimit {
                async fn before_process(&self, user_id: u32, message: &mut GameMessage) -> Result<bool, MiddlewareError> { Ok(true) }
            }
        };
        let out = expand(quote!(order = 10), item.clone());
        let file: syn::File = syn::parse2(out.clone()).unwrap();
        assert_eq!(file.items.len(), 2);
        assert!(out.to_string().starts_with(&item.to_string()));
    }

    #[test]
    fn error_keeps_the_impl_unchanged() {
        let item = quote!(impl MessageMiddleware<GameMessage> for RateLimit {});
        let out = expand(quote!(), item.clone()).to_string();
        assert!(out.starts_with(&item.to_string()), "{out}");
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(
            out.contains("missing `order`; write #[middleware(order = 10)]"),
            "{out}"
        );
    }
}
