//! Validate stage of `#[message]`: rules about the enum as a whole and
//! across variants. Every violation is recorded; nothing stops early.

use std::collections::HashMap;

use quote::ToTokens;

use super::{IdSource, Protocol, Shape, Variant};
use crate::diag::{Diag, find_ident, pretty};
use crate::kw;

/// Checks `protocol`, recording every violation in `diag`.
pub(crate) fn protocol(diag: &Diag, protocol: &Protocol<'_>) {
    let item = protocol.item;
    if !item.generics.params.is_empty() {
        diag.error(
            &item.generics,
            "#[message] enums cannot be generic; use concrete types in the variants",
        );
    } else if let Some(where_clause) = &item.generics.where_clause {
        diag.error(
            where_clause,
            "#[message] enums cannot have a `where` clause",
        );
    }
    if item.variants.is_empty() {
        diag.error(&item.ident, "a #[message] enum needs at least one variant");
    }
    enum_attrs(diag, protocol);
    for variant in &protocol.variants {
        variant_item(diag, protocol, variant);
    }
    unique_ids(diag, protocol);
    unique_payloads(diag, protocol);
}

/// The enum's own attributes: no `#[serde]`, no `#[gamewire]`, no derived
/// serde traits.
fn enum_attrs(diag: &Diag, protocol: &Protocol<'_>) {
    for attr in &protocol.item.attrs {
        if attr.path().is_ident(kw::SERDE) {
            diag.error(
                attr.path(),
                "#[serde] attributes are not supported on a #[message] enum; #[message] writes the serde impls and fixes the wire format",
            );
        } else if attr.path().is_ident(kw::GAMEWIRE) {
            diag.error(
                attr.path(),
                "#[gamewire(...)] goes on a variant, not on the enum",
            );
        }
    }
    for path in &protocol.derives {
        let Some(last) = path.segments.last() else {
            continue;
        };
        if last.ident == kw::SERIALIZE || last.ident == kw::DESERIALIZE {
            diag.error(
                path,
                format_args!(
                    "remove `{}` from the derive; #[message] implements it with stable wire ids",
                    last.ident
                ),
            );
        }
    }
}

/// One variant: no discriminant, no `#[serde]`, no `Self` in field types,
/// no `#[gamewire]` on fields, and a payload struct name that is free.
fn variant_item(diag: &Diag, protocol: &Protocol<'_>, variant: &Variant<'_>) {
    let original = variant.original;
    if let Some((_, discriminant)) = &original.discriminant {
        let hint = match discriminant {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(literal),
                ..
            }) => format!("`#[gamewire(id = {})]`", literal.base10_digits()),
            _ => "`#[gamewire(id = N)]`".to_owned(),
        };
        diag.error(
            discriminant,
            format_args!(
                "explicit discriminants are not supported; write {hint} on the variant instead"
            ),
        );
    }
    let cfgs = original
        .attrs
        .iter()
        .chain(original.fields.iter().flat_map(|f| &f.attrs));
    for attr in cfgs.filter(|attr| attr.path().is_ident(kw::CFG)) {
        diag.error(
            attr.path(),
            "#[cfg] is not supported inside a #[message] enum; the wire format must not depend on build flags",
        );
    }
    for attr in &original.attrs {
        if attr.path().is_ident(kw::SERDE) {
            diag.error(
                attr.path(),
                "#[serde] attributes are not supported on #[message] variants; #[message] writes the serde impls and fixes the wire format",
            );
        }
    }
    for field in &original.fields {
        for attr in &field.attrs {
            if attr.path().is_ident(kw::SERDE) {
                diag.error(
                    attr.path(),
                    "#[serde] attributes are not supported on #[message] fields; #[message] writes the serde impls and fixes the wire format",
                );
            } else if attr.path().is_ident(kw::GAMEWIRE) {
                diag.error(
                    attr.path(),
                    "#[gamewire(...)] goes on a variant, not on a field",
                );
            }
        }
        if let Some(span) = find_ident(field.ty.to_token_stream(), "Self") {
            diag.error_at(
                span,
                format_args!(
                    "`Self` cannot be used in #[message] variants; name the enum `{}` instead",
                    protocol.name()
                ),
            );
        }
    }
    if !matches!(variant.shape(), Shape::Newtype(_)) && variant.ident() == &protocol.item.ident {
        diag.error(
            variant.ident(),
            format_args!(
                "variant `{}` has the enum's name, so its payload struct would clash with the enum; rename the variant",
                variant.name()
            ),
        );
    }
}

/// No two variants share a wire id, and implicit ids do not overflow.
fn unique_ids(diag: &Diag, protocol: &Protocol<'_>) {
    let mut used: HashMap<u32, &Variant<'_>> = HashMap::new();
    for variant in &protocol.variants {
        match &variant.id_source {
            IdSource::Invalid => continue,
            IdSource::Overflow => {
                diag.error(
                    variant.ident(),
                    format_args!(
                        "variant `{}` would get id `4294967296` (the previous id plus one), which does not fit in a `u32`; give it an explicit `id`",
                        variant.name()
                    ),
                );
                continue;
            }
            IdSource::Explicit(_) | IdSource::Implicit => {}
        }
        let Some(first) = used.get(&variant.id) else {
            used.insert(variant.id, variant);
            continue;
        };
        match &variant.id_source {
            IdSource::Explicit(literal) => diag.error(
                literal,
                format_args!("variant id `{}` is already used by `{}`", variant.id, first.name()),
            ),
            _ => diag.error(
                variant.ident(),
                format_args!(
                    "variant `{}` gets id `{}` (the previous id plus one), which is already used by `{}`; give it an explicit `id`",
                    variant.name(),
                    variant.id,
                    first.name()
                ),
            ),
        }
    }
}

/// No two variants have the same payload type: two newtype variants
/// wrapping one type, or a newtype wrapping a generated payload struct.
fn unique_payloads(diag: &Diag, protocol: &Protocol<'_>) {
    let mut owners: HashMap<String, String> = HashMap::new();
    for variant in &protocol.variants {
        let (key, shown, blame) = match variant.shape() {
            Shape::Newtype(ty) => (payload_key(ty), pretty(ty), ty.to_token_stream()),
            _ => (
                variant.name(),
                variant.name(),
                variant.ident().to_token_stream(),
            ),
        };
        match owners.get(&key) {
            Some(first) => diag.error(
                blame,
                format_args!(
                    "`{shown}` is already the payload of `{first}`; give each variant its own type or use a struct variant"
                ),
            ),
            None => {
                owners.insert(key, variant.name());
            }
        }
    }
}

/// The identity of a payload type: its tokens without whitespace.
pub(crate) fn payload_key(ty: &impl ToTokens) -> String {
    let text = ty.to_token_stream().to_string();
    let key: String = text.split_whitespace().collect();
    key.strip_prefix("r#").map(str::to_owned).unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;

    use super::*;
    use crate::message::parse;

    fn errors(item: syn::Item) -> Vec<String> {
        let diag = Diag::new();
        if let Some(p) = parse::protocol(&diag, TokenStream::new(), &item) {
            protocol(&diag, &p);
        }
        match diag.finish() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn valid_enum_passes() {
        let item = syn::parse_quote! {
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
                Pair(u32, String),
            }
        };
        assert_eq!(errors(item), Vec::<String>::new());
    }

    #[test]
    fn duplicate_ids_blame_the_second() {
        let item = syn::parse_quote! {
            enum E {
                #[gamewire(id = 7)]
                Move(u8),
                #[gamewire(id = 7)]
                Jump,
                #[gamewire(id = 6)]
                Run,
                Walk,
            }
        };
        assert_eq!(
            errors(item),
            [
                "variant id `7` is already used by `Move`",
                "variant `Walk` gets id `7` (the previous id plus one), which is already used by `Move`; give it an explicit `id`",
            ]
        );
    }

    #[test]
    fn implicit_id_overflow() {
        let item = syn::parse_quote! {
            enum E {
                #[gamewire(id = 4294967295)]
                Last,
                TooFar,
            }
        };
        assert_eq!(
            errors(item),
            [
                "variant `TooFar` would get id `4294967296` (the previous id plus one), which does not fit in a `u32`; give it an explicit `id`"
            ]
        );
    }

    #[test]
    fn shared_payload_types() {
        let item = syn::parse_quote! {
            enum E {
                A(String),
                B(::std::vec::Vec<u8>),
                C(String),
                D { x: u8 },
                E2(D),
            }
        };
        assert_eq!(
            errors(item),
            [
                "`String` is already the payload of `A`; give each variant its own type or use a struct variant",
                "`D` is already the payload of `D`; give each variant its own type or use a struct variant",
            ]
        );
    }

    #[test]
    fn item_shape_errors() {
        let item = syn::parse_quote! {
            #[derive(Debug, serde::Serialize)]
            #[serde(rename_all = "snake_case")]
            enum E<T> {
                #[cfg(test)]
                A = 3,
                #[serde(rename = "b")]
                B { #[serde(default)] x: T, #[gamewire(id = 1)] y: Box<Self> },
                E { z: u8 },
            }
        };
        assert_eq!(
            errors(item),
            [
                "#[message] enums cannot be generic; use concrete types in the variants",
                "#[serde] attributes are not supported on a #[message] enum; #[message] writes the serde impls and fixes the wire format",
                "remove `Serialize` from the derive; #[message] implements it with stable wire ids",
                "explicit discriminants are not supported; write `#[gamewire(id = 3)]` on the variant instead",
                "#[cfg] is not supported inside a #[message] enum; the wire format must not depend on build flags",
                "#[serde] attributes are not supported on #[message] variants; #[message] writes the serde impls and fixes the wire format",
                "#[serde] attributes are not supported on #[message] fields; #[message] writes the serde impls and fixes the wire format",
                "#[gamewire(...)] goes on a variant, not on a field",
                "`Self` cannot be used in #[message] variants; name the enum `E` instead",
                "variant `E` has the enum's name, so its payload struct would clash with the enum; rename the variant",
            ]
        );
    }

    #[test]
    fn empty_enum() {
        assert_eq!(
            errors(syn::parse_quote!(
                enum E {}
            )),
            ["a #[message] enum needs at least one variant"]
        );
    }
}
