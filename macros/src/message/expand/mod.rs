//! Expand stage of `#[message]`: the enum, its payload structs, and the
//! `Message`, serde, `From`, `FromSession` and `IntoReply` impls plus the
//! protocol registration. Infallible: every user error was reported before.
//!
//! The serde impls are in [`serde_impls`], `Debug` and `Clone` in
//! [`std_impls`](mod@std_impls), the fingerprint in
//! [`fingerprint`](mod@fingerprint). A field's type is only ever used
//! through [`field_fn`].

use std::collections::HashSet;

use proc_macro2::{Literal, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use self::fingerprint::fingerprint;
use self::serde_impls::{deserialize_impl, serde_stubs, serialize_impl};
use self::std_impls::std_impls;
use super::lock::History;
use super::validate::payload_key;
use super::{Direction, Protocol, Shape, Variant};
use crate::diag::find_ident;
use crate::{kw, paths};

pub(super) mod fingerprint;
mod serde_impls;
mod std_impls;

/// The full expansion of a valid protocol.
pub(crate) fn full(protocol: &Protocol<'_>, history: &History) -> TokenStream {
    let enum_item = enum_item(protocol);
    let payload_structs = payload_structs(protocol, true);
    let message_impl = message_impl(protocol, history);
    let std_impls = std_impls(protocol, false);
    let serialize = serialize_impl(protocol);
    let deserialize = deserialize_impl(protocol);
    let payload_impls = payload_impls(protocol);
    let registration = registration(protocol);
    quote! {
        #enum_item
        #payload_structs
        #[doc(hidden)]
        const _: () = {
            #message_impl
            #std_impls
            #serialize
            #deserialize
            #payload_impls
            #registration
        };
    }
}

/// What is emitted when the protocol has errors: the enum without our
/// attributes, its payload structs, and impls whose `Debug`, `Clone` and
/// serde bodies are `unreachable!()`, so code using the protocol
/// type-checks and the `compile_error!` stays the only error.
pub(crate) fn fallback(protocol: &Protocol<'_>) -> TokenStream {
    let enum_item = enum_item(protocol);
    let generics = &protocol.item.generics;
    if !generics.params.is_empty()
        || generics.where_clause.is_some()
        || protocol.variants.is_empty()
    {
        return enum_item;
    }
    let payload_structs = payload_structs(protocol, false);
    let message_impl = message_impl(protocol, &History::first(protocol));
    let std_stubs = std_impls(protocol, true);
    let serde_stubs = serde_stubs(protocol);
    let payload_impls = payload_impls(protocol);
    quote! {
        #enum_item
        #payload_structs
        #[doc(hidden)]
        const _: () = {
            #message_impl
            #std_stubs
            #serde_stubs
            #payload_impls
        };
    }
}

/// The enum, with `#[gamewire]` and `#[serde]` attributes, derives of the
/// traits `#[message]` implements itself, and (on the error path only)
/// discriminants removed.
fn enum_item(protocol: &Protocol<'_>) -> TokenStream {
    let mut item = protocol.item.clone();
    item.attrs = kept_attrs(&item.attrs);
    for variant in &mut item.variants {
        // Only on the error path: a discriminant was reported already.
        variant.discriminant = None;
        variant.attrs.retain(|attr| !is_ours_or_serde(attr));
        for field in &mut variant.fields {
            field.attrs.retain(|attr| !is_ours_or_serde(attr));
        }
    }
    item.into_token_stream()
}

/// `#[gamewire(...)]` or `#[serde(...)]`.
fn is_ours_or_serde(attr: &syn::Attribute) -> bool {
    attr.path().is_ident(kw::GAMEWIRE) || attr.path().is_ident(kw::SERDE)
}

/// The enum's attributes minus ours and serde's, with the traits
/// `#[message]` implements itself (`Debug`, `Clone`, and on the error path
/// `Serialize` and `Deserialize`) taken out of derive lists.
fn kept_attrs(attrs: &[syn::Attribute]) -> Vec<syn::Attribute> {
    attrs
        .iter()
        .filter(|attr| !is_ours_or_serde(attr))
        .filter_map(|attr| {
            let paths = super::parse::derives(std::slice::from_ref(attr));
            if !paths.iter().any(is_implemented_by_us) {
                return Some(attr.clone());
            }
            let kept = paths.iter().filter(|path| !is_implemented_by_us(path));
            (kept.clone().count() > 0).then(|| syn::parse_quote!(#[derive(#(#kept),*)]))
        })
        .collect()
}

/// A derive path naming a trait `#[message]` implements itself:
/// `Debug`, `Clone`, `Serialize` or `Deserialize`.
fn is_implemented_by_us(path: &syn::Path) -> bool {
    path.segments.last().is_some_and(|s| {
        [kw::DEBUG, kw::CLONE, kw::SERIALIZE, kw::DESERIALIZE]
            .iter()
            .any(|name| s.ident == name)
    })
}

/// The enum's remaining derive attributes, for its payload structs.
fn derive_attrs(protocol: &Protocol<'_>) -> Vec<syn::Attribute> {
    kept_attrs(&protocol.item.attrs)
        .into_iter()
        .filter(|attr| attr.path().is_ident(kw::DERIVE))
        .collect()
}

/// `<Ty as MessageField>::name`: the only way the generated code uses a
/// field's type. Every token is spanned at the type, so each use of a type
/// that cannot be a field is the same diagnostic at the same place, which
/// rustc prints once.
pub(super) fn field_fn(ty: &syn::Type, name: &str) -> TokenStream {
    let span = ty.span();
    let (ty, field) = (field_type(ty), paths::message_field(span));
    let name = syn::Ident::new(name, span);
    quote_spanned!(span=> <#ty as #field>::#name)
}

/// A field's type with every token spanned like [`field_fn`]'s.
pub(super) fn field_type(ty: &syn::Type) -> TokenStream {
    respan(ty.to_token_stream(), ty.span())
}

/// `#[serde(serialize_with = "...", deserialize_with = "...")]` for a
/// payload struct field: serde's derive calls the [`field_fn`]s, spanned
/// like them.
fn serde_with(ty: &syn::Type) -> TokenStream {
    let span = ty.span();
    let ty_text = ty.to_token_stream().to_string();
    let with = |name: &str| {
        syn::LitStr::new(
            &format!("<{ty_text} as {}>::{name}", paths::MESSAGE_FIELD),
            span,
        )
    };
    let (ser, de) = (with("serialize_field"), with("deserialize_field"));
    quote!(#[serde(serialize_with = #ser, deserialize_with = #de)])
}

/// The `#[doc]` attributes among `attrs`.
fn docs(attrs: &[syn::Attribute]) -> impl Iterator<Item = &syn::Attribute> {
    attrs.iter().filter(|attr| attr.path().is_ident(kw::DOC))
}

/// The variants that get payload impls, with their payload type. On the
/// error path this skips payloads that would clash or that name `Self`;
/// for a valid protocol it is every variant.
fn payloads<'p, 'a>(protocol: &'p Protocol<'a>) -> Vec<(&'p Variant<'a>, TokenStream)> {
    let mut seen = HashSet::from([protocol.name()]);
    let mut out = Vec::new();
    for variant in &protocol.variants {
        let names_self = variant
            .original
            .fields
            .iter()
            .any(|f| find_ident(f.ty.to_token_stream(), "Self").is_some());
        let (key, ty) = match variant.shape() {
            Shape::Newtype(ty) => (payload_key(ty), ty.to_token_stream()),
            _ => (variant.name(), variant.ident().to_token_stream()),
        };
        if !names_self && seen.insert(key) {
            out.push((variant, ty));
        }
    }
    out
}

/// A payload struct per non-newtype variant.
fn payload_structs(protocol: &Protocol<'_>, with_serde: bool) -> TokenStream {
    let vis = &protocol.item.vis;
    let derives = derive_attrs(protocol);
    let serde = with_serde.then(|| {
        let span = Span::call_site();
        let (serialize, deserialize) = (paths::serialize(span), paths::deserialize(span));
        let krate = paths::SERDE_CRATE;
        quote! {
            #[derive(#serialize, #deserialize)]
            #[serde(crate = #krate)]
        }
    });
    let mut out = TokenStream::new();
    for (variant, _) in payloads(protocol) {
        let ident = variant.ident();
        let variant_docs: Vec<_> = docs(&variant.original.attrs).collect();
        let separator = (!variant_docs.is_empty()).then(|| quote!(#[doc = ""]));
        let summary = format!(" Payload of [`{}::{}`].", protocol.name(), variant.name());
        // The struct's tokens outside its fields are spanned at the
        // variant's, so rustc's notes about the payload type ("`Pong` is
        // defined here") point at the variant.
        let span = ident.span();
        let group_span = match &variant.original.fields {
            syn::Fields::Named(named) => named.brace_token.span.join(),
            syn::Fields::Unnamed(unnamed) => unnamed.paren_token.span.join(),
            syn::Fields::Unit => span,
        };
        let body = match variant.shape() {
            Shape::Newtype(_) => continue,
            Shape::Unit => quote_spanned!(span=> ;),
            Shape::Tuple(fields) => {
                // The enum's visibility, respanned to the field, so serde's
                // errors about the field point at it.
                let fields = fields.iter().map(|f| {
                    let (docs, ty) = (docs(&f.attrs), &f.ty);
                    let vis = respan(vis.to_token_stream(), ty.span());
                    let with = with_serde.then(|| serde_with(ty));
                    quote!(#(#docs)* #with #vis #ty)
                });
                let fields = quote_spanned!(group_span=> ( #(#fields),* ));
                quote_spanned!(span=> #fields;)
            }
            Shape::Struct(fields) => {
                let fields = fields.iter().map(|f| {
                    let (docs, name, ty) = (docs(&f.attrs), &f.ident, &f.ty);
                    let vis = respan(vis.to_token_stream(), ty.span());
                    let with = with_serde.then(|| serde_with(ty));
                    quote!(#(#docs)* #with #vis #name: #ty)
                });
                quote_spanned!(group_span=> { #(#fields),* })
            }
        };
        let header_vis = respan(vis.to_token_stream(), span);
        let header = quote_spanned!(span=> #header_vis struct #ident);
        out.extend(quote! {
            #(#variant_docs)*
            #separator
            #[doc = #summary]
            #(#derives)*
            #serde
            #header #body
        });
    }
    out
}

/// `impl Message`: the protocol table and the variant index.
fn message_impl(protocol: &Protocol<'_>, history: &History) -> TokenStream {
    let span = Span::call_site();
    let (message, protocol_info, variant_info, direction) = (
        paths::message(span),
        paths::protocol_info(span),
        paths::variant_info(span),
        paths::direction(span),
    );
    let ident = &protocol.item.ident;
    let name = protocol.name();
    let fingerprint = syn::LitInt::new(&format!("{:#018x}u64", fingerprint(protocol)), span);
    let infos = protocol.variants.iter().map(|v| {
        let (name, id, droppable, unhandled) = (
            v.name(),
            Literal::u32_suffixed(v.id),
            v.droppable,
            v.unhandled,
        );
        let since = Literal::u32_suffixed(history.since.get(v.index).copied().unwrap_or(1));
        let retired = v.retired;
        let dir = match v.direction {
            Direction::ToServer => quote!(#direction::ToServer),
            Direction::ToClient => quote!(#direction::ToClient),
            Direction::Both => quote!(#direction::Both),
        };
        let location = paths::here_at(v.ident().span());
        quote! {
            #variant_info {
                name: #name,
                id: #id,
                direction: #dir,
                droppable: #droppable,
                unhandled: #unhandled,
                location: #location,
                since: #since,
                retired: #retired,
            }
        }
    });
    let revision_type = paths::revision(span);
    // The lock's text is embedded (which also makes cargo compile the enum
    // again when the lock changes) for the server's check of the types.
    let lock = match (&protocol.lock, &history.path) {
        (Some(file), Some(path)) => {
            let lock_file = paths::lock_file(span);
            let path = path.display().to_string();
            quote!(::core::option::Option::Some(#lock_file {
                path: #path,
                text: ::core::include_str!(#file),
            }))
        }
        _ => quote!(::core::option::Option::None),
    };
    let revision = Literal::u32_suffixed(history.revision);
    let older = history.older.iter().map(|(r, fingerprint)| {
        let r = Literal::u32_suffixed(*r);
        let fingerprint = syn::LitInt::new(&format!("{fingerprint:#018x}u64"), span);
        quote!(#revision_type { revision: #r, fingerprint: #fingerprint })
    });
    let arms = protocol.variants.iter().map(|v| {
        let (variant, index) = (v.ident(), Literal::usize_suffixed(v.index));
        quote!(Self::#variant { .. } => #index,)
    });
    let (registry, fields, vec) = (paths::registry(span), paths::fields(span), paths::vec(span));
    let described = protocol
        .variants
        .iter()
        .map(|v| crate::describe::fields_expr(&v.original.fields));
    quote! {
        #[automatically_derived]
        impl #message for #ident {
            const PROTOCOL: &'static #protocol_info = &#protocol_info {
                name: #name,
                fingerprint: #fingerprint,
                variants: &[#(#infos),*],
                revision: #revision,
                older: &[#(#older),*],
                lock: #lock,
            };

            #[inline]
            fn variant_index(&self) -> usize {
                match self {
                    #(#arms)*
                }
            }

            fn describe(__registry: &mut #registry) -> #vec<#fields> {
                #vec::from([#(#described),*])
            }
        }
    }
}

/// Bindings `__f0, __f1, ...` for `n` fields.
pub(super) fn bindings(n: usize) -> Vec<syn::Ident> {
    (0..n).map(|i| format_ident!("__f{}", i)).collect()
}

/// Field names as serde writes them (no `r#`).
pub(super) fn field_names(fields: &[&syn::Field]) -> Vec<String> {
    use syn::ext::IdentExt;
    fields
        .iter()
        .map(|f| {
            f.ident
                .as_ref()
                .map(|i| i.unraw().to_string())
                .unwrap_or_default()
        })
        .collect()
}

/// `tokens` with every span set to `span`, groups included.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                tree = TokenTree::Group(inner);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

/// `From`, `FromSession` and `IntoReply` for every payload type.
fn payload_impls(protocol: &Protocol<'_>) -> TokenStream {
    let mut out = TokenStream::new();
    for (variant, payload) in payloads(protocol) {
        out.extend(payload_impl(protocol, variant, &payload));
    }
    out
}

/// The impls of one payload type, spanned at the type so a clash rustc
/// finds (two variants wrapping one type under two aliases) lands there.
fn payload_impl(
    protocol: &Protocol<'_>,
    variant: &Variant<'_>,
    payload: &TokenStream,
) -> TokenStream {
    let span = match variant.shape() {
        Shape::Newtype(ty) => ty.span(),
        _ => variant.ident().span(),
    };
    let (from, from_session, handler_context, rejection, into_reply, reply) = (
        paths::from(span),
        paths::from_session(span),
        paths::handler_context(span),
        paths::rejection(span),
        paths::into_reply(span),
        paths::reply(span),
    );
    let (result, option, ok, err, some) = (
        paths::result(span),
        paths::option(span),
        paths::ok(span),
        paths::err(span),
        paths::some(span),
    );
    let ident = &protocol.item.ident;
    let (vident, name) = (variant.ident(), variant.name());
    let index = Literal::usize_suffixed(variant.index);
    // The same destructuring on both sides: `Ping { nonce: __f0 }`,
    // `Pair(__f0, __f1)`, `Leave`, or the newtype's value itself.
    let (in_enum, in_payload) = match variant.shape() {
        Shape::Unit => (quote!(#ident::#vident), quote!(#vident)),
        Shape::Newtype(_) => (quote!(#ident::#vident(__f0)), quote!(__f0)),
        Shape::Tuple(fields) => {
            let binds = bindings(fields.len());
            (
                quote!(#ident::#vident(#(#binds),*)),
                quote!(#vident(#(#binds),*)),
            )
        }
        Shape::Struct(fields) => {
            let binds = bindings(fields.len());
            let members: Vec<_> = fields.iter().map(|f| &f.ident).collect();
            (
                quote!(#ident::#vident { #(#members: #binds),* }),
                quote!(#vident { #(#members: #binds),* }),
            )
        }
    };
    quote_spanned! {span=>
        #[automatically_derived]
        impl #from<#payload> for #ident {
            #[inline]
            fn from(__payload: #payload) -> Self {
                let #in_payload = __payload;
                #in_enum
            }
        }

        #[automatically_derived]
        impl #from_session<#ident> for #payload {
            const PAYLOAD_OF: #option<usize> = #some(#index);

            #[allow(unreachable_patterns)]
            fn from_session(__cx: &mut #handler_context<#ident>) -> #result<Self, #rejection> {
                match __cx.take_message()? {
                    #in_enum => #ok(#in_payload),
                    _ => #err(#rejection::PayloadMismatch(#name)),
                }
            }
        }

        // Not listed among "other types that implement `IntoReply`" when a
        // handler returns something else: every protocol's payloads would
        // crowd the message, whose note already names them.
        #[automatically_derived]
        #[diagnostic::do_not_recommend]
        impl #into_reply<#ident> for #payload {
            #[inline]
            fn into_reply(self) -> #reply<#ident> {
                #ok(#some(<#ident as #from<#payload>>::from(self)))
            }
        }
    }
}

/// `inventory::submit!` of the protocol's registration.
fn registration(protocol: &Protocol<'_>) -> TokenStream {
    let span = Span::call_site();
    let (submit, registration) = (
        paths::inventory_submit(span),
        paths::protocol_registration(span),
    );
    let (ident, builtin, here) = (&protocol.item.ident, protocol.builtin, paths::here());
    quote! {
        #submit! {
            #registration::of::<#ident>(#here, #builtin)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Diag;
    use crate::message::parse;

    pub(super) fn with_protocol<T>(item: syn::Item, f: impl FnOnce(&Protocol<'_>) -> T) -> T {
        let diag = Diag::new();
        let protocol = parse::protocol(&diag, TokenStream::new(), &item).unwrap();
        crate::message::validate::protocol(&diag, &protocol);
        diag.finish().unwrap();
        f(&protocol)
    }

    pub(super) fn example() -> syn::Item {
        syn::parse_quote! {
            #[derive(Debug, Clone, PartialEq)]
            pub enum GameMessage {
                /// docs
                #[gamewire(id = 1, direction = to_server)]
                Ping { nonce: u64 },
                Pong { nonce: u64 },
                #[gamewire(droppable)]
                Move(MoveCmd),
                #[gamewire(unhandled)]
                Leave,
                Pair(u32, Vec<String>),
            }
        }
    }

    #[test]
    fn full_expansion_is_valid_rust() {
        let out = with_protocol(example(), |p| full(p, &History::first(p)));
        let file: syn::File = syn::parse2(out.clone()).unwrap();
        let text = out.to_string();
        // the enum, four payload structs (not `Move`), one const block
        let structs: Vec<String> = file
            .items
            .iter()
            .filter_map(|i| match i {
                syn::Item::Struct(s) => Some(s.ident.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(structs, ["Ping", "Pong", "Leave", "Pair"]);
        assert!(!text.contains("gamewire (id"), "{text}");
        assert!(text.contains("serialize_struct_variant (__serializer , \"GameMessage\" , 1u32 , \"Ping\" , 1usize)"), "{text}");
        assert!(text.contains("serialize_newtype_variant (__serializer , \"GameMessage\" , 3u32 , \"Move\" , & { # [doc (hidden)] struct __Field"), "{text}");
        assert!(text.contains("PayloadMismatch (\"Pong\")"), "{text}");
        // Debug and Clone are implemented, not derived, for the enum and
        // the four payload structs
        let syn::Item::Enum(e) = &file.items[0] else {
            panic!("expected the enum first")
        };
        assert_eq!(e.attrs.len(), 1);
        assert_eq!(
            e.attrs[0].to_token_stream().to_string(),
            "# [derive (PartialEq)]"
        );
        assert_eq!(
            text.matches("impl :: core :: fmt :: Debug for").count(),
            5,
            "{text}"
        );
        assert_eq!(
            text.matches("impl :: core :: clone :: Clone for").count(),
            5,
            "{text}"
        );
        assert!(text.contains("debug_struct (__f , \"Ping\") . field (\"nonce\" , < u64 as :: gamewire :: __private :: MessageField > :: as_debug (__f0)) . finish ()"), "{text}");
        // every field type is used only through `MessageField`; payload
        // structs, which are ours, are read directly
        assert!(!text.contains("newtype_variant :: < MoveCmd >"), "{text}");
        assert!(text.contains("newtype_variant :: < Ping >"), "{text}");
        assert!(
            text.contains(
                "< MoveCmd as :: gamewire :: __private :: MessageField > :: deserialize_field (__d)"
            ),
            "{text}"
        );
    }

    #[test]
    fn payload_structs_carry_docs_derives_and_visibility() {
        let item: syn::Item = syn::parse_quote! {
            #[derive(PartialEq)]
            pub(crate) enum M {
                /// A ping.
                Ping { /// The nonce.
                    nonce: u64 },
                Pair(u32, String),
                Leave,
            }
        };
        let out = with_protocol(item, |p| full(p, &History::first(p)));
        let file: syn::File = syn::parse2(out).unwrap();
        let syn::Item::Struct(ping) = &file.items[1] else {
            panic!("expected the `Ping` struct")
        };
        let expected: syn::ItemStruct = syn::parse_quote! {
            /// A ping.
            #[doc = ""]
            #[doc = " Payload of [`M::Ping`]."]
            #[derive(PartialEq)]
            #[derive(::gamewire::__private::serde::Serialize, ::gamewire::__private::serde::Deserialize)]
            #[serde(crate = "::gamewire::__private::serde")]
            pub(crate) struct Ping {
                /// The nonce.
                #[serde(
                    serialize_with = "<u64 as ::gamewire::__private::MessageField>::serialize_field",
                    deserialize_with = "<u64 as ::gamewire::__private::MessageField>::deserialize_field"
                )]
                pub(crate) nonce: u64
            }
        };
        assert_eq!(
            ping.to_token_stream().to_string(),
            expected.to_token_stream().to_string()
        );
        let syn::Item::Struct(pair) = &file.items[2] else {
            panic!("expected the `Pair` struct")
        };
        assert_eq!(pair.fields.len(), 2);
        assert!(matches!(
            pair.fields.iter().next().unwrap().vis,
            syn::Visibility::Restricted(_)
        ));
        let syn::Item::Enum(e) = &file.items[0] else {
            panic!("expected the enum first")
        };
        assert_eq!(
            e.attrs.len(),
            1,
            "the user's derive; Debug and Clone are impls"
        );
    }

    #[test]
    fn fallback_is_valid_rust_without_serde_or_registration() {
        let item: syn::Item = syn::parse_quote! {
            #[derive(Debug, Clone, serde::Serialize)]
            pub enum E {
                #[gamewire(id = 1)]
                #[serde(rename = "x")]
                A(String),
                #[gamewire(id = 1)]
                B(String),
                C { x: Box<Self> },
            }
        };
        let diag = Diag::new();
        let protocol = parse::protocol(&diag, TokenStream::new(), &item).unwrap();
        crate::message::validate::protocol(&diag, &protocol);
        assert!(diag.finish().is_err());
        let out = fallback(&protocol);
        let _: syn::File = syn::parse2(out.clone()).unwrap();
        let text = out.to_string();
        assert!(!text.contains("inventory"), "{text}");
        assert!(!text.contains("serde (rename"), "{text}");
        assert!(!text.contains("serde :: Serialize)"), "{text}");
        assert!(text.contains("unreachable"), "{text}");
        // one `From<String>`, not two; none for `C`, which names `Self`
        assert_eq!(
            text.matches("impl :: core :: convert :: From < String >")
                .count(),
            1,
            "{text}"
        );
        assert!(!text.contains("struct C"), "{text}");
    }
}
