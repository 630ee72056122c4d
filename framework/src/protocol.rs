//! What a `#[message]` enum is to the runtime.
//!
//! The `#[message]` attribute implements [`Message`] for the user's enum: the
//! table of its variants (name, stable wire id, direction), the protocol
//! fingerprint that the handshake compares, and the variant index that
//! dispatch uses to find a handler. Everything here is data computed at
//! compile time; nothing is registered at run time except through
//! [`inventory`].

use std::any::TypeId;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserializer, Serialize, Serializer};

use crate::describe::{Fields, Registry, TypeDef, WireShape};

/// A protocol: an enum marked `#[message]`.
///
/// Do not implement this trait by hand; `#[message]` generates the
/// implementation together with the serde impls that keep the wire ids stable.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a gamewire protocol",
    label = "not a `#[message]` enum",
    note = "mark the enum with `#[gamewire::message]`; see book/src/reference/macros.md"
)]
pub trait Message:
    Serialize + DeserializeOwned + fmt::Debug + Clone + Send + Sync + 'static
{
    /// The protocol's name, variants and fingerprint.
    const PROTOCOL: &'static ProtocolInfo;

    /// The declaration index of this value's variant in
    /// [`ProtocolInfo::variants`].
    fn variant_index(&self) -> usize;

    /// The fields of every variant, in declaration order, registering the
    /// named types they use in `registry`: what
    /// [`ProtocolSchema::of`] is made of.
    fn describe(registry: &mut Registry) -> Vec<Fields>;

    /// The static description of this value's variant.
    fn variant(&self) -> &'static VariantInfo {
        &Self::PROTOCOL.variants[self.variant_index()]
    }
}

/// Compile-time description of a protocol enum.
#[derive(Debug)]
pub struct ProtocolInfo {
    /// The enum's name, as written.
    pub name: &'static str,
    /// 64-bit FNV-1a hash of the wire meaning: the enum name and, per
    /// variant, its id, name and field types. Two builds agree on the
    /// fingerprint exactly when they agree on the bytes.
    pub fingerprint: u64,
    /// Every variant, in declaration order.
    pub variants: &'static [VariantInfo],
    /// The protocol's revision: 1, plus one for each compatible change its
    /// lock records (`#[message(lock = ...)]`).
    pub revision: u32,
    /// The earlier revisions of the lock, whose clients the server still
    /// accepts: each with the fingerprint its clients send.
    pub older: &'static [Revision],
    /// The lock file, when the protocol has one.
    pub lock: Option<LockFile>,
}

/// A protocol's lock file, as `#[message(lock = ...)]` found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockFile {
    /// Where it is.
    pub path: &'static str,
    /// Its text when the protocol was compiled.
    pub text: &'static str,
}

/// An earlier revision of a locked protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revision {
    /// The revision, from 1.
    pub revision: u32,
    /// The fingerprint its clients send in their hello.
    pub fingerprint: u64,
}

impl ProtocolInfo {
    /// The variant with wire id `id`, if any.
    pub fn variant_by_id(&self, id: u32) -> Option<&'static VariantInfo>
    where
        Self: 'static,
    {
        // Protocols are small (tens of variants); a scan beats a map here.
        self.variants.iter().find(|v| v.id == id)
    }

    /// The revision whose clients send `fingerprint`: this one, or an
    /// earlier one of the lock; `None` for any other protocol.
    pub fn revision_of(&self, fingerprint: u64) -> Option<u32> {
        if fingerprint == self.fingerprint {
            return Some(self.revision);
        }
        self.older
            .iter()
            .find(|older| older.fingerprint == fingerprint)
            .map(|older| older.revision)
    }
}

/// Compile-time description of one variant.
#[derive(Debug)]
pub struct VariantInfo {
    /// The variant's name.
    pub name: &'static str,
    /// The stable id written on the wire (`#[gamewire(id = N)]`, or the
    /// declaration index by default).
    pub id: u32,
    /// Which way the variant travels.
    pub direction: Direction,
    /// Whether a full outbound queue may drop this message instead of
    /// applying the slow-consumer policy (`#[gamewire(droppable)]`).
    pub droppable: bool,
    /// Whether the variant is meant to have no handler even though clients
    /// send it (`#[gamewire(unhandled)]`).
    pub unhandled: bool,
    /// Where the variant is declared, for the checks made before binding.
    pub location: Location,
    /// The revision that brought the variant in: the server never sends it
    /// to a client of an earlier revision.
    pub since: u32,
    /// Whether the variant is retired (`#[gamewire(retired)]`): kept so
    /// its id is never reused, answered with an error frame.
    pub retired: bool,
}

/// Which way a variant travels, declared with `#[gamewire(direction = ...)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent by clients, handled by the server (`to_server`).
    ToServer,
    /// Sent by the server to clients (`to_client`).
    ToClient,
    /// Either way (the default).
    Both,
}

impl Direction {
    /// Whether clients may send this variant to the server.
    pub fn client_sends(self) -> bool {
        matches!(self, Direction::ToServer | Direction::Both)
    }
}

/// A type that can be a field of a `#[message]` variant.
///
/// The code `#[message]` generates uses a field's type only through this
/// trait, always spanned at the field, so a field type that cannot be sent
/// is one error at that field instead of one per generated impl.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a field of a `#[message]` enum",
    label = "not `Serialize + Deserialize + Debug + Clone`",
    note = "every field type implements `serde::Serialize`, `serde::Deserialize`, `Debug` and `Clone`; derive them on your type with `#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]`, or, for a type from another crate, enable its `serde` feature; see book/src/reference/macros.md"
)]
pub trait MessageField: Sized {
    /// `Serialize::serialize`, for `#[serde(serialize_with)]`.
    ///
    /// # Errors
    ///
    /// The serializer's.
    fn serialize_field<S: Serializer>(this: &Self, serializer: S) -> Result<S::Ok, S::Error>;

    /// `Deserialize::deserialize`, for `#[serde(deserialize_with)]`.
    ///
    /// # Errors
    ///
    /// The deserializer's.
    fn deserialize_field<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;

    /// The value as something `Debug`.
    fn as_debug(this: &Self) -> &dyn fmt::Debug;

    /// `Clone::clone`.
    fn clone_field(this: &Self) -> Self;
}

// The bounds are on the impl, not on the trait: naming
// `<T as MessageField>::f` then requires `T: MessageField` alone, which
// rustc reports once, with the message above.
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned + fmt::Debug + Clone + 'static> MessageField for T {
    fn serialize_field<S: Serializer>(this: &Self, serializer: S) -> Result<S::Ok, S::Error> {
        this.serialize(serializer)
    }

    fn deserialize_field<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A `String` field (chat text, names) is read as bytes and checked
        // with SIMD; the encoding on the wire is the same. The type test is
        // resolved at compile time, per field type.
        if TypeId::of::<T>() == TypeId::of::<String>() {
            let mut text = Some(deserializer.deserialize_byte_buf(Utf8Text)?);
            let any: &mut dyn std::any::Any = &mut text;
            let text = any.downcast_mut::<Option<T>>().and_then(Option::take);
            return Ok(text.expect("T is String"));
        }
        T::deserialize(deserializer)
    }

    fn as_debug(this: &Self) -> &dyn fmt::Debug {
        this
    }

    fn clone_field(this: &Self) -> Self {
        this.clone()
    }
}

/// Reads a string from its bytes with [`crate::simd::string_from_utf8`];
/// takes a string too, from formats that hand one over.
struct Utf8Text;

impl serde::de::Visitor<'_> for Utf8Text {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a UTF-8 string")
    }

    fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<String, E> {
        crate::simd::string_from_utf8(bytes).map_err(|error| {
            E::custom(format_args!(
                "a string is not UTF-8: {}",
                error.utf8_error()
            ))
        })
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<String, E> {
        crate::simd::validate_utf8(bytes)
            .map(str::to_owned)
            .map_err(|error| E::custom(format_args!("a string is not UTF-8: {error}")))
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<String, E> {
        Ok(text.to_owned())
    }

    fn visit_string<E: serde::de::Error>(self, text: String) -> Result<String, E> {
        Ok(text)
    }
}

/// A place in the user's source, recorded by the macros for error reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// `file!()` at the macro call.
    pub file: &'static str,
    /// `line!()` at the macro call.
    pub line: u32,
    /// `column!()` at the macro call.
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// The declaration index of the variant named `name` of `M`, or `usize::MAX`.
///
/// `#[handler]` evaluates this in a `const`; an unknown name is reported by a
/// spanned pattern instead, so this stays quiet and lets that error lead.
#[doc(hidden)]
pub const fn variant_index<M: Message>(name: &str) -> usize {
    let variants = M::PROTOCOL.variants;
    let mut i = 0;
    while i < variants.len() {
        if str_eq(variants[i].name, name) {
            return i;
        }
        i += 1;
    }
    usize::MAX
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// 64-bit FNV-1a, the fingerprint hash. `#[message]` computes the same hash
/// at expansion time; this copy lets tests recompute it.
#[doc(hidden)]
pub const fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// One variant of a protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantSchema {
    /// The variant's name.
    pub name: String,
    /// Its wire id.
    pub id: u32,
    /// Which way it travels.
    pub direction: Direction,
    /// Its fields.
    pub fields: Fields,
}

/// Everything a generator needs to speak a protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolSchema {
    /// The enum's name.
    pub name: String,
    /// The fingerprint the hello carries.
    pub fingerprint: u64,
    /// The variants, in declaration order.
    pub variants: Vec<VariantSchema>,
    /// The structs and enums the fields use, by name.
    pub types: BTreeMap<String, TypeDef>,
}

impl ProtocolSchema {
    /// The description of protocol `M`.
    pub fn of<M: Message>() -> Self {
        let mut registry = Registry::default();
        let fields = M::describe(&mut registry);
        let info = M::PROTOCOL;
        let variants = info
            .variants
            .iter()
            .zip(fields)
            .map(|(variant, fields)| VariantSchema {
                name: variant.name.to_owned(),
                id: variant.id,
                direction: variant.direction,
                fields,
            })
            .collect();
        ProtocolSchema {
            name: info.name.to_owned(),
            fingerprint: info.fingerprint,
            variants,
            types: registry.into_types(),
        }
    }

    /// The Rust names of the field types that do not describe themselves,
    /// with where they are used (`Variant.field`).
    pub fn undescribed(&self) -> Vec<(String, &'static str)> {
        let mut found = Vec::new();
        let mut visit = |place: String, fields: &Fields| {
            for (i, shape) in fields.shapes().enumerate() {
                let field = match fields {
                    Fields::Named(named) => named[i].0.clone(),
                    _ => i.to_string(),
                };
                collect_undescribed(shape, &format!("{place}.{field}"), &mut found);
            }
        };
        for variant in &self.variants {
            visit(variant.name.clone(), &variant.fields);
        }
        for (name, def) in &self.types {
            match def {
                TypeDef::Struct(fields) => visit(name.clone(), fields),
                TypeDef::Enum(variants) => {
                    for variant in variants {
                        visit(format!("{name}::{}", variant.name), &variant.fields);
                    }
                }
            }
        }
        found
    }
}

fn collect_undescribed(shape: &WireShape, place: &str, found: &mut Vec<(String, &'static str)>) {
    match shape {
        WireShape::Undescribed(name) => found.push((place.to_owned(), name)),
        WireShape::Optional(inner) | WireShape::Seq(inner) => {
            collect_undescribed(inner, place, found)
        }
        WireShape::Map(key, value) => {
            collect_undescribed(key, place, found);
            collect_undescribed(value, place, found);
        }
        WireShape::Tuple(items) => {
            for item in items {
                collect_undescribed(item, place, found);
            }
        }
        _ => {}
    }
}
