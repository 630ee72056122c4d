//! What `#[message]` puts on the wire: explicit variant ids, and the
//! documented fingerprint of the built-in chat.

use gamewire::prelude::*;
use gamewire::wire::{self, Frame, LENGTH_PREFIX_LEN};
use gamewire::{ChatMessage, Message};

#[message]
#[derive(Debug, Clone, PartialEq)]
pub enum Versioned {
    #[gamewire(id = 40, direction = to_server)]
    Move { x: i32 },
    /// Takes the next id after 40.
    #[gamewire(direction = to_server)]
    Jump,
    #[gamewire(id = 7, direction = to_client)]
    Moved { x: i32 },
}

#[handler(Versioned::Move)]
async fn on_move(m: Move) -> Moved {
    Moved { x: m.x }
}

#[handler(Versioned::Jump)]
async fn on_jump(_: Jump) {}

/// The envelope's application frame is variant 6; then the message's id.
fn wire_id(message: &Versioned) -> u8 {
    let bytes = wire::encode_frame(&Frame::App(message.clone())).unwrap();
    assert_eq!(bytes[LENGTH_PREFIX_LEN], 6, "an application frame");
    bytes[LENGTH_PREFIX_LEN + 1]
}

#[test]
fn explicit_ids_are_the_ids_on_the_wire() {
    assert_eq!(wire_id(&Versioned::Move { x: 1 }), 40);
    assert_eq!(wire_id(&Versioned::Jump), 41);
    assert_eq!(wire_id(&Versioned::Moved { x: 1 }), 7);
    let ids: Vec<u32> = Versioned::PROTOCOL.variants.iter().map(|v| v.id).collect();
    assert_eq!(ids, [40, 41, 7]);
    for message in [
        Versioned::Move { x: -3 },
        Versioned::Jump,
        Versioned::Moved { x: 9 },
    ] {
        let bytes = wire::encode_frame(&Frame::App(message.clone())).unwrap();
        let back = wire::decode_payload::<Frame<Versioned>>(&bytes[LENGTH_PREFIX_LEN..]);
        assert_eq!(back.unwrap(), Frame::App(message));
    }
    // An id no variant has is refused.
    let unknown = [6, 8];
    assert!(wire::decode_payload::<Frame<Versioned>>(&unknown).is_err());
}

/// The wire-protocol chapter documents this fingerprint; clients in other
/// languages hard-code it. It changes only with the chapter.
#[test]
fn the_chat_fingerprint_is_the_documented_one() {
    assert_eq!(ChatMessage::PROTOCOL.fingerprint, 0x0cb3_a068_034b_d912);
    assert_eq!(ChatMessage::PROTOCOL.name, "ChatMessage");
}
