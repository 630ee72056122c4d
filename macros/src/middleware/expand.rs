//! Expand stage of `#[middleware]`: the impl block unchanged, then the
//! one-middleware-per-order check, the factory and the registration.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::Middleware;
use crate::diag::pretty;
use crate::paths;

/// The expansion of a valid middleware; `item` is the impl block's tokens
/// as written.
pub(crate) fn middleware(middleware: &Middleware<'_>, item: TokenStream) -> TokenStream {
    let protocol = middleware.protocol;
    let self_ty = &middleware.item.self_ty;
    let order = &middleware.order.1;
    let name = pretty(self_ty);

    // A hidden associated const on the protocol named after the order,
    // spanned at the `order` value: a second middleware at the same order
    // defines it again, and rustc reports "duplicate definitions with name
    // `middleware_at_order_10`" at both middlewares' orders.
    let order_span = order.span();
    let value = middleware.order.0;
    let sign = if value < 0 { "minus_" } else { "" };
    let slot = format_ident!(
        "middleware_at_order_{}{}",
        sign,
        value.unsigned_abs(),
        span = order_span
    );
    let unique = quote_spanned! {order_span=>
        impl #protocol {
            #[doc(hidden)]
            #[allow(dead_code, non_upper_case_globals)]
            const #slot: () = ();
        }
    };

    // Spanned at the type, so a missing `Default` is reported there.
    let ty_span = self_ty.span();
    let (arc, message_middleware, default) = (
        paths::arc(ty_span),
        paths::message_middleware(ty_span),
        paths::default(ty_span),
    );
    let make = quote_spanned! {ty_span=>
        #[doc(hidden)]
        fn __gamewire_make() -> #arc<dyn #message_middleware<#protocol>> {
            #arc::new(<#self_ty as #default>::default())
        }
    };

    let span = Span::call_site();
    let (submit, registration, typed_middleware, type_id) = (
        paths::inventory_submit(span),
        paths::middleware_registration(span),
        paths::typed_middleware(span),
        paths::type_id(span),
    );
    let here = paths::here();
    quote! {
        #item

        #[doc(hidden)]
        const _: () = {
            #unique

            #make

            #submit! {
                #registration {
                    protocol: #type_id::<#protocol>,
                    order: #order,
                    name: #name,
                    factory: &#typed_middleware::<#protocol> { make: __gamewire_make },
                    location: #here,
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;
    use crate::diag::Diag;
    use crate::middleware::parse;

    #[test]
    fn expansion_registers_the_type() {
        let item: syn::Item = syn::parse_quote! {
            impl MessageMiddleware<GameMessage> for limits::RateLimit {}
        };
        let diag = Diag::new();
        let model = parse::middleware(&diag, quote!(order = -5), &item).unwrap();
        diag.finish().unwrap();
        let out = middleware(&model, quote!(#item));
        let _: syn::File = syn::parse2(out.clone()).unwrap();
        let out = out.to_string();
        assert!(
            out.contains("const middleware_at_order_minus_5 : () = ()"),
            "{out}"
        );
        assert!(out.contains("name : \"limits::RateLimit\""), "{out}");
        assert!(out.contains("order : - 5"), "{out}");
    }
}
