//! `#[message(lock = "File.lock")]`: the protocol's wire contract, kept in
//! a committed file and checked each time the enum is compiled.
//!
//! The lock lists every variant ever released, one line each: its id, its
//! name, its direction (or `retired`) and its fields as the fingerprint
//! writes them. Against it, a variant appended with a new id, a variant
//! marked `#[gamewire(retired)]` and a changed direction are compatible;
//! an id given to another variant or taken from one, a field added,
//! removed, reordered or retyped, and a variant removed without retiring
//! it are compile errors that name the variant and the field and say the
//! two ways out. `GAMEWIRE_UPDATE_LOCKS=1 cargo test` writes the lock
//! from the enum instead of checking it. A lock of another major version
//! (`#[message(major = 2)]`) is not compared: a new major is a new
//! protocol, whose lock the same command writes.
//!
//! What the macro cannot see is inside the types the fields name (a
//! struct declared elsewhere): those are written as in the source.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use syn::spanned::Spanned;

use super::expand::fingerprint::{CanonicalShape, canonical_variants, fnv1a64};
use super::{Direction, Protocol, Variant};
use crate::diag::Diag;

/// The environment variable that makes the macro write locks.
const UPDATE: &str = "GAMEWIRE_UPDATE_LOCKS";

/// One line of a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) id: u32,
    pub(crate) name: String,
    /// `to_server`, `to_client`, `both` or `retired`.
    pub(crate) status: String,
    /// The fields as the fingerprint writes them.
    pub(crate) fields: String,
    /// The revision that brought the variant in.
    pub(crate) since: u32,
}

/// A lock: the protocol's name and major version, and its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lock {
    pub(crate) protocol: String,
    pub(crate) major: u32,
    pub(crate) entries: Vec<Entry>,
    /// The `type ...` lines, which the server's own check writes and reads
    /// (`gamewire::schema::check_lock`): kept as they are.
    pub(crate) types: Vec<String>,
}

fn status(variant: &Variant<'_>) -> &'static str {
    if variant.retired {
        return "retired";
    }
    match variant.direction {
        Direction::ToServer => "to_server",
        Direction::ToClient => "to_client",
        Direction::Both => "both",
    }
}

/// The lock the enum would write now, keeping the revisions of
/// `previous`: a variant it does not have comes with the next revision.
pub(crate) fn of(protocol: &Protocol<'_>, previous: Option<&Lock>) -> Lock {
    let shapes = canonical_variants(protocol);
    let next = previous.map_or(1, |lock| lock.revision() + 1);
    let mut entries: Vec<Entry> = protocol
        .variants
        .iter()
        .zip(shapes)
        .map(|(variant, canonical)| Entry {
            id: variant.id,
            name: variant.name(),
            status: status(variant).to_owned(),
            fields: canonical.shape.written(),
            since: previous
                .and_then(|lock| {
                    lock.entries
                        .iter()
                        .find(|e| e.id == variant.id && e.name == variant.name())
                })
                .map_or(next, |entry| entry.since),
        })
        .collect();
    entries.sort_by_key(|entry| (entry.since, entry.id));
    Lock {
        protocol: protocol.name(),
        major: protocol.major,
        entries,
        types: previous.map(|lock| lock.types.clone()).unwrap_or_default(),
    }
}

/// What the expansion needs of a lock: the protocol's revision, each
/// variant's first revision (in declaration order), and the fingerprints of
/// the earlier revisions.
pub(crate) struct History {
    /// Where the lock is, for the server's own check of the types.
    pub(crate) path: Option<PathBuf>,
    pub(crate) revision: u32,
    pub(crate) since: Vec<u32>,
    pub(crate) older: Vec<(u32, u64)>,
}

impl History {
    /// A protocol without a lock: revision 1, nothing earlier.
    pub(crate) fn first(protocol: &Protocol<'_>) -> History {
        History {
            path: None,
            revision: 1,
            since: vec![1; protocol.variants.len()],
            older: Vec::new(),
        }
    }

    fn of(protocol: &Protocol<'_>, lock: &Lock) -> History {
        let since = protocol
            .variants
            .iter()
            .map(|v| {
                lock.entries
                    .iter()
                    .find(|e| e.id == v.id)
                    .map_or(1, |e| e.since)
            })
            .collect();
        let name = match protocol.major {
            1 => protocol.name(),
            major => format!("{}@{major}", protocol.name()),
        };
        let revision = lock.revision();
        let older = (1..revision)
            .map(|r| {
                let mut known: Vec<&Entry> = lock.entries.iter().filter(|e| e.since <= r).collect();
                known.sort_by_key(|e| e.id);
                let mut canonical = name.clone();
                for entry in known {
                    let _ = write!(canonical, ";{} {}{}", entry.id, entry.name, entry.fields);
                }
                (r, fnv1a64(canonical.as_bytes()))
            })
            .collect();
        History {
            path: None,
            revision,
            since,
            older,
        }
    }
}

impl Lock {
    /// The latest revision it records.
    pub(crate) fn revision(&self) -> u32 {
        self.entries.iter().map(|e| e.since).max().unwrap_or(1)
    }

    /// The file's text.
    pub(crate) fn text(&self) -> String {
        let mut out = format!(
            "# The wire contract of the protocol `{}`, checked each time it is compiled.\n\
             # Written by `{UPDATE}=1 cargo test`: see \"Evolving your protocol\" in the\n\
             # gamewire book before you do. Under each revision, the variants it brought:\n\
             # id, name, direction or `retired`, fields.\n\
             protocol {} {}\n",
            self.protocol, self.protocol, self.major
        );
        let mut revision = 0;
        for entry in &self.entries {
            if entry.since != revision {
                revision = entry.since;
                let _ = writeln!(out, "revision {revision}");
            }
            let _ = write!(out, "{} {} {}", entry.id, entry.name, entry.status);
            if !entry.fields.is_empty() {
                let _ = write!(out, " {}", entry.fields);
            }
            out.push('\n');
        }
        for line in &self.types {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// Reads a lock file's text.
    pub(crate) fn parse(text: &str) -> Result<Lock, String> {
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'));
        let header = lines.next().ok_or("it is empty")?;
        let mut words = header.split_whitespace();
        let (Some("protocol"), Some(protocol), Some(major), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(format!(
                "its first line is `{header}`, not `protocol NAME MAJOR`"
            ));
        };
        let major = major
            .parse()
            .map_err(|_| format!("`{major}` is not a major version"))?;
        let mut entries = Vec::new();
        let mut types = Vec::new();
        let mut since = 1;
        for line in lines {
            if line.starts_with("type ") {
                types.push(line.to_owned());
                continue;
            }
            if let Some(revision) = line.strip_prefix("revision ") {
                since = revision
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{line}` does not name a revision"))?;
                continue;
            }
            let mut parts = line.splitn(4, ' ');
            let (Some(id), Some(name), Some(status)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(format!(
                    "the line `{line}` is not `ID NAME DIRECTION [FIELDS]`"
                ));
            };
            let id = id
                .parse()
                .map_err(|_| format!("the line `{line}` does not start with an id"))?;
            entries.push(Entry {
                id,
                name: name.to_owned(),
                status: status.to_owned(),
                fields: parts.next().unwrap_or("").to_owned(),
                since,
            });
        }
        Ok(Lock {
            protocol: protocol.to_owned(),
            major,
            entries,
            types,
        })
    }
}

/// The lock file's path: `file` next to the enum's source file, made
/// absolute (the compiler names sources relative to where it runs, and the
/// server's own check runs elsewhere).
fn path(file: &syn::LitStr, source: Option<&Path>) -> PathBuf {
    let relative = PathBuf::from(file.value());
    let path = match source.and_then(Path::parent) {
        Some(dir) => dir.join(relative),
        None => relative,
    };
    if path.is_relative()
        && let Ok(cwd) = std::env::current_dir()
    {
        return cwd.join(path);
    }
    path
}

/// Checks `protocol` against its lock, or writes the lock when
/// `GAMEWIRE_UPDATE_LOCKS` is set; returns what the expansion needs of it.
pub(crate) fn check(diag: &Diag, protocol: &Protocol<'_>, source: Option<&Path>) -> History {
    let first = History::first(protocol);
    let Some(file) = &protocol.lock else {
        return first;
    };
    // Outside the compiler (the macro's own unit tests) there is no file.
    let Some(source) = source else {
        return first;
    };
    let path = path(file, Some(source));
    let previous = std::fs::read_to_string(&path)
        .ok()
        .map(|text| Lock::parse(&text));
    let update = std::env::var_os(UPDATE).is_some_and(|v| !v.is_empty());
    let locked = match previous {
        Some(Ok(locked)) => locked,
        Some(Err(why)) => {
            diag.error(
                file,
                format_args!("the lock {} is not a lock: {why}", path.display()),
            );
            return first;
        }
        None if update => return write(diag, file, &path, protocol, None),
        None => {
            diag.error(
                file,
                format_args!(
                    "cannot read the lock {}; write it with `{UPDATE}=1 cargo test`",
                    path.display()
                ),
            );
            return first;
        }
    };
    if locked.major != protocol.major {
        // A new major is a new protocol: it starts its own lock.
        return if update {
            write(diag, file, &path, protocol, None)
        } else {
            first
        };
    }
    compare(diag, protocol, &locked);
    let mut history = if update {
        write(diag, file, &path, protocol, Some(&locked))
    } else {
        History::of(protocol, &of(protocol, Some(&locked)))
    };
    history.path = Some(path);
    history
}

/// Writes the lock of `protocol` after `previous`, and returns its history.
fn write(
    diag: &Diag,
    file: &syn::LitStr,
    path: &Path,
    protocol: &Protocol<'_>,
    previous: Option<&Lock>,
) -> History {
    let lock = of(protocol, previous);
    if let Err(error) = std::fs::write(path, lock.text()) {
        diag.error(
            file,
            format_args!("cannot write the lock {}: {error}", path.display()),
        );
    }
    History::of(protocol, &lock)
}

/// The two ways out of a breaking change.
fn ways_out(protocol: &Protocol<'_>) -> String {
    format!(
        "clients built against the lock would misread it. Either leave the locked variant as it \
         is and add a new variant (a new id), or make this a new major version with \
         #[message(major = {})] and write its lock with `{UPDATE}=1 cargo test`",
        protocol.major + 1
    )
}

/// Reports every breaking difference between `protocol` and `locked`.
fn compare(diag: &Diag, protocol: &Protocol<'_>, locked: &Lock) {
    let name = protocol.name();
    let shapes = canonical_variants(protocol);
    let now: Vec<(&Variant<'_>, CanonicalShape)> = protocol
        .variants
        .iter()
        .zip(shapes.into_iter().map(|c| c.shape))
        .collect();
    for entry in &locked.entries {
        let by_id = now.iter().find(|(v, _)| v.id == entry.id);
        let by_name = now.iter().find(|(v, _)| v.name() == entry.name);
        match (by_id, by_name) {
            (Some((variant, shape)), _) if variant.name() == entry.name => {
                check_variant(diag, protocol, entry, variant, shape);
            }
            (_, Some((variant, _))) => diag.error(
                variant.ident(),
                format_args!(
                    "`{name}::{}` has id {} here and {} in the lock: an id never changes; {}",
                    entry.name,
                    variant.id,
                    entry.id,
                    ways_out(protocol)
                ),
            ),
            (Some((variant, _)), None) => diag.error(
                variant.ident(),
                format_args!(
                    "id {} is `{name}::{}` in the lock, and `{}` here: an id is never given to \
                     another variant, and `{}` was removed without #[gamewire(retired)]; {}",
                    entry.id,
                    entry.name,
                    variant.name(),
                    entry.name,
                    ways_out(protocol)
                ),
            ),
            (None, None) => diag.error(
                &protocol.item.ident,
                format_args!(
                    "`{name}::{}` (id {}) is in the lock but not in the enum: a variant is never \
                     removed; keep it, marked #[gamewire(retired)], so its id is never reused",
                    entry.name, entry.id
                ),
            ),
        }
    }
}

/// Reports what breaks between a locked variant and the variant now.
fn check_variant(
    diag: &Diag,
    protocol: &Protocol<'_>,
    entry: &Entry,
    variant: &Variant<'_>,
    shape: &CanonicalShape,
) {
    let name = protocol.name();
    if entry.status == "retired" {
        if !variant.retired {
            diag.error(
                variant.ident(),
                format_args!(
                    "`{name}::{}` is retired in the lock: a retired id is never used again; \
                     keep #[gamewire(retired)] and add a new variant",
                    entry.name
                ),
            );
        }
        return;
    }
    if variant.retired || shape.written() == entry.fields {
        return;
    }
    let locked = fields_of(&entry.fields);
    let now = fields_of(&shape.written());
    let field_span = |field: &str| {
        variant
            .original
            .fields
            .iter()
            .enumerate()
            .find(|(i, f)| {
                f.ident
                    .as_ref()
                    .map_or(i.to_string(), |ident| ident.to_string())
                    == field
            })
            .map_or_else(|| variant.ident().span(), |(_, f)| f.span())
    };
    let what = if let Some((field, _)) = now
        .iter()
        .find(|(f, _)| !locked.iter().any(|(l, _)| l == f))
    {
        (field_span(field), format!("gained the field `{field}`"))
    } else if let Some((field, _)) = locked
        .iter()
        .find(|(f, _)| !now.iter().any(|(n, _)| n == f))
    {
        (variant.ident().span(), format!("lost the field `{field}`"))
    } else if let Some(((field, was), (_, is))) = locked
        .iter()
        .zip(&now)
        .find(|((lf, lt), (nf, nt))| lf == nf && lt != nt)
    {
        (
            field_span(field),
            format!("changed the type of `{field}` from `{was}` to `{is}`"),
        )
    } else {
        (
            variant.ident().span(),
            format!(
                "reordered its fields, from `{}` to `{}`",
                entry.fields,
                shape.written()
            ),
        )
    };
    diag.error_at(
        what.0,
        format_args!(
            "`{name}::{}` (id {}) {} since its lock; {}",
            entry.name,
            entry.id,
            what.1,
            ways_out(protocol)
        ),
    );
}

/// The fields of a written shape: `(name, type)`, with `0`, `1`, … as the
/// names of a tuple's fields.
fn fields_of(written: &str) -> Vec<(String, String)> {
    let inner = written
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .map(|s| (s, true))
        .or_else(|| {
            written
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .map(|s| (s, false))
        });
    let Some((inner, named)) = inner else {
        return Vec::new();
    };
    split_top_level(inner)
        .into_iter()
        .enumerate()
        .map(|(i, field)| match (named, field.split_once(':')) {
            (true, Some((name, ty))) => (name.to_owned(), ty.to_owned()),
            _ => (i.to_string(), field.to_owned()),
        })
        .collect()
}

/// `a,B<c,d>,e` split at the commas outside brackets.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '<' | '(' | '[' | '{' => depth += 1,
            '>' | ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_reads_back_what_it_wrote() {
        let lock = Lock {
            protocol: "Game".into(),
            major: 1,
            entries: vec![
                Entry {
                    id: 0,
                    name: "Move".into(),
                    status: "to_server".into(),
                    fields: "{x:i32,y:HashMap<u8,Vec<u8>>}".into(),
                    since: 1,
                },
                Entry {
                    id: 1,
                    name: "Leave".into(),
                    status: "retired".into(),
                    fields: String::new(),
                    since: 2,
                },
            ],
            types: vec!["type Position {x:i32,y:i32}".into()],
        };
        assert_eq!(Lock::parse(&lock.text()).unwrap(), lock);
        assert!(Lock::parse("protocol Game").is_err());
    }

    #[test]
    fn fields_split_outside_brackets() {
        assert_eq!(
            fields_of("{x:i32,m:HashMap<u8,Vec<u8>>}"),
            [
                ("x".into(), "i32".into()),
                ("m".into(), "HashMap<u8,Vec<u8>>".into())
            ]
        );
        assert_eq!(
            fields_of("(u8,(u16,u32))"),
            [("0".into(), "u8".into()), ("1".into(), "(u16,u32)".into())]
        );
        assert!(fields_of("").is_empty());
    }
}
