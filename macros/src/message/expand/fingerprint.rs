//! The protocol fingerprint: a hash of everything in the enum's declaration
//! that the wire format depends on, compared by clients and servers during
//! the handshake. Field types are hashed as written: a proc macro cannot
//! see inside a type declared elsewhere (the book's macro reference says
//! what that means for users).

use std::fmt::Write as _;

use quote::ToTokens;

use super::field_names;
use crate::message::{Protocol, Shape};

/// The protocol's fingerprint: FNV-1a 64 of its [`canonical`] string. A
/// major version past 1 is part of the name (`GameMessage@2`), so clients
/// of another major are refused.
pub(crate) fn fingerprint(protocol: &Protocol<'_>) -> u64 {
    let variants = canonical_variants(protocol);
    let name = match protocol.major {
        1 => protocol.name(),
        major => format!("{}@{major}", protocol.name()),
    };
    fnv1a64(canonical(&name, &variants).as_bytes())
}

/// The variants as the fingerprint (and the lock) see them.
pub(crate) fn canonical_variants(protocol: &Protocol<'_>) -> Vec<CanonicalVariant> {
    protocol
        .variants
        .iter()
        .map(|v| CanonicalVariant {
            id: v.id,
            name: v.name(),
            shape: match v.shape() {
                Shape::Unit => CanonicalShape::Unit,
                Shape::Newtype(ty) => CanonicalShape::Tuple(vec![type_string(ty)]),
                Shape::Tuple(fields) => {
                    CanonicalShape::Tuple(fields.iter().map(|f| type_string(&f.ty)).collect())
                }
                Shape::Struct(fields) => CanonicalShape::Struct(
                    field_names(&fields)
                        .into_iter()
                        .zip(fields.iter().map(|f| type_string(&f.ty)))
                        .collect(),
                ),
            },
        })
        .collect()
}

/// A type as the fingerprint sees it: its tokens without whitespace.
fn type_string(ty: &syn::Type) -> String {
    ty.to_token_stream()
        .to_string()
        .split_whitespace()
        .collect()
}

/// A variant as the fingerprint sees it.
pub(crate) struct CanonicalVariant {
    /// The wire id.
    pub(crate) id: u32,
    /// The name.
    pub(crate) name: String,
    /// The fields.
    pub(crate) shape: CanonicalShape,
}

/// The fields of a [`CanonicalVariant`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CanonicalShape {
    /// No fields.
    Unit,
    /// Tuple or newtype: the field types.
    Tuple(Vec<String>),
    /// Named fields: `(name, type)`.
    Struct(Vec<(String, String)>),
}

/// The string the fingerprint hashes: the enum name, then per variant in
/// id order `;{id} {Name}` and its fields as `{f:T,g:U}` or `(T,U)`.
///
/// Everything the bytes on the wire depend on is in it (names matter for
/// self-describing formats); directions, flags, docs and declaration order
/// are not.
pub(crate) fn canonical(enum_name: &str, variants: &[CanonicalVariant]) -> String {
    let mut sorted: Vec<&CanonicalVariant> = variants.iter().collect();
    sorted.sort_by_key(|v| v.id);
    let mut out = enum_name.to_owned();
    for variant in sorted {
        let _ = write!(out, ";{} {}", variant.id, variant.name);
        match &variant.shape {
            CanonicalShape::Unit => {}
            CanonicalShape::Tuple(types) => {
                let _ = write!(out, "({})", types.join(","));
            }
            CanonicalShape::Struct(fields) => {
                let fields: Vec<String> = fields.iter().map(|(f, t)| format!("{f}:{t}")).collect();
                let _ = write!(out, "{{{}}}", fields.join(","));
            }
        }
    }
    out
}

impl CanonicalShape {
    /// The fields as the canonical string writes them: `{f:T,g:U}`,
    /// `(T,U)`, or nothing.
    pub(crate) fn written(&self) -> String {
        match self {
            CanonicalShape::Unit => String::new(),
            CanonicalShape::Tuple(types) => format!("({})", types.join(",")),
            CanonicalShape::Struct(fields) => {
                let fields: Vec<String> = fields.iter().map(|(f, t)| format!("{f}:{t}")).collect();
                format!("{{{}}}", fields.join(","))
            }
        }
    }
}

/// 64-bit FNV-1a.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::expand::tests::{example, with_protocol};

    fn fp(item: syn::Item) -> u64 {
        with_protocol(item, fingerprint)
    }

    #[test]
    fn canonical_string() {
        let variants = vec![
            CanonicalVariant {
                id: 2,
                name: "B".into(),
                shape: CanonicalShape::Tuple(vec!["u8".into(), "Vec<u8>".into()]),
            },
            CanonicalVariant {
                id: 0,
                name: "A".into(),
                shape: CanonicalShape::Struct(vec![("x".into(), "u32".into())]),
            },
            CanonicalVariant {
                id: 1,
                name: "C".into(),
                shape: CanonicalShape::Unit,
            },
        ];
        assert_eq!(
            canonical("E", &variants),
            "E;0 A{x:u32};1 C;2 B(u8,Vec<u8>)"
        );
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn fingerprint_tracks_the_wire_meaning() {
        let base = fp(example());
        let changed: Vec<syn::Item> = vec![
            // a variant added
            syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 1)] Ping { nonce: u64 }, Pong { nonce: u64 }, Move(MoveCmd), Leave, Pair(u32, Vec<String>), Extra } },
            // a variant removed
            syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 1)] Ping { nonce: u64 }, Pong { nonce: u64 }, Move(MoveCmd), Leave } },
            // a variant renamed
            syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 1)] Ping { nonce: u64 }, Pong2 { nonce: u64 }, Move(MoveCmd), Leave, Pair(u32, Vec<String>) } },
            // a field retyped
            syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 1)] Ping { nonce: u32 }, Pong { nonce: u64 }, Move(MoveCmd), Leave, Pair(u32, Vec<String>) } },
            // a newtype retyped
            syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 1)] Ping { nonce: u64 }, Pong { nonce: u64 }, Move(MoveCmd2), Leave, Pair(u32, Vec<String>) } },
            // an id changed
            syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 2)] Ping { nonce: u64 }, Pong { nonce: u64 }, Move(MoveCmd), Leave, Pair(u32, Vec<String>) } },
            // a field renamed
            syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 1)] Ping { once: u64 }, Pong { nonce: u64 }, Move(MoveCmd), Leave, Pair(u32, Vec<String>) } },
            // the enum renamed
            syn::parse_quote! { pub enum GameMsg { #[gamewire(id = 1)] Ping { nonce: u64 }, Pong { nonce: u64 }, Move(MoveCmd), Leave, Pair(u32, Vec<String>) } },
        ];
        for item in changed {
            let text = item.to_token_stream().to_string();
            assert_ne!(fp(item), base, "{text}");
        }
        let same: Vec<syn::Item> = vec![
            // directions, flags and docs changed; derives dropped
            syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 1)] Ping { nonce: u64 }, /// new docs
            #[gamewire(direction = to_client)] Pong { nonce: u64 }, Move(MoveCmd), Leave, #[gamewire(droppable, unhandled)] Pair(u32, Vec<String>) } },
            // reordered with explicit ids, whitespace in types changed
            syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 5)] Pair(u32, Vec < String >), #[gamewire(id = 3)] Move(MoveCmd), #[gamewire(id = 1)] Ping { nonce: u64 }, #[gamewire(id = 4)] Leave, #[gamewire(id = 2)] Pong { nonce: u64 } } },
        ];
        for item in same {
            let text = item.to_token_stream().to_string();
            assert_eq!(fp(item), base, "{text}");
        }
    }

    /// Each item differs from [`example`] in one way that changes the bytes
    /// (for bincode, for a self-describing format, or both).
    #[test]
    fn fingerprint_changes_with_every_change_of_the_bytes() {
        let base = fp(example());
        let changed: Vec<(&str, syn::Item)> = vec![
            (
                "a variant inserted before others, shifting their implicit ids",
                syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 1)] Ping { nonce: u64 }, Extra, Pong { nonce: u64 }, Move(MoveCmd), Leave, Pair(u32, Vec<String>) } },
            ),
            (
                "two variants without explicit ids swapped",
                syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 1)] Ping { nonce: u64 }, Move(MoveCmd), Pong { nonce: u64 }, Leave, Pair(u32, Vec<String>) } },
            ),
            (
                "a tuple field retyped",
                syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 1)] Ping { nonce: u64 }, Pong { nonce: u64 }, Move(MoveCmd), Leave, Pair(u64, Vec<String>) } },
            ),
            (
                "a generic argument retyped",
                syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 1)] Ping { nonce: u64 }, Pong { nonce: u64 }, Move(MoveCmd), Leave, Pair(u32, Vec<u8>) } },
            ),
            (
                "a tuple field added",
                syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 1)] Ping { nonce: u64 }, Pong { nonce: u64 }, Move(MoveCmd), Leave, Pair(u32, Vec<String>, bool) } },
            ),
            (
                "a named field added",
                syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 1)] Ping { nonce: u64, sent_at: u64 }, Pong { nonce: u64 }, Move(MoveCmd), Leave, Pair(u32, Vec<String>) } },
            ),
            (
                "a unit variant made an empty struct variant",
                syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 1)] Ping { nonce: u64 }, Pong { nonce: u64 }, Move(MoveCmd), Leave {}, Pair(u32, Vec<String>) } },
            ),
            (
                "a newtype variant made a struct variant",
                syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 1)] Ping { nonce: u64 }, Pong { nonce: u64 }, Move { cmd: MoveCmd }, Leave, Pair(u32, Vec<String>) } },
            ),
            (
                "ids of two variants swapped",
                syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 2)] Ping { nonce: u64 }, #[gamewire(id = 1)] Pong { nonce: u64 }, #[gamewire(id = 3)] Move(MoveCmd), Leave, Pair(u32, Vec<String>) } },
            ),
        ];
        for (what, item) in changed {
            assert_ne!(fp(item), base, "{what}");
        }
        let two_fields = |item: syn::Item| fp(item);
        assert_ne!(
            two_fields(syn::parse_quote! { enum E { A { x: u8, y: u16 } } }),
            two_fields(syn::parse_quote! { enum E { A { y: u16, x: u8 } } }),
            "named fields reordered"
        );
        assert_ne!(
            two_fields(syn::parse_quote! { enum E { A(u8, u16) } }),
            two_fields(syn::parse_quote! { enum E { A(u16, u8) } }),
            "tuple fields reordered"
        );
    }

    /// Each item differs from [`example`] in a way that leaves every byte,
    /// in every format, as it was.
    #[test]
    fn fingerprint_ignores_what_the_bytes_do_not_depend_on() {
        let base = fp(example());
        let same: Vec<(&str, syn::Item)> = vec![
            (
                "an implicit id written out",
                syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 1)] Ping { nonce: u64 }, #[gamewire(id = 2)] Pong { nonce: u64 }, Move(MoveCmd), Leave, Pair(u32, Vec<String>) } },
            ),
            (
                "derives, visibility and other attributes changed",
                syn::parse_quote! { #[derive(Eq, Hash)] #[allow(clippy::large_enum_variant)] pub(crate) enum GameMessage { #[gamewire(id = 1)] Ping { nonce: u64 }, Pong { nonce: u64 }, Move(MoveCmd), Leave, Pair(u32, Vec<String>) } },
            ),
            (
                "field docs added, a field name written raw",
                syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 1)] Ping { /// The nonce.
                r#nonce: u64 }, Pong { nonce: u64 }, Move(MoveCmd), Leave, Pair(u32, Vec<String>) } },
            ),
            (
                "a variant name written raw",
                syn::parse_quote! { pub enum GameMessage { #[gamewire(id = 1)] r#Ping { nonce: u64 }, Pong { nonce: u64 }, Move(MoveCmd), Leave, Pair(u32, Vec<String>) } },
            ),
        ];
        for (what, item) in same {
            assert_eq!(fp(item), base, "{what}");
        }
    }

    /// A proc macro sees tokens, not resolved types: two spellings of one
    /// type are two fingerprints. The handshake then refuses a client whose
    /// bytes would have been fine, never the other way round.
    #[test]
    fn types_are_compared_as_written() {
        let short = fp(syn::parse_quote! { enum E { A(String) } });
        let long = fp(syn::parse_quote! { enum E { A(::std::string::String) } });
        assert_ne!(short, long);
    }
}
