//! `ProtocolSchema::of`: what `#[message]`, `#[payload]` and
//! `#[derive(Describe)]` tell a client generator, and that it matches the
//! bytes bincode writes.

use std::collections::HashMap;

use gamewire::prelude::*;
use gamewire::schema::{EnumVariant, Fields, ProtocolSchema, TypeDef, WireShape};

#[payload]
pub struct Position {
    pub x: i32,
    pub y: i32,
}

#[payload]
pub enum Weapon {
    Fists,
    Sword { damage: u16 },
    Bow(u8, Option<Position>),
}

/// Serializable, but does not describe itself.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Opaque(pub u8);

#[message]
pub enum Game {
    #[gamewire(id = 10, direction = to_server)]
    Move(Position),
    #[gamewire(direction = to_client)]
    Equipped {
        user: u32,
        weapon: Weapon,
        scores: HashMap<String, i64>,
    },
    #[gamewire(unhandled)]
    Leave,
    #[gamewire(unhandled)]
    Mystery(Vec<Opaque>, (bool, f64)),
}

fn named(name: &str) -> WireShape {
    WireShape::Named(name.to_owned())
}

#[test]
fn a_protocol_describes_its_variants_and_the_types_they_use() {
    let schema = ProtocolSchema::of::<Game>();
    assert_eq!(schema.name, "Game");
    assert_eq!(schema.fingerprint, <Game as Message>::PROTOCOL.fingerprint);
    let summary: Vec<_> = schema
        .variants
        .iter()
        .map(|v| (v.name.as_str(), v.id, v.direction))
        .collect();
    use gamewire::Direction;
    assert_eq!(
        summary,
        [
            ("Move", 10, Direction::ToServer),
            ("Equipped", 11, Direction::ToClient),
            ("Leave", 12, Direction::Both),
            ("Mystery", 13, Direction::Both),
        ]
    );
    assert_eq!(
        schema.variants[0].fields,
        Fields::Tuple(vec![named("Position")])
    );
    assert_eq!(
        schema.variants[1].fields,
        Fields::Named(vec![
            ("user".into(), WireShape::U32),
            ("weapon".into(), named("Weapon")),
            (
                "scores".into(),
                WireShape::Map(Box::new(WireShape::Text), Box::new(WireShape::I64))
            ),
        ])
    );
    assert_eq!(schema.variants[2].fields, Fields::Unit);
    assert_eq!(
        schema.types["Position"],
        TypeDef::Struct(Fields::Named(vec![
            ("x".into(), WireShape::I32),
            ("y".into(), WireShape::I32),
        ]))
    );
    assert_eq!(
        schema.types["Weapon"],
        TypeDef::Enum(vec![
            EnumVariant {
                tag: 0,
                name: "Fists".into(),
                fields: Fields::Unit
            },
            EnumVariant {
                tag: 1,
                name: "Sword".into(),
                fields: Fields::Named(vec![("damage".into(), WireShape::U16)])
            },
            EnumVariant {
                tag: 2,
                name: "Bow".into(),
                fields: Fields::Tuple(vec![
                    WireShape::U8,
                    WireShape::Optional(Box::new(named("Position")))
                ])
            },
        ])
    );
    assert_eq!(schema.types.len(), 2, "{:?}", schema.types.keys());
}

#[test]
fn a_type_that_does_not_describe_itself_is_named_not_refused() {
    let schema = ProtocolSchema::of::<Game>();
    let Fields::Tuple(fields) = &schema.variants[3].fields else {
        panic!("Mystery is a tuple variant")
    };
    // The field's whole type is named: `Vec<Opaque>` does not describe
    // itself either, since `Opaque` does not.
    assert!(
        matches!(fields[0], WireShape::Undescribed(name) if name.contains("Vec<") && name.contains("Opaque")),
        "{:?}",
        fields[0]
    );
    assert_eq!(
        fields[1],
        WireShape::Tuple(vec![WireShape::Bool, WireShape::F64])
    );
    let undescribed = schema.undescribed();
    assert_eq!(undescribed.len(), 1);
    assert_eq!(undescribed[0].0, "Mystery.0");
    assert!(undescribed[0].1.contains("Opaque"));
}

/// The described tags are the ones bincode writes: `Bow` is the third
/// variant of `Weapon`, so its tag byte is 2.
#[test]
fn described_tags_are_the_bytes_on_the_wire() {
    let message = Game::Equipped {
        user: 1,
        weapon: Weapon::Bow(3, None),
        scores: HashMap::new(),
    };
    let mut bytes = bytes::BytesMut::new();
    <gamewire::codec::Bincode as gamewire::codec::Codec>::encode(&message, &mut bytes).unwrap();
    // id 11, user 1, Bow (2), 3, None (0), an empty map (0)
    assert_eq!(&bytes[..], [11, 1, 2, 3, 0, 0]);
}
