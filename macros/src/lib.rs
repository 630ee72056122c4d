//! Procedural macros for gamewire: `#[message]`, `#[handler]` and
//! `#[middleware]`.
//!
//! Do not depend on this crate directly: use the macros through the
//! `gamewire` crate (`gamewire::message`, `gamewire::handler`,
//! `gamewire::middleware`, or `gamewire::prelude::*`). The code they generate
//! names `::gamewire::__private`, which only the `gamewire` crate provides.
//!
//! Set `GAMEWIRE_MACROS_DEBUG=1` in the environment of the build to print
//! every expansion to stderr. Cargo does not know the macros read it, so
//! touch the file to expand again: `touch src/main.rs`.

#![forbid(unsafe_code)]

use proc_macro::TokenStream;

mod describe;
mod diag;
mod handler;
mod kw;
mod message;
mod middleware;
mod paths;
mod payload;
mod sig;

/// Declares a protocol: an enum whose variants are the messages exchanged
/// between clients and the server.
///
/// `#[message]` goes on an `enum`. It keeps the enum as written, implements
/// `Debug` and `Clone` for it exactly as the derives would (listing them in
/// `#[derive]` is allowed and changes nothing), and generates:
///
/// - a **payload type** per variant, next to the enum and with its
///   visibility: a struct variant `Ping { nonce: u64 }` gets
///   `struct Ping { nonce: u64 }`, a tuple variant `Pair(u32, String)` gets
///   `struct Pair(u32, String)`, a unit variant `Leave` gets `struct Leave;`,
///   and a newtype variant `Move(MoveCmd)` uses `MoveCmd` itself. Payload
///   structs get the enum's other derives, `Debug`, `Clone`, `Serialize`
///   and `Deserialize`. Each payload converts into the enum (`From`), can be
///   a handler parameter, and can be returned from a handler;
/// - the `Serialize` and `Deserialize` impls of the enum, which write each
///   variant's **stable id** on the wire rather than its position, so that
///   reordering variants does not change the bytes;
/// - the protocol description (variant names, ids, directions, and a
///   fingerprint that clients and servers compare during the handshake);
/// - the registration that lets `TcpGameService` find the protocol.
///
/// Every field type must implement `Serialize`, `Deserialize`, `Debug` and
/// `Clone`. Do not derive `Serialize` or `Deserialize` on the enum
/// yourself, and do not use `#[serde(...)]` attributes inside it: the wire
/// format is fixed by `#[message]`.
///
/// # Variant attributes
///
/// Each variant may carry `#[gamewire(...)]` with these keys:
///
/// | key | meaning |
/// |-----|---------|
/// | `id = 7` | the variant's wire id, a `u32`. Without it, a variant takes the previous variant's id plus one (the first variant takes `0`), as C enum discriminants do. Ids must be unique. |
/// | `direction = to_server` | who sends the variant: `to_server` (clients send it), `to_client` (the server sends it) or `both` (the default). |
/// | `droppable` | a full outbound queue may drop this message instead of applying the slow-consumer policy. |
/// | `unhandled` | clients send this variant but no handler is expected for it. |
///
/// Changing an id, a name or a field type changes the fingerprint; changing
/// a direction, a flag, docs, or the order of variants with explicit ids
/// does not.
///
/// # Examples
///
/// ```
/// use gamewire::prelude::*;
///
/// #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
/// pub struct MoveCmd { pub dx: i32, pub dy: i32 }
///
/// #[message]
/// #[derive(Debug, Clone, PartialEq)]
/// pub enum GameMessage {
///     /// Liveness probe from a client.
///     #[gamewire(id = 1, direction = to_server)]
///     Ping { nonce: u64 },
///     /// The answer to a `Ping`.
///     #[gamewire(direction = to_client)]
///     Pong { nonce: u64 },
///     /// A move; stale moves may be dropped.
///     #[gamewire(droppable)]
///     Move(MoveCmd),
///     /// The client leaves; the server needs no handler for it.
///     #[gamewire(unhandled)]
///     Leave,
/// }
///
/// // `Ping` is now also a struct: `GameMessage::from(Ping { nonce: 1 })`.
/// # fn main() {}
/// ```
///
/// # Errors
///
/// Compile errors, each pointing at the offending token: `#[message]` on
/// something other than an enum, a generic enum, explicit discriminants
/// (use `id = N`), an unknown, repeated or malformed `#[gamewire]` key (an
/// id that is negative, a string or not a literal), two variants with the
/// same id, two newtype variants wrapping the same type, `#[serde]`
/// attributes, a derived `Serialize`/`Deserialize`, or a field type that is
/// not `Serialize + Deserialize + Debug + Clone` (one error per such field).
#[proc_macro_attribute]
pub fn message(args: TokenStream, item: TokenStream) -> TokenStream {
    let source = proc_macro::Span::call_site().local_file();
    let expanded = message::expand(args.into(), item.into(), source);
    diag::debug_dump("message", &expanded);
    expanded.into()
}

/// Registers an `async fn` as the handler of one message variant.
///
/// The argument names the variant with its enum: `#[handler(Enum::Variant)]`.
/// Every parameter is extracted by its type: the variant's payload type
/// (the message itself), `Session`, `UserId`, `State<T>`, the service
/// handles, or any type implementing `FromSession`. The return type is what
/// the sender gets back: a message of the protocol (or one of its payload
/// types), `()` for no reply, an `Option` of those, or a `Result` of those
/// with any error type (the error becomes an error frame).
///
/// The function stays an ordinary `async fn` that you can call yourself.
/// It must be `async`, not generic, and take no `self`. Each variant has at
/// most one handler; a second one is a compile error naming both.
///
/// # Examples
///
/// ```
/// use gamewire::prelude::*;
/// # #[payload]
/// # pub struct MoveCmd { pub dx: i32, pub dy: i32 }
/// # #[message]
/// # pub enum GameMessage {
/// #     #[gamewire(direction = to_server)]
/// #     Ping { nonce: u64 },
/// #     #[gamewire(direction = to_client)]
/// #     Pong { nonce: u64 },
/// #     #[gamewire(direction = to_server)]
/// #     Move(MoveCmd),
/// # }
/// # #[derive(Default)]
/// # pub struct World;
/// # impl World {
/// #     fn apply(&self, _: MoveCmd) -> Result<(), std::io::Error> { Ok(()) }
/// # }
///
/// #[handler(GameMessage::Ping)]
/// async fn ping(ping: Ping, _session: Session) -> GameMessage {
///     GameMessage::from(Pong { nonce: ping.nonce })
/// }
///
/// #[handler(GameMessage::Move)]
/// async fn moved(cmd: MoveCmd, world: State<World>) -> Result<(), std::io::Error> {
///     world.apply(cmd)?;
///     Ok(())
/// }
/// # fn main() {}
/// ```
///
/// # Errors
///
/// Compile errors: a function that is not `async`, is generic, takes
/// `self`, or is not a function at all; a missing or malformed
/// `Enum::Variant`; a variant the enum does not have; a parameter type that
/// cannot be extracted or is the payload of another variant; a return type
/// that is not a reply; two handlers for one variant.
#[proc_macro_attribute]
pub fn handler(args: TokenStream, item: TokenStream) -> TokenStream {
    let expanded = handler::expand(args.into(), item.into());
    diag::debug_dump("handler", &expanded);
    expanded.into()
}

/// Installs a middleware on every server of its protocol.
///
/// `#[middleware(order = N)]` goes on an
/// `impl MessageMiddleware<YourProtocol> for YourType` block. The server
/// builds the middleware with `YourType::default()` and runs the chain in
/// ascending `order` (an `i32`); two middlewares of one protocol may not
/// share an order. Other attributes of the block, such as
/// `#[gamewire::async_trait]`, are kept; write them after `#[middleware]`.
/// `YourProtocol` must be declared in your crate; for one from another
/// crate (the built-in `ChatMessage`), add the middleware with
/// `TcpGameService::middleware` instead.
///
/// # Examples
///
/// ```
/// use gamewire::prelude::*;
/// use gamewire::{MiddlewareError, Reply};
/// # #[message]
/// # pub enum GameMessage {
/// #     #[gamewire(unhandled)]
/// #     Ping { nonce: u64 },
/// # }
///
/// #[derive(Default)]
/// struct CountMessages(std::sync::atomic::AtomicU64);
///
/// #[middleware(order = 10)]
/// #[gamewire::async_trait]
/// impl MessageMiddleware<GameMessage> for CountMessages {
///     async fn before_process(&self, _user: u32, _msg: &mut GameMessage) -> Result<bool, MiddlewareError> {
///         self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         Ok(true)
///     }
///
///     async fn after_process(&self, _user: u32, _msg: &GameMessage, _result: &Reply<GameMessage>) -> Result<(), MiddlewareError> {
///         Ok(())
///     }
/// }
/// # fn main() {}
/// ```
///
/// # Errors
///
/// Compile errors: a missing, repeated or malformed `order`, an unknown
/// key, an item that is not an `impl MessageMiddleware<P> for T` block, a
/// generic impl, a type without `Default`, two middlewares with one order.
#[proc_macro_attribute]
pub fn middleware(args: TokenStream, item: TokenStream) -> TokenStream {
    let expanded = middleware::expand(args.into(), item.into());
    diag::debug_dump("middleware", &expanded);
    expanded.into()
}

/// Makes a struct or enum of yours usable inside messages.
///
/// A field of a `#[message]` variant must be serializable, `Debug` and
/// `Clone`. `#[payload]` derives `Serialize` and `Deserialize` through
/// gamewire's own serde, so your crate needs no `serde` dependency, and
/// derives `Debug` and `Clone` when the item does not already.
///
/// # Examples
///
/// ```
/// use gamewire::prelude::*;
///
/// #[payload]
/// #[derive(PartialEq)]
/// pub struct Position { pub x: i32, pub y: i32 }
///
/// #[message]
/// pub enum GameMessage {
///     #[gamewire(unhandled)]
///     Move { to: Position },
/// }
/// # fn main() {}
/// ```
///
/// # Errors
///
/// A compile error when it is not on a `struct` or an `enum`, or is given
/// arguments.
#[proc_macro_attribute]
pub fn payload(args: TokenStream, item: TokenStream) -> TokenStream {
    let expanded = payload::expand(args.into(), item.into());
    diag::debug_dump("payload", &expanded);
    expanded.into()
}

/// Lets a struct or enum of yours be described in a protocol's schema, so
/// a generated client (`gamewire-codegen`) can encode and decode it.
///
/// `#[payload]` derives it for you; derive it yourself on a type that
/// derives serde's traits directly. The description follows serde's
/// derive as bincode lays it out: a struct is its fields in order, an enum
/// a varint tag (the variant's position) and then the variant's fields. A
/// field whose type does not implement `Describe` is listed as undescribed
/// rather than failing the build; `ProtocolSchema::undescribed` names it.
///
/// # Examples
///
/// ```
/// use gamewire::schema::{ProtocolSchema, TypeDef};
///
/// #[derive(serde::Serialize, serde::Deserialize, gamewire::Describe)]
/// pub struct Position { pub x: i32, pub y: i32 }
///
/// let mut registry = gamewire::schema::Registry::default();
/// <Position as gamewire::Describe>::shape(&mut registry);
/// assert!(matches!(registry.into_types()["Position"], TypeDef::Struct(_)));
/// ```
///
/// # Errors
///
/// Compile errors: a generic type, a `union`, or a `#[serde]` key that
/// changes the layout (`flatten`, `skip`, `with`, `transparent`, `tag`,
/// ...). Renaming keys are fine: bincode writes no names.
#[proc_macro_derive(Describe)]
pub fn derive_describe(item: TokenStream) -> TokenStream {
    let expanded = describe::derive(item.into());
    diag::debug_dump("Describe", &expanded);
    expanded.into()
}
