//! The part of a protocol's lock that the macro cannot check: the structs
//! and enums its fields carry.
//!
//! `#[message(lock = ...)]` checks the variants when it compiles, but sees
//! a field's type only as written. [`check_lock`] compares the `type` lines
//! of the lock with what those types are now, through `Describe`: any
//! change in a released type is breaking (bincode writes fields in order,
//! without names), and a type the lock lacks is one to add with
//! `GAMEWIRE_UPDATE_LOCKS=1 cargo test`, which rewrites the `type` lines.

use std::collections::BTreeMap;

use crate::describe::{EnumVariant, Fields, TypeDef, WireShape};
use crate::protocol::{Message, ProtocolSchema};

/// Why a protocol does not match its lock.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockError {
    /// The protocol has no `#[message(lock = ...)]`.
    #[error("`{0}` has no lock: add #[message(lock = \"{0}.lock\")]")]
    NotLocked(&'static str),
    /// Released types changed, or types are missing from the lock.
    #[error("{}", .0.join("\n"))]
    Changed(Vec<String>),
    /// The lock could not be rewritten.
    #[error("cannot write the lock {path}: {error}")]
    Write {
        /// Where the lock is.
        path: String,
        /// What went wrong.
        error: String,
    },
}

/// How a shape is written in a lock.
fn written(shape: &WireShape) -> String {
    match shape {
        WireShape::Bool => "bool".into(),
        WireShape::U8 => "u8".into(),
        WireShape::U16 => "u16".into(),
        WireShape::U32 => "u32".into(),
        WireShape::U64 => "u64".into(),
        WireShape::U128 => "u128".into(),
        WireShape::I8 => "i8".into(),
        WireShape::I16 => "i16".into(),
        WireShape::I32 => "i32".into(),
        WireShape::I64 => "i64".into(),
        WireShape::I128 => "i128".into(),
        WireShape::F32 => "f32".into(),
        WireShape::F64 => "f64".into(),
        WireShape::Char => "char".into(),
        WireShape::Text => "String".into(),
        WireShape::Unit => "()".into(),
        WireShape::Optional(inner) => format!("Option<{}>", written(inner)),
        WireShape::Seq(inner) => format!("Vec<{}>", written(inner)),
        WireShape::Map(k, v) => format!("Map<{},{}>", written(k), written(v)),
        WireShape::Tuple(items) => {
            let items: Vec<String> = items.iter().map(written).collect();
            format!("({})", items.join(","))
        }
        WireShape::Named(name) => name.clone(),
        WireShape::Undescribed(name) => format!("?{name}"),
    }
}

fn written_fields(fields: &Fields) -> String {
    match fields {
        Fields::Unit => String::new(),
        Fields::Tuple(shapes) => {
            let shapes: Vec<String> = shapes.iter().map(written).collect();
            format!("({})", shapes.join(","))
        }
        Fields::Named(named) => {
            let named: Vec<String> = named
                .iter()
                .map(|(name, shape)| format!("{name}:{}", written(shape)))
                .collect();
            format!("{{{}}}", named.join(","))
        }
    }
}

fn written_def(def: &TypeDef) -> String {
    match def {
        TypeDef::Struct(fields) => written_fields(fields),
        TypeDef::Enum(variants) => {
            let variants: Vec<String> = variants
                .iter()
                .map(|EnumVariant { tag, name, fields }| {
                    format!("{tag} {name}{}", written_fields(fields))
                })
                .collect();
            format!("enum [{}]", variants.join(";"))
        }
    }
}

/// The `type` lines for `schema`'s types, by name.
fn type_lines(schema: &ProtocolSchema) -> BTreeMap<String, String> {
    schema
        .types
        .iter()
        .map(|(name, def)| (name.clone(), written_def(def)))
        .collect()
}

/// Checks the types protocol `M`'s fields carry against the `type` lines of
/// its lock; with `GAMEWIRE_UPDATE_LOCKS` set, rewrites those lines
/// instead. Call it from a test of your crate:
///
/// ```
/// # fn the_protocol_matches_its_lock() {
/// gamewire::schema::check_lock::<gamewire::ChatMessage>().unwrap();
/// # }
/// # the_protocol_matches_its_lock();
/// ```
///
/// # Errors
///
/// [`LockError::NotLocked`] for a protocol without a lock,
/// [`LockError::Changed`] naming each type that changed since the lock
/// (breaking) or that the lock lacks (run the update), and
/// [`LockError::Write`] when the update cannot write the file.
pub fn check_lock<M: Message>() -> Result<(), LockError> {
    let info = M::PROTOCOL;
    let lock = info.lock.ok_or(LockError::NotLocked(info.name))?;
    let now = type_lines(&ProtocolSchema::of::<M>());
    if std::env::var_os("GAMEWIRE_UPDATE_LOCKS").is_some_and(|v| !v.is_empty()) {
        return rewrite(lock.path, &now);
    }
    let locked: BTreeMap<String, String> = lock
        .text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("type "))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(name, def)| (name.to_owned(), def.to_owned()))
        .collect();
    let mut problems = Vec::new();
    for (name, was) in &locked {
        match now.get(name) {
            Some(is) if is == was => {}
            Some(is) => problems.push(format!(
                "the type `{name}` that `{}` carries changed from `{was}` to `{is}` since its lock; \
                 its bytes changed in every variant that carries it. Keep the released type as it \
                 is and carry a new one in a new variant, or make this a new major version with \
                 #[message(major = ...)] and rewrite the lock with `GAMEWIRE_UPDATE_LOCKS=1 cargo test`",
                info.name
            )),
            None => problems.push(format!(
                "the type `{name}` is in the lock of `{}` but no variant carries it any more; a \
                 released variant keeps its types",
                info.name
            )),
        }
    }
    for name in now.keys().filter(|name| !locked.contains_key(*name)) {
        problems.push(format!(
            "the lock of `{}` lacks the type `{name}`; add it with `GAMEWIRE_UPDATE_LOCKS=1 cargo test`",
            info.name
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(LockError::Changed(problems))
    }
}

/// Rewrites the `type` lines of the lock at `path`, keeping every other.
fn rewrite(path: &str, types: &BTreeMap<String, String>) -> Result<(), LockError> {
    let failed = |error: std::io::Error| LockError::Write {
        path: path.to_owned(),
        error: error.to_string(),
    };
    let text = std::fs::read_to_string(path).map_err(failed)?;
    let mut out: String = text
        .lines()
        .filter(|line| !line.trim().starts_with("type "))
        .map(|line| format!("{line}\n"))
        .collect();
    for (name, def) in types {
        out.push_str(&format!("type {name} {def}\n"));
    }
    std::fs::write(path, out).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_written_as_in_rust() {
        let shape = WireShape::Map(
            Box::new(WireShape::Text),
            Box::new(WireShape::Seq(Box::new(WireShape::Optional(Box::new(
                WireShape::Named("Position".into()),
            ))))),
        );
        assert_eq!(written(&shape), "Map<String,Vec<Option<Position>>>");
        let def = TypeDef::Enum(vec![
            EnumVariant {
                tag: 0,
                name: "Fists".into(),
                fields: Fields::Unit,
            },
            EnumVariant {
                tag: 1,
                name: "Sword".into(),
                fields: Fields::Named(vec![("damage".into(), WireShape::U16)]),
            },
        ]);
        assert_eq!(written_def(&def), "enum [0 Fists;1 Sword{damage:u16}]");
    }
}
