//! Expand stage of `#[handler]`: the fn unchanged, then a hidden block
//! with the compile-time checks, the trampoline and the registration.
//!
//! Inside the block the user's enum path is named once, by the type alias
//! `__GamewireProtocol`, so a typo in it is reported once.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use super::Handler;
use crate::paths;

/// The expansion of a valid handler.
pub(crate) fn handler(handler: &Handler<'_>) -> TokenStream {
    let func = handler.func;
    let user_protocol = &handler.protocol;
    let protocol = quote!(__GamewireProtocol);
    let variant = &handler.variant;
    let variant_name = variant.unraw().to_string();
    let lookup = lookup(handler, &variant_name);
    let unique = unique(handler);
    let checks = payload_checks(handler);
    let trampoline = trampoline(handler);
    let registration = registration(handler, &variant_name);
    quote! {
        #func

        #[doc(hidden)]
        const _: () = {
            #[doc(hidden)]
            type __GamewireProtocol = #user_protocol;

            // rustc reports an unknown variant here, at the user's token.
            #[doc(hidden)]
            #[allow(unreachable_patterns, dead_code)]
            fn __gamewire_check_variant(__message: &#protocol) {
                match *__message {
                    #protocol::#variant { .. } => {}
                    _ => {}
                }
            }

            #lookup
            #unique
            #checks
            #trampoline
            #registration
        };
    }
}

/// `__GAMEWIRE_VARIANT`, the variant's declaration index, spanned at the
/// enum path so that "`X` is not a gamewire protocol" is reported there.
fn lookup(handler: &Handler<'_>, variant_name: &str) -> TokenStream {
    let span = handler.protocol.span();
    let variant_index = paths::variant_index(span);
    quote_spanned! {span=>
        #[doc(hidden)]
        const __GAMEWIRE_VARIANT: usize = #variant_index::<__GamewireProtocol>(#variant_name);
    }
}

/// A hidden associated const on the enum named after the variant,
/// `handler_for_<Variant>`, spanned at the variant: a second handler for
/// the same variant defines it again, and rustc reports "duplicate
/// definitions with name `handler_for_Ping`" with a caret under the
/// variant in both attributes.
fn unique(handler: &Handler<'_>) -> TokenStream {
    let span = handler.variant.span();
    let name = format_ident!("handler_for_{}", handler.variant.unraw(), span = span);
    quote_spanned! {span=>
        impl __GamewireProtocol {
            #[doc(hidden)]
            #[allow(dead_code, non_upper_case_globals)]
            const #name: () = ();
        }
    }
}

/// Per parameter, a check that it is not the payload of another variant:
/// `<Ty as PayloadOfHandledVariant<P, { payload_matches(..) }>>::CHECK`,
/// implemented only for `true`, so rustc reports that trait's message at
/// the parameter's type.
fn payload_checks(handler: &Handler<'_>) -> TokenStream {
    handler
        .params
        .iter()
        .map(|ty| {
            let span = ty.span();
            let (check, matches, from_session) = (
                paths::payload_of_handled_variant(span),
                paths::payload_matches(span),
                paths::from_session(span),
            );
            quote_spanned! {span=>
                const _: () = <#ty as #check<
                    __GamewireProtocol,
                    { #matches(<#ty as #from_session<__GamewireProtocol>>::PAYLOAD_OF, __GAMEWIRE_VARIANT) },
                >>::CHECK;
            }
        })
        .collect()
}

/// `__gamewire_call`: extracts each parameter, calls the fn, converts its
/// output into a reply. Extractions are spanned at the parameter types, the
/// conversion at the return type, and the boxed future at the fn name (for
/// "future cannot be sent between threads safely").
fn trampoline(handler: &Handler<'_>) -> TokenStream {
    let sig = &handler.func.sig;
    let args: Vec<_> = (0..handler.params.len())
        .map(|i| format_ident!("__arg{}", i))
        .collect();
    let extracts = handler.params.iter().zip(&args).map(|(ty, arg)| {
        let span = ty.span();
        let from_session = paths::from_session(span);
        quote_spanned! {span=>
            let #arg = <#ty as #from_session<__GamewireProtocol>>::from_session(&mut __cx)?;
        }
    });
    let context = if args.is_empty() {
        quote!(let _ = __cx;)
    } else {
        quote!(let mut __cx = __cx;)
    };
    let call = {
        let span = match &sig.output {
            syn::ReturnType::Type(_, ty) => ty.span(),
            syn::ReturnType::Default => sig.ident.span(),
        };
        let into_reply = paths::into_reply(span);
        let mut fn_ident = sig.ident.clone();
        fn_ident.set_span(span);
        quote_spanned! {span=>
            #into_reply::<__GamewireProtocol>::into_reply(#fn_ident(#(#args),*).await)
        }
    };
    let call_site = Span::call_site();
    let (handler_context, handler_future) = (
        paths::handler_context(call_site),
        paths::handler_future(call_site),
    );
    let name_span = sig.ident.span();
    let boxed = paths::boxed(name_span);
    let pinned = quote_spanned! {name_span=>
        #boxed::pin(async move {
            #context
            #(#extracts)*
            #call
        })
    };
    quote! {
        #[doc(hidden)]
        fn __gamewire_call(
            __cx: #handler_context<__GamewireProtocol>,
        ) -> #handler_future<__GamewireProtocol> {
            #pinned
        }
    }
}

/// `inventory::submit!` of the handler's registration.
fn registration(handler: &Handler<'_>, variant_name: &str) -> TokenStream {
    let span = Span::call_site();
    let (submit, registration, typed_handler, type_id) = (
        paths::inventory_submit(span),
        paths::handler_registration(span),
        paths::typed_handler(span),
        paths::type_id(span),
    );
    let fn_name = handler.func.sig.ident.unraw().to_string();
    let requirements = handler.params.iter().map(|ty| {
        let span = ty.span();
        let from_session = paths::from_session(span);
        quote_spanned!(span=> <#ty as #from_session<__GamewireProtocol>>::requirement)
    });
    let here = paths::here();
    quote! {
        #submit! {
            #registration {
                protocol: #type_id::<__GamewireProtocol>,
                variant: __GAMEWIRE_VARIANT,
                variant_name: #variant_name,
                name: #fn_name,
                handler: &#typed_handler::<__GamewireProtocol> { call: __gamewire_call },
                requirements: &[#(#requirements),*],
                location: #here,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::ToTokens;

    use super::*;
    use crate::diag::Diag;
    use crate::handler::parse;
    use crate::sig::ItemFnTokens;

    fn expand(args: TokenStream, func: &ItemFnTokens) -> String {
        let diag = Diag::new();
        let model = parse::handler(&diag, args, func).unwrap();
        diag.finish().unwrap();
        let out = handler(&model);
        let _: syn::File = syn::parse2(out.clone()).unwrap();
        out.to_string()
    }

    #[test]
    fn expansion_keeps_the_fn_and_registers_it() {
        let func: ItemFnTokens = syn::parse_quote! {
            async fn custom(cmd: CustomCommand, session: Session, state: State<MyCustomService>) -> anyhow::Result<GameMessage> {
                body!()
            }
        };
        let out = expand(quote!(GameMessage::CustomCommand), &func);
        assert!(
            out.starts_with(&func.to_token_stream().to_string()),
            "{out}"
        );
        assert!(
            out.contains("__GamewireProtocol :: CustomCommand { .. } => { }"),
            "{out}"
        );
        assert!(
            out.contains("variant_index :: < __GamewireProtocol > (\"CustomCommand\")"),
            "{out}"
        );
        assert_eq!(out.matches("PayloadOfHandledVariant").count(), 3, "{out}");
        assert!(
            out.contains("custom (__arg0 , __arg1 , __arg2) . await"),
            "{out}"
        );
        assert!(out.contains("name : \"custom\""), "{out}");
    }

    #[test]
    fn no_parameters() {
        let func: ItemFnTokens = syn::parse_quote!(
            async fn tick() {}
        );
        let out = expand(quote!(crate::proto::E::Tick), &func);
        assert!(out.contains("let _ = __cx ;"), "{out}");
        assert!(out.contains("requirements : & []"), "{out}");
        assert!(
            out.contains("type __GamewireProtocol = crate :: proto :: E ;"),
            "{out}"
        );
    }
}
