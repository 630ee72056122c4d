//! Validate stage of `#[middleware]`: the impl header rules.

use super::Middleware;
use crate::diag::Diag;

/// Checks the impl header, recording every violation in `diag`.
pub(crate) fn middleware(diag: &Diag, middleware: &Middleware<'_>) {
    let item = middleware.item;
    if let Some((Some(bang), _, _)) = &item.trait_ {
        diag.error(
            bang,
            "#[middleware] goes on a positive impl; remove the `!`",
        );
    }
    if !item.generics.params.is_empty() {
        diag.error(
            &item.generics,
            "#[middleware] impls cannot be generic; implement `MessageMiddleware<YourProtocol>` for one concrete type",
        );
    } else if let Some(where_clause) = &item.generics.where_clause {
        diag.error(
            where_clause,
            "#[middleware] impls cannot have a `where` clause",
        );
    }
    if let Some(default) = &item.defaultness {
        diag.error(default, "#[middleware] impls cannot be `default`");
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;
    use crate::middleware::parse;

    fn errors(item: syn::Item) -> Vec<String> {
        let diag = Diag::new();
        if let Some(m) = parse::middleware(&diag, quote!(order = 1), &item) {
            middleware(&diag, &m);
        }
        match diag.finish() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn header_errors() {
        assert_eq!(
            errors(syn::parse_quote!(
                impl<T> MessageMiddleware<P> for S<T> {}
            )),
            [
                "#[middleware] impls cannot be generic; implement `MessageMiddleware<YourProtocol>` for one concrete type"
            ]
        );
        assert_eq!(
            errors(syn::parse_quote!(impl !MessageMiddleware<P> for S {})),
            ["#[middleware] goes on a positive impl; remove the `!`"]
        );
        assert_eq!(
            errors(syn::parse_quote!(impl MessageMiddleware<P> for S {})),
            Vec::<String>::new()
        );
    }
}
