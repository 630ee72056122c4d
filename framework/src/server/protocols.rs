//! The protocols a binary links in, and the choice of the one to serve.
//!
//! `#[message]` submits a [`ProtocolRegistration`] per enum to
//! [`inventory`]. Its entry points are monomorphized for the protocol and
//! the server's codec, so the server runs a protocol it knows only by its
//! registration.

use std::any::TypeId;

use super::run::{self, Listeners, ServeFuture};
use super::runtime::Blueprint;
use crate::chat::ChatMessage;
use crate::codec::Bincode;
use crate::dispatch::BuildError;
use crate::handler::HandlerRegistration;
use crate::protocol::{Location, Message, ProtocolInfo, ProtocolSchema};

/// The codec every server speaks. A second codec would be an addition in
/// `codec/`, chosen here.
type ServerCodec = Bincode;

/// Runs a server for one protocol.
pub(crate) type ServeFn = fn(Blueprint, Listeners) -> ServeFuture;

/// Checks the registrations of one protocol against a server's setup.
pub(crate) type CheckFn = fn(&Blueprint) -> Result<(), BuildError>;

/// A `#[message]` enum that the binary links in, found through
/// [`inventory`].
#[doc(hidden)]
#[derive(Debug)]
pub struct ProtocolRegistration {
    /// The protocol's [`TypeId`], as a function because `TypeId::of` is not
    /// callable in a `const` on stable Rust.
    pub type_id: fn() -> TypeId,
    /// The protocol's description.
    pub info: &'static ProtocolInfo,
    /// Whether this is a protocol shipped by gamewire itself (the chat).
    pub builtin: bool,
    /// Where the `#[message]` enum is declared.
    pub location: Location,
    /// The protocol's schema, for client generators.
    pub schema: fn() -> ProtocolSchema,
    /// Serves this protocol on a listener.
    pub(crate) entry: ProtocolEntry,
}

impl ProtocolRegistration {
    /// The registration `#[message]` submits for `M`.
    pub const fn of<M: Message>(location: Location, builtin: bool) -> Self {
        ProtocolRegistration {
            type_id: TypeId::of::<M>,
            info: M::PROTOCOL,
            builtin,
            location,
            schema: ProtocolSchema::of::<M>,
            entry: ProtocolEntry::of::<M>(),
        }
    }
}

inventory::collect!(ProtocolRegistration);

/// The schemas of every `#[message]` protocol this binary links in, the
/// built-in chat included, sorted by name: what a client generator run from
/// the user's own crate offers to generate.
pub fn linked() -> Vec<ProtocolSchema> {
    let mut schemas: Vec<ProtocolSchema> = inventory::iter::<ProtocolRegistration>
        .into_iter()
        .map(|reg| (reg.schema)())
        .collect();
    schemas.sort_by(|a, b| a.name.cmp(&b.name));
    schemas
}

/// The entry points of one protocol.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProtocolEntry {
    pub(crate) serve: ServeFn,
    pub(crate) check: CheckFn,
}

impl ProtocolEntry {
    pub(crate) const fn of<M: Message>() -> Self {
        ProtocolEntry {
            serve: run::serve::<M, ServerCodec>,
            check: run::check::<M, ServerCodec>,
        }
    }
}

/// The protocol to serve: the one chosen with `protocol::<M>()`, else the
/// only non-built-in protocol with handlers, else the chat.
///
/// # Errors
///
/// When several protocols have handlers and none was chosen.
pub(crate) fn select(chosen: Option<ProtocolEntry>) -> Result<ProtocolEntry, BuildError> {
    if let Some(entry) = chosen {
        return Ok(entry);
    }
    let with_handlers: Vec<&ProtocolRegistration> = inventory::iter::<ProtocolRegistration>
        .into_iter()
        .filter(|reg| !reg.builtin)
        .filter(|reg| {
            inventory::iter::<HandlerRegistration>
                .into_iter()
                .any(|h| (h.protocol)() == (reg.type_id)())
        })
        .collect();
    match with_handlers.as_slice() {
        [] => Ok(ProtocolEntry::of::<ChatMessage>()),
        [only] => Ok(only.entry),
        many => Err(BuildError::new(vec![format!(
            "several protocols have handlers ({}); choose one with `TcpGameService::protocol::<YourMessage>()`",
            many.iter()
                .map(|reg| format!("`{}` at {}", reg.info.name, reg.location))
                .collect::<Vec<_>>()
                .join(", ")
        )])),
    }
}
