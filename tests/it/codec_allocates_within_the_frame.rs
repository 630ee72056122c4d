//! Decoding allocates no more than a payload's bytes can back: a length
//! written inside a payload costs nothing until its bytes are there.

use gamewire::wire::{self, Frame};
use gamewire::{ChatMessage, Message};
use gamewire_tests::alloc_probe::largest_allocation;
use serde::{Deserialize, Serialize};

use crate::support::TestMessage;

/// A bincode varint announcing 64 bytes short of 16 MiB (0xfc marker, then
/// a little-endian u32), just within bincode's own allocation limit.
const SIXTEEN_MIB: [u8; 5] = [0xfc, 0xc0, 0xff, 0xff, 0x00];

/// A user type inside a message: its fields are not `#[message]` fields.
#[derive(Debug, Serialize, Deserialize)]
struct Player {
    name: String,
    scores: Vec<u64>,
}

#[test]
fn forged_lengths_cost_nothing() {
    // App, SendChat, room 1, a text "of 16 MiB" that is not there.
    let send_chat = [&[6, 2, 1][..], &SIXTEEN_MIB, b"hi"].concat();
    // A hello whose protocol name is "16 MiB" long: before any handshake.
    let hello = [&[0, 1][..], &SIXTEEN_MIB, b"Chat"].concat();
    // App, Flood-like Blob (a `Vec<u8>`) "of 16 MiB".
    let blob_index = TestMessage::PROTOCOL.variant_by_id(5).map(|v| v.name);
    assert_eq!(blob_index, Some("Blob"), "the test's protocol changed");
    let blob = [&[6, 5][..], &SIXTEEN_MIB, &[1, 2, 3]].concat();
    // A user type's string and sequence, which serde's derive decodes.
    let player = [&SIXTEEN_MIB[..], b"ab"].concat();
    let scores = [&[1, b'a'][..], &SIXTEEN_MIB, &[7]].concat();

    /// A name, a payload, and whether decoding refuses it.
    type Case<'a> = (&'a str, &'a [u8], fn(&[u8]) -> bool);
    let cases: [Case<'_>; 5] = [
        ("SendChat", &send_chat, |p| {
            wire::decode_payload::<Frame<ChatMessage>>(p).is_err()
        }),
        ("Hello", &hello, |p| {
            wire::decode_payload::<Frame<ChatMessage>>(p).is_err()
        }),
        ("Blob", &blob, |p| {
            wire::decode_payload::<Frame<TestMessage>>(p).is_err()
        }),
        ("Player.name", &player, |p| {
            wire::decode_payload::<Player>(p).is_err()
        }),
        ("Player.scores", &scores, |p| {
            wire::decode_payload::<Player>(p).is_err()
        }),
    ];
    for (what, payload, refused) in cases {
        let (was_refused, largest) = largest_allocation(|| refused(payload));
        assert!(was_refused, "{what}: a forged length must not decode");
        assert!(
            largest <= 64 * payload.len().max(64),
            "{what}: a {}-byte payload made an allocation of {largest} bytes",
            payload.len()
        );
    }
}

#[test]
fn what_is_there_decodes_as_before() {
    let line = ChatMessage::SendChat {
        room_id: 1,
        text: "héllo".into(),
    };
    let bytes = wire::encode_frame(&Frame::App(&line)).unwrap();
    let back: Frame<ChatMessage> = wire::decode_payload(&bytes[4..]).unwrap();
    assert_eq!(back, Frame::App(line));
    let player = Player {
        name: "ann".into(),
        scores: vec![1, 300, u64::MAX],
    };
    let bytes = wire::encode_frame(&player).unwrap();
    let back: Player = wire::decode_payload(&bytes[4..]).unwrap();
    assert_eq!((back.name.as_str(), back.scores), ("ann", player.scores));
}
