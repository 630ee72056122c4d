//! Parse stage of `#[middleware]`: `order = N` and the impl header.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;

use super::Middleware;
use crate::diag::{Diag, not_expected_here, pretty};
use crate::kw;

/// Where `#[middleware]` goes, for "not expected here" errors.
const GOES_ON: &str = "an `impl MessageMiddleware<_> for _` block";

/// Reads `#[middleware(args)] item`. Returns `None` when `item` is not a
/// usable `impl MessageMiddleware<P> for T` block or `order` is missing or
/// malformed (the errors are recorded).
pub(crate) fn middleware<'a>(
    diag: &Diag,
    args: TokenStream,
    item: &'a syn::Item,
) -> Option<Middleware<'a>> {
    let order = order(diag, args);
    let syn::Item::Impl(item) = item else {
        diag.push(not_expected_here("middleware", GOES_ON, item));
        return None;
    };
    let Some((_, trait_path, _)) = &item.trait_ else {
        diag.push(not_expected_here(
            "middleware",
            GOES_ON,
            &syn::Item::Impl(item.clone()),
        ));
        return None;
    };
    let protocol = protocol(diag, trait_path);
    Some(Middleware {
        item,
        order: order?,
        protocol: protocol?,
    })
}

/// `P` in `...::MessageMiddleware<P>`.
fn protocol<'a>(diag: &Diag, trait_path: &'a syn::Path) -> Option<&'a syn::Type> {
    let last = trait_path.segments.last()?;
    if last.ident != kw::MESSAGE_MIDDLEWARE {
        diag.error(
            trait_path,
            format_args!(
                "#[middleware] goes on an impl of `MessageMiddleware<_>`, not of `{}`",
                pretty(trait_path)
            ),
        );
        return None;
    }
    if let syn::PathArguments::AngleBracketed(args) = &last.arguments
        && let [syn::GenericArgument::Type(ty)] = args.args.iter().collect::<Vec<_>>()[..]
    {
        return Some(ty);
    }
    diag.error(
        last,
        "expected `MessageMiddleware<YourProtocol>`, with the protocol as the only generic argument",
    );
    None
}

/// Reads `order = <i32 literal>`.
fn order(diag: &Diag, args: TokenStream) -> Option<(i32, syn::Expr)> {
    let mut order = None;
    let mut seen = false;
    let parser = syn::meta::parser(|meta| {
        if !meta.path.is_ident(kw::ORDER) {
            diag.error(
                &meta.path,
                format_args!(
                    "unknown #[middleware] attribute `{}`; {}",
                    pretty(&meta.path),
                    kw::one_of(kw::MIDDLEWARE_KEYS)
                ),
            );
            return skip_value(&meta);
        }
        if seen {
            diag.error(&meta.path, "duplicate #[middleware] attribute `order`");
            return skip_value(&meta);
        }
        seen = true;
        let value: syn::Expr = meta.value()?.parse()?;
        order = order_value(diag, value);
        Ok(())
    });
    if let Err(error) = parser.parse2(args) {
        diag.push(error);
        return None;
    }
    if !seen {
        diag.error_at(
            Span::call_site(),
            "missing `order`; write #[middleware(order = 10)]",
        );
    }
    order
}

/// An `i32` literal, possibly negated.
fn order_value(diag: &Diag, value: syn::Expr) -> Option<(i32, syn::Expr)> {
    let (negative, literal) = match &value {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(literal),
            ..
        }) => (false, literal),
        syn::Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) => match &**expr {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(literal),
                ..
            }) => (true, literal),
            _ => {
                diag.error(&value, "expected an `i32` literal, e.g. `order = 10`");
                return None;
            }
        },
        _ => {
            diag.error(&value, "expected an `i32` literal, e.g. `order = 10`");
            return None;
        }
    };
    if !matches!(literal.suffix(), "" | "i32") {
        diag.error(
            literal,
            format_args!(
                "middleware orders are `i32`; remove the `{}` suffix",
                literal.suffix()
            ),
        );
        return None;
    }
    let parsed = literal
        .base10_parse::<i64>()
        .ok()
        .map(|n| if negative { -n } else { n })
        .and_then(|n| i32::try_from(n).ok());
    match parsed {
        Some(n) => Some((n, value)),
        None => {
            diag.error(
                &value,
                format_args!("order `{}` does not fit in an `i32`", pretty(&value)),
            );
            None
        }
    }
}

/// Skips whatever follows a key up to the next top-level `,`.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    meta.input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tree, next)) = rest.token_tree() {
            if matches!(&tree, TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            rest = next;
        }
        Ok(((), rest))
    })
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn run(args: TokenStream, item: syn::Item) -> (Option<(i32, String, String)>, Vec<String>) {
        let diag = Diag::new();
        let model = middleware(&diag, args, &item)
            .map(|m| (m.order.0, pretty(&m.order.1), pretty(m.protocol)));
        let errors = match diag.finish() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        };
        (model, errors)
    }

    fn good_impl() -> syn::Item {
        syn::parse_quote!(impl gamewire::MessageMiddleware<GameMessage> for RateLimit {})
    }

    #[test]
    fn reads_order_and_protocol() {
        assert_eq!(
            run(quote!(order = 10), good_impl()),
            (Some((10, "10".into(), "GameMessage".into())), vec![])
        );
        assert_eq!(
            run(quote!(order = -2147483648), good_impl()).0,
            Some((i32::MIN, "-2147483648".into(), "GameMessage".into()))
        );
    }

    #[test]
    fn order_errors() {
        assert_eq!(
            run(quote!(), good_impl()).1,
            ["missing `order`; write #[middleware(order = 10)]"]
        );
        assert_eq!(
            run(quote!(ordr = 1, order = 2, order = 3), good_impl()).1,
            [
                "unknown #[middleware] attribute `ordr`; expected one of `order`",
                "duplicate #[middleware] attribute `order`",
            ]
        );
        assert_eq!(
            run(quote!(order = "10"), good_impl()).1,
            ["expected an `i32` literal, e.g. `order = 10`"]
        );
        assert_eq!(
            run(quote!(order = 10u8), good_impl()).1,
            ["middleware orders are `i32`; remove the `u8` suffix"]
        );
        assert_eq!(
            run(quote!(order = 3000000000), good_impl()).1,
            ["order `3000000000` does not fit in an `i32`"]
        );
    }

    #[test]
    fn item_errors() {
        assert_eq!(
            run(
                quote!(order = 1),
                syn::parse_quote!(
                    struct S;
                )
            )
            .1,
            [
                "not expected here; #[middleware] goes on an `impl MessageMiddleware<_> for _` block, not on a `struct`"
            ]
        );
        assert_eq!(
            run(quote!(order = 1), syn::parse_quote!(impl S {})).1,
            [
                "not expected here; #[middleware] goes on an `impl MessageMiddleware<_> for _` block, not on an inherent `impl` block"
            ]
        );
        assert_eq!(
            run(quote!(order = 1), syn::parse_quote!(impl Default for S {})).1,
            ["#[middleware] goes on an impl of `MessageMiddleware<_>`, not of `Default`"]
        );
        assert_eq!(
            run(
                quote!(order = 1),
                syn::parse_quote!(impl MessageMiddleware for S {})
            )
            .1,
            [
                "expected `MessageMiddleware<YourProtocol>`, with the protocol as the only generic argument"
            ]
        );
    }
}
