//! Every attribute keyword the macros read, in one place.

/// The variant attribute of `#[message]` enums: `#[gamewire(...)]`.
pub(crate) const GAMEWIRE: &str = "gamewire";
/// `#[gamewire(id = 7)]`: the variant's wire id.
pub(crate) const ID: &str = "id";
/// `#[gamewire(direction = to_server)]`: who sends the variant.
pub(crate) const DIRECTION: &str = "direction";
/// `#[gamewire(droppable)]`: a full queue may drop the message.
pub(crate) const DROPPABLE: &str = "droppable";
/// `#[gamewire(unhandled)]`: no handler is expected.
pub(crate) const UNHANDLED: &str = "unhandled";
/// The keys of `#[gamewire(...)]`, in the order messages list them.
/// `#[gamewire(retired)]`: a variant kept only so its id is never reused.
pub(crate) const RETIRED: &str = "retired";
pub(crate) const MESSAGE_KEYS: &[&str] = &[ID, DIRECTION, DROPPABLE, UNHANDLED, RETIRED];

/// `direction = to_server`.
pub(crate) const TO_SERVER: &str = "to_server";
/// `direction = to_client`.
pub(crate) const TO_CLIENT: &str = "to_client";
/// `direction = both`.
pub(crate) const BOTH: &str = "both";
/// The values of `direction`, in the order messages list them.
pub(crate) const DIRECTIONS: &[&str] = &[TO_SERVER, TO_CLIENT, BOTH];

/// `#[message(builtin)]`: a protocol shipped by gamewire itself. Not
/// documented for users.
pub(crate) const BUILTIN: &str = "builtin";
/// `#[message(lock = "File.lock")]`.
pub(crate) const LOCK: &str = "lock";
/// `#[message(major = 2)]`.
pub(crate) const MAJOR: &str = "major";

/// `#[middleware(order = 10)]`: place in the middleware chain.
pub(crate) const ORDER: &str = "order";
/// The keys of `#[middleware(...)]`.
pub(crate) const MIDDLEWARE_KEYS: &[&str] = &[ORDER];

/// The `#[serde(...)]` attribute, rejected inside `#[message]` enums.
pub(crate) const SERDE: &str = "serde";
/// The `#[cfg(...)]` attribute, rejected on `#[message]` variants and fields.
pub(crate) const CFG: &str = "cfg";
/// The `#[derive(...)]` attribute.
pub(crate) const DERIVE: &str = "derive";
/// The `#[doc = "..."]` attribute (doc comments).
pub(crate) const DOC: &str = "doc";

/// `derive(Debug)`, added to `#[message]` enums when missing.
pub(crate) const DEBUG: &str = "Debug";
/// `derive(Clone)`, added to `#[message]` enums when missing.
pub(crate) const CLONE: &str = "Clone";
/// `derive(Serialize)`, rejected on `#[message]` enums.
pub(crate) const SERIALIZE: &str = "Serialize";
/// `derive(Deserialize)`, rejected on `#[message]` enums.
pub(crate) const DESERIALIZE: &str = "Deserialize";

/// The trait `#[middleware]` impls implement.
pub(crate) const MESSAGE_MIDDLEWARE: &str = "MessageMiddleware";

/// The tail of an "unknown key" message: expected one of `a`, `b`.
pub(crate) fn one_of(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
    format!("expected one of {}", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_of_lists_keys_in_backticks() {
        assert_eq!(
            super::one_of(super::MESSAGE_KEYS),
            "expected one of `id`, `direction`, `droppable`, `unhandled`, `retired`"
        );
        assert_eq!(
            super::one_of(super::MIDDLEWARE_KEYS),
            "expected one of `order`"
        );
    }
}
