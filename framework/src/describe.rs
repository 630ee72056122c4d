//! How values are laid out on the wire, for describing a protocol to
//! clients in other languages (`gamewire::schema`).
//!
//! A field's type describes itself through [`Describe`]: the standard
//! types do, and a type of your own does with `#[derive(gamewire::Describe)]`.
//! A field whose type does not is [`WireShape::Undescribed`], which a
//! generator reports by name.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

/// How one value is laid out on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireShape {
    /// One byte, 0 or 1.
    Bool,
    /// One byte.
    U8,
    /// A varint.
    U16,
    /// A varint.
    U32,
    /// A varint.
    U64,
    /// A varint (marker 254, then 16 bytes).
    U128,
    /// One byte, two's complement.
    I8,
    /// A zigzag varint.
    I16,
    /// A zigzag varint.
    I32,
    /// A zigzag varint.
    I64,
    /// A zigzag varint.
    I128,
    /// 4 bytes, little-endian IEEE 754.
    F32,
    /// 8 bytes, little-endian IEEE 754.
    F64,
    /// A Unicode scalar value, as its UTF-8 bytes (1 to 4).
    Char,
    /// A varint length, then that many bytes of UTF-8: a `String`. (Not
    /// called `String`: a second item of that name would make rustc spell
    /// out `std::string::String` in every error about one.)
    Text,
    /// Nothing.
    Unit,
    /// One byte, 0 for none or 1 then the value.
    Optional(Box<WireShape>),
    /// A varint count, then the elements.
    Seq(Box<WireShape>),
    /// A varint count, then key and value pairs.
    Map(Box<WireShape>, Box<WireShape>),
    /// The elements, one after the other, no count.
    Tuple(Vec<WireShape>),
    /// A struct or an enum of [`ProtocolSchema::types`](crate::schema::ProtocolSchema::types), by name.
    Named(String),
    /// A type that does not describe itself (it does not implement
    /// [`Describe`]); its Rust name.
    Undescribed(&'static str),
}

/// The fields of a variant or a struct.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fields {
    /// None: `Leave`.
    Unit,
    /// Unnamed: `Pair(u32, String)`.
    Tuple(Vec<WireShape>),
    /// Named, in order: `Move { x: i32, y: i32 }`.
    Named(Vec<(String, WireShape)>),
}

impl Fields {
    /// The fields' shapes, in order.
    pub fn shapes(&self) -> impl Iterator<Item = &WireShape> {
        let (tuple, named): (&[WireShape], &[(String, WireShape)]) = match self {
            Fields::Unit => (&[], &[]),
            Fields::Tuple(shapes) => (shapes, &[]),
            Fields::Named(fields) => (&[], fields),
        };
        tuple.iter().chain(named.iter().map(|(_, shape)| shape))
    }
}

/// One variant of an enum: its tag on the wire (a varint), its name and
/// fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumVariant {
    /// The tag written before the fields.
    pub tag: u32,
    /// The variant's name.
    pub name: String,
    /// Its fields.
    pub fields: Fields,
}

/// A named type a protocol's fields use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypeDef {
    /// A struct: its fields, one after the other.
    Struct(Fields),
    /// An enum: a varint tag, then the variant's fields.
    Enum(Vec<EnumVariant>),
}

/// The named types met while describing shapes.
///
/// A type is known by its Rust path (`std::any::type_name`) and listed
/// under its short name; a second type with the same short name (two
/// `Position`s from two modules) is listed as `Position2`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Registry {
    types: BTreeMap<String, TypeDef>,
    /// The name each type met is listed under, by Rust path. A type is
    /// here before its definition is, so that a recursive type ends.
    names: BTreeMap<&'static str, String>,
}

impl Registry {
    /// The shape `Named(..)` of the type whose Rust path is `path`, listed
    /// under `name`, describing it with `define` the first time it is met.
    pub fn named(
        &mut self,
        name: &str,
        path: &'static str,
        define: impl FnOnce(&mut Registry) -> TypeDef,
    ) -> WireShape {
        if let Some(listed) = self.names.get(path) {
            return WireShape::Named(listed.clone());
        }
        let taken = |candidate: &String| self.names.values().any(|n| n == candidate);
        let mut listed = name.to_owned();
        let mut suffix = 2;
        while taken(&listed) {
            listed = format!("{name}{suffix}");
            suffix += 1;
        }
        self.names.insert(path, listed.clone());
        let def = define(self);
        self.types.insert(listed.clone(), def);
        WireShape::Named(listed)
    }

    /// The types described so far, by the name they are listed under.
    pub fn into_types(self) -> BTreeMap<String, TypeDef> {
        self.types
    }
}

/// A type that can say how bincode lays it out.
///
/// Implemented for the standard types a protocol's fields use; derive it
/// for your own structs and enums with `#[derive(gamewire::Describe)]`.
pub trait Describe {
    /// The type's shape, registering the named types it uses.
    fn shape(registry: &mut Registry) -> WireShape;
}

macro_rules! describe_primitives {
    ($($ty:ty => $shape:ident,)*) => {$(
        impl Describe for $ty {
            fn shape(_: &mut Registry) -> WireShape {
                WireShape::$shape
            }
        }
    )*};
}

describe_primitives! {
    bool => Bool, u8 => U8, u16 => U16, u32 => U32, u64 => U64, u128 => U128,
    i8 => I8, i16 => I16, i32 => I32, i64 => I64, i128 => I128,
    f32 => F32, f64 => F64, char => Char, String => Text, () => Unit,
}

impl Describe for &str {
    fn shape(_: &mut Registry) -> WireShape {
        WireShape::Text
    }
}

impl<T: Describe + ?Sized> Describe for Box<T> {
    fn shape(registry: &mut Registry) -> WireShape {
        T::shape(registry)
    }
}

impl<T: Describe> Describe for Option<T> {
    fn shape(registry: &mut Registry) -> WireShape {
        WireShape::Optional(Box::new(T::shape(registry)))
    }
}

macro_rules! describe_seqs {
    ($($ty:ident),*) => {$(
        impl<T: Describe> Describe for $ty<T> {
            fn shape(registry: &mut Registry) -> WireShape {
                WireShape::Seq(Box::new(T::shape(registry)))
            }
        }
    )*};
}

describe_seqs!(Vec, VecDeque, BTreeSet, HashSet);

impl<T: Describe> Describe for [T] {
    fn shape(registry: &mut Registry) -> WireShape {
        WireShape::Seq(Box::new(T::shape(registry)))
    }
}

impl<T: Describe, const N: usize> Describe for [T; N] {
    fn shape(registry: &mut Registry) -> WireShape {
        let element = T::shape(registry);
        WireShape::Tuple(vec![element; N])
    }
}

impl<K: Describe, V: Describe> Describe for BTreeMap<K, V> {
    fn shape(registry: &mut Registry) -> WireShape {
        WireShape::Map(Box::new(K::shape(registry)), Box::new(V::shape(registry)))
    }
}

impl<K: Describe, V: Describe, S> Describe for HashMap<K, V, S> {
    fn shape(registry: &mut Registry) -> WireShape {
        WireShape::Map(Box::new(K::shape(registry)), Box::new(V::shape(registry)))
    }
}

macro_rules! describe_tuples {
    ($(($($name:ident),+),)*) => {$(
        impl<$($name: Describe),+> Describe for ($($name,)+) {
            fn shape(registry: &mut Registry) -> WireShape {
                WireShape::Tuple(vec![$($name::shape(registry)),+])
            }
        }
    )*};
}

describe_tuples! {
    (A), (A, B), (A, B, C), (A, B, C, D), (A, B, C, D, E), (A, B, C, D, E, F),
}

/// The shape of a field's type: [`Describe::shape`] when the type
/// implements it, else [`WireShape::Undescribed`]. `#[message]` calls it
/// through autoref, on concrete field types.
#[doc(hidden)]
#[derive(Debug)]
pub struct DescribeProbe<T: ?Sized>(std::marker::PhantomData<T>);

impl<T: ?Sized> DescribeProbe<T> {
    /// The probe of `T`.
    pub const fn new() -> Self {
        DescribeProbe(std::marker::PhantomData)
    }
}

impl<T: ?Sized> Default for DescribeProbe<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The probe's first choice: the type describes itself.
#[doc(hidden)]
pub trait ViaDescribe {
    /// The shape.
    fn probe_shape(&self, registry: &mut Registry) -> WireShape;
}

impl<T: Describe + ?Sized> ViaDescribe for DescribeProbe<T> {
    fn probe_shape(&self, registry: &mut Registry) -> WireShape {
        T::shape(registry)
    }
}

/// The probe's fallback: the type does not describe itself.
#[doc(hidden)]
pub trait ViaName {
    /// [`WireShape::Undescribed`] with the type's name.
    fn probe_shape(&self, registry: &mut Registry) -> WireShape;
}

impl<T: ?Sized> ViaName for &DescribeProbe<T> {
    fn probe_shape(&self, _: &mut Registry) -> WireShape {
        WireShape::Undescribed(std::any::type_name::<T>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Opaque;

    // The borrow is the point: it is what makes the fallback apply.
    #[allow(clippy::needless_borrow)]
    #[test]
    fn the_probe_describes_or_names() {
        let mut registry = Registry::default();
        let described = (&DescribeProbe::<Vec<Option<u64>>>::new()).probe_shape(&mut registry);
        assert_eq!(
            described,
            WireShape::Seq(Box::new(WireShape::Optional(Box::new(WireShape::U64))))
        );
        let named = (&DescribeProbe::<Opaque>::new()).probe_shape(&mut registry);
        assert!(matches!(named, WireShape::Undescribed(name) if name.ends_with("Opaque")));
    }

    #[test]
    fn two_types_of_one_name_are_listed_apart() {
        let mut registry = Registry::default();
        let unit = |_: &mut Registry| TypeDef::Struct(Fields::Unit);
        let a = registry.named("Position", "a::Position", unit);
        let b = registry.named("Position", "b::Position", unit);
        let a_again = registry.named("Position", "a::Position", unit);
        assert_eq!(a, WireShape::Named("Position".into()));
        assert_eq!(b, WireShape::Named("Position2".into()));
        assert_eq!(a_again, a);
        assert_eq!(registry.into_types().len(), 2);
    }

    #[test]
    fn a_recursive_type_ends() {
        struct Tree;
        impl Describe for Tree {
            fn shape(registry: &mut Registry) -> WireShape {
                registry.named("Tree", "tests::Tree", |registry| {
                    let children = Vec::<Tree>::shape(registry);
                    TypeDef::Struct(Fields::Named(vec![("children".into(), children)]))
                })
            }
        }
        let mut registry = Registry::default();
        assert_eq!(Tree::shape(&mut registry), WireShape::Named("Tree".into()));
        let types = registry.into_types();
        assert_eq!(
            types["Tree"],
            TypeDef::Struct(Fields::Named(vec![(
                "children".into(),
                WireShape::Seq(Box::new(WireShape::Named("Tree".into())))
            )]))
        );
    }
}
