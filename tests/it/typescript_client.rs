//! The generated TypeScript client (`clients/typescript/src/chat.ts`): it is
//! what the generator writes today, it compiles with the pinned `tsc`, it
//! talks to a live server over WebSocket (`node --test`), and every type of
//! the wire chapter's encoding table encodes to the bytes Rust writes.
//!
//! Needs Node.js and `npm ci` in `clients/typescript`; on a machine without
//! them these tests say they were skipped, and under CI they fail.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use bytes::BytesMut;
use gamewire::codec::{Bincode, Codec};
use gamewire::prelude::*;
use gamewire::schema::ProtocolSchema;
use gamewire::{ChatMessage, TcpServerConfig};

use gamewire_tests::node::{Node, repo, scratch};

use crate::support::*;

/// Where the generated chat client is committed, as the book names it.
const CHAT_MODULE: &str = "clients/typescript/src/chat.ts";

/// The chat module compiled, as the chat example's demo page includes it.
const DEMO_SCRIPT: &str = "examples/chat/web/chat.js";

#[test]
fn the_committed_chat_client_is_what_the_generator_writes() {
    let generated = gamewire_codegen::typescript(&ProtocolSchema::of::<ChatMessage>()).unwrap();
    let committed = std::fs::read_to_string(repo().join(CHAT_MODULE)).unwrap();
    assert!(
        generated == committed,
        "{CHAT_MODULE} is stale; regenerate it with\n  \
         cargo run -p gamewire-codegen -- typescript ChatMessage --out {CHAT_MODULE}\n\
         and rebuild the demo page's script with\n  \
         (cd clients/typescript && npm ci && npm run build:demo)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_client_talks_to_a_live_server() {
    let Some(node) = Node::find() else { return };
    let out = scratch(Path::new(env!("CARGO_TARGET_TMPDIR")), "typescript-chat");
    node.tsc(&[], &out).await;
    let compiled = std::fs::read_to_string(out.join("chat.js")).unwrap();
    let demo = std::fs::read_to_string(repo().join(DEMO_SCRIPT)).unwrap();
    assert!(
        compiled == demo,
        "{DEMO_SCRIPT} is not the compiled {CHAT_MODULE}; rebuild it with\n  \
         (cd clients/typescript && npm run build:demo)"
    );

    let burst = 64;
    let service = chat_server(TcpServerConfig {
        ws_bind_address: Some("127.0.0.1:0".into()),
        message_rate: 20,
        message_burst: burst,
        heartbeat_interval: Duration::from_secs(10),
        ..test_config()
    });
    start(&service).await;
    eventually("the WebSocket listener", || {
        service.local_ws_addr().is_some()
    })
    .await;
    let url = format!("ws://{}/", service.local_ws_addr().unwrap());
    node.run(
        &["--test", "--test-reporter=spec", "test/chat.test.mjs"],
        &[
            ("GAMEWIRE_WS_URL", url),
            ("GAMEWIRE_CLIENT", out.join("chat.js").display().to_string()),
            ("GAMEWIRE_MESSAGE_BURST", burst.to_string()),
        ],
    )
    .await;
}

#[payload]
pub struct Point {
    pub x: i32,
    pub y: i32,
}

#[payload]
pub struct Meters(pub f32);

#[payload]
pub enum Shape {
    Empty,
    Circle { radius: u16 },
    Segment(Point, Point),
}

/// One variant per row of the wire chapter's encoding table, and the types
/// a protocol may use beyond it.
#[message]
pub enum WireTable {
    U8(u8),
    Bool(bool),
    U16(u16),
    U32(u32),
    U64(u64),
    U128(u128),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    I128(i128),
    F32(f32),
    F64(f64),
    Char(char),
    Text(String),
    Bytes(Vec<u8>),
    List(Vec<u32>),
    /// A named field: `Option<T>` is a reply type of its own.
    Maybe {
        value: Option<u32>,
    },
    Table(HashMap<String, u32>),
    Sorted(BTreeMap<u16, bool>),
    Struct(Point),
    Newtype(Meters),
    Tuple((u8, String)),
    Pair(u8, i64),
    Named {
        a: bool,
        b: Vec<Option<Shape>>,
    },
    Enum(Shape),
    Unit,
    #[gamewire(id = 300)]
    FarAway {
        value: u8,
    },
}

/// The vectors: a name, the value in Rust, the same value in JavaScript.
fn vectors() -> Vec<(String, WireTable, String)> {
    use WireTable::*;
    let mut cases: Vec<(String, WireTable, String)> = Vec::new();
    let mut case = |name: &str, value: WireTable, js: &str| {
        cases.push((name.to_owned(), value, js.to_owned()))
    };
    let one = |variant: &str, js: &str| format!("{{ type: \"{variant}\", value: {js} }}");
    for v in [0u8, 7, 250, 251, 255] {
        case(&format!("u8 {v}"), U8(v), &one("U8", &v.to_string()));
    }
    for v in [false, true] {
        case(&format!("bool {v}"), Bool(v), &one("Bool", &v.to_string()));
    }
    for v in [0u16, 250, 251, 300, u16::MAX] {
        case(&format!("u16 {v}"), U16(v), &one("U16", &v.to_string()));
    }
    for v in [7u32, 250, 251, 300, 65_535, 65_536, u32::MAX] {
        case(&format!("u32 {v}"), U32(v), &one("U32", &v.to_string()));
    }
    for v in [0u64, 250, 65_536, u64::from(u32::MAX) + 1, u64::MAX] {
        case(&format!("u64 {v}"), U64(v), &one("U64", &format!("{v}n")));
    }
    for v in [0u128, u128::from(u64::MAX) + 1, u128::MAX] {
        case(
            &format!("u128 {v}"),
            U128(v),
            &one("U128", &format!("{v}n")),
        );
    }
    for v in [0i8, -1, i8::MIN, i8::MAX] {
        case(&format!("i8 {v}"), I8(v), &one("I8", &v.to_string()));
    }
    for v in [0i16, -1, 1, -2, i16::MIN, i16::MAX] {
        case(&format!("i16 {v}"), I16(v), &one("I16", &v.to_string()));
    }
    for v in [0i32, -1, 1, -2, -126, 125, i32::MIN, i32::MAX] {
        case(&format!("i32 {v}"), I32(v), &one("I32", &v.to_string()));
    }
    for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
        case(&format!("i64 {v}"), I64(v), &one("I64", &format!("{v}n")));
    }
    for v in [-1i128, i128::MIN, i128::MAX] {
        case(
            &format!("i128 {v}"),
            I128(v),
            &one("I128", &format!("{v}n")),
        );
    }
    for v in [1.5f32, -2.25, f32::MAX] {
        // The f64 the f32 is, written out: JavaScript numbers are f64.
        case(
            &format!("f32 {v}"),
            F32(v),
            &one("F32", &format!("{:e}", f64::from(v))),
        );
    }
    for v in [0.1f64, -1e300, f64::MIN_POSITIVE] {
        case(&format!("f64 {v}"), F64(v), &one("F64", &format!("{v:e}")));
    }
    for v in ['a', 'é', '✓', '🦀'] {
        case(
            &format!("char {v}"),
            Char(v),
            &one("Char", &format!("\"{v}\"")),
        );
    }
    let long = "x".repeat(300);
    for v in ["", "hi", "héllo ✓", long.as_str()] {
        case(
            &format!("String of {} bytes", v.len()),
            Text(v.into()),
            &one("Text", &format!("\"{v}\"")),
        );
    }
    case(
        "Vec<u8>",
        Bytes(vec![1, 2, 255]),
        &one("Bytes", "Uint8Array.of(1, 2, 255)"),
    );
    case("Vec<u32> empty", List(vec![]), &one("List", "[]"));
    case("Vec<u32>", List(vec![1, 300]), &one("List", "[1, 300]"));
    case("Option none", Maybe { value: None }, &one("Maybe", "null"));
    case(
        "Option some",
        Maybe { value: Some(300) },
        &one("Maybe", "300"),
    );
    case(
        "HashMap",
        Table(HashMap::from([("hp".to_owned(), 100)])),
        &one("Table", "new Map([[\"hp\", 100]])"),
    );
    case(
        "BTreeMap",
        Sorted(BTreeMap::from([(1, true), (300, false)])),
        &one("Sorted", "new Map([[1, true], [300, false]])"),
    );
    case(
        "struct",
        Struct(Point { x: -1, y: 300 }),
        &one("Struct", "{ x: -1, y: 300 }"),
    );
    case(
        "newtype struct",
        Newtype(Meters(1.5)),
        &one("Newtype", "1.5"),
    );
    case(
        "tuple",
        Tuple((7, "hi".into())),
        &one("Tuple", "[7, \"hi\"]"),
    );
    case(
        "tuple variant",
        Pair(1, -2),
        "{ type: \"Pair\", values: [1, -2n] }",
    );
    case(
        "enum",
        Named {
            a: true,
            b: vec![
                None,
                Some(Shape::Empty),
                Some(Shape::Circle { radius: 300 }),
                Some(Shape::Segment(Point { x: 1, y: -1 }, Point { x: 0, y: 0 })),
            ],
        },
        "{ type: \"Named\", a: true, b: [null, { type: \"Empty\" }, { type: \"Circle\", radius: 300 }, \
         { type: \"Segment\", values: [{ x: 1, y: -1 }, { x: 0, y: 0 }] }] }",
    );
    case(
        "enum in a newtype variant",
        Enum(Shape::Empty),
        &one("Enum", "{ type: \"Empty\" }"),
    );
    case("unit variant", Unit, "{ type: \"Unit\" }");
    case("variant id 300", FarAway { value: 1 }, &one("FarAway", "1"));
    cases
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_vectors_hold_the_chapter_s_examples() {
    // `7u32` is `07`; `300u32` is `fb 2c 01`; `"hi"` is `02 68 69`;
    // `-1i32` is `01`: after the variant's id byte.
    let encoded: HashMap<String, String> = vectors()
        .into_iter()
        .map(|(name, value, _)| {
            let mut out = BytesMut::new();
            Bincode::encode(&value, &mut out).unwrap();
            (name, hex(&out))
        })
        .collect();
    assert_eq!(encoded["u32 7"], "03 07");
    assert_eq!(encoded["u32 300"], "03 fb 2c 01");
    assert_eq!(encoded["String of 2 bytes"], "0e 02 68 69");
    assert_eq!(encoded["i32 -1"], "08 01");
    assert_eq!(encoded["variant id 300"], "fb 2c 01 01");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_of_the_encoding_table_encodes_as_rust_does() {
    let Some(node) = Node::find() else { return };
    let dir = scratch(
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        "typescript-wire-table",
    );
    let source = dir.join("wire_table.ts");
    let module = gamewire_codegen::typescript(&ProtocolSchema::of::<WireTable>()).unwrap();
    std::fs::write(&source, module).unwrap();
    node.tsc(&[&source], &dir.join("dist")).await;

    let mut js = String::from("export const vectors = [\n");
    for (name, value, literal) in vectors() {
        let mut out = BytesMut::new();
        Bincode::encode(&value, &mut out).unwrap();
        js.push_str(&format!(
            "  {{ name: {name:?}, message: {literal}, hex: \"{}\" }},\n",
            hex(&out)
        ));
    }
    js.push_str("];\n");
    let vectors = dir.join("vectors.mjs");
    std::fs::write(&vectors, js).unwrap();
    node.run(
        &["--test", "--test-reporter=dot", "test/encoding.test.mjs"],
        &[
            (
                "GAMEWIRE_WIRE_TABLE",
                dir.join("dist/wire_table.js").display().to_string(),
            ),
            ("GAMEWIRE_VECTORS", vectors.display().to_string()),
        ],
    )
    .await;
}
