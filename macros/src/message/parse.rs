//! Parse stage of `#[message]`: the enum and its attributes, read into a
//! [`Protocol`]. Errors about one attribute at a time are recorded here;
//! errors about the item as a whole are left to `validate`.

use proc_macro2::{TokenStream, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::punctuated::Punctuated;

use super::{Direction, IdSource, Protocol, Variant};
use crate::diag::{Diag, not_expected_here, pretty};
use crate::kw;

/// Reads `#[message(args)] item`. Returns `None` when `item` is not an
/// enum (the error is recorded).
pub(crate) fn protocol<'a>(
    diag: &Diag,
    args: TokenStream,
    item: &'a syn::Item,
) -> Option<Protocol<'a>> {
    let Options {
        builtin,
        lock,
        major,
    } = options(diag, args);
    let syn::Item::Enum(item) = item else {
        diag.push(not_expected_here("message", "an `enum`", item));
        return None;
    };
    let mut next_id = Some(0u32);
    let variants = item
        .variants
        .iter()
        .enumerate()
        .map(|(index, original)| {
            let attrs = VariantAttrs::parse(diag, original);
            let (id, id_source) = match (attrs.id, next_id) {
                (Some(ExplicitId::Valid(id, literal)), _) => (id, IdSource::Explicit(literal)),
                (Some(ExplicitId::Invalid), next) => (next.unwrap_or(0), IdSource::Invalid),
                (None, Some(next)) => (next, IdSource::Implicit),
                (None, None) => (0, IdSource::Overflow),
            };
            next_id = match id_source {
                IdSource::Overflow => None,
                _ => id.checked_add(1),
            };
            Variant {
                original,
                index,
                id,
                id_source,
                direction: attrs.direction.unwrap_or(Direction::Both),
                droppable: attrs.droppable,
                // A retired variant needs no handler.
                unhandled: attrs.unhandled || attrs.retired,
                retired: attrs.retired,
            }
        })
        .collect();
    Some(Protocol {
        item,
        builtin,
        lock,
        major,
        variants,
        derives: derives(&item.attrs),
    })
}

/// The `#[message(...)]` arguments.
struct Options {
    builtin: bool,
    lock: Option<syn::LitStr>,
    major: u32,
}

/// Reads the `#[message(...)]` arguments: `builtin`, `lock = "File.lock"`,
/// `major = N`.
fn options(diag: &Diag, args: TokenStream) -> Options {
    let mut options = Options {
        builtin: false,
        lock: None,
        major: 1,
    };
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident(kw::BUILTIN) && !options.builtin {
            options.builtin = true;
            Ok(())
        } else if meta.path.is_ident(kw::LOCK) && options.lock.is_none() {
            options.lock = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident(kw::MAJOR) {
            let major: syn::LitInt = meta.value()?.parse()?;
            match major.base10_parse::<u32>() {
                Ok(n) if n >= 1 => options.major = n,
                _ => diag.error(&major, "the major version is a whole number from 1"),
            }
            Ok(())
        } else {
            diag.error(
                &meta.path,
                format_args!(
                    "unknown #[message] option `{}`; the options are `lock = \"File.lock\"` and `major = N`",
                    pretty(&meta.path)
                ),
            );
            skip_value(&meta)
        }
    });
    if let Err(error) = parser.parse2(args) {
        diag.push(error);
    }
    options
}

/// Every path in the `#[derive(...)]` attributes among `attrs`.
pub(crate) fn derives(attrs: &[syn::Attribute]) -> Vec<syn::Path> {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident(kw::DERIVE))
        .filter_map(|attr| {
            // A malformed derive is rustc's to report; read what we can.
            attr.parse_args_with(Punctuated::<syn::Path, syn::Token![,]>::parse_terminated)
                .ok()
        })
        .flatten()
        .collect()
}

/// An `id = ...` value.
enum ExplicitId {
    /// A `u32` literal.
    Valid(u32, syn::LitInt),
    /// Anything else (reported).
    Invalid,
}

/// The `#[gamewire(...)]` keys of one variant.
#[derive(Default)]
struct VariantAttrs {
    id: Option<ExplicitId>,
    direction: Option<Direction>,
    droppable: bool,
    unhandled: bool,
    retired: bool,
}

impl VariantAttrs {
    /// Reads every `#[gamewire(...)]` attribute of `variant`, reporting
    /// unknown, repeated and malformed keys.
    fn parse(diag: &Diag, variant: &syn::Variant) -> Self {
        let mut attrs = VariantAttrs::default();
        let mut seen: Vec<&'static str> = Vec::new();
        for attr in &variant.attrs {
            if !attr.path().is_ident(kw::GAMEWIRE) {
                continue;
            }
            let result = attr.parse_nested_meta(|meta| {
                let Some(key) = kw::MESSAGE_KEYS
                    .iter()
                    .find(|key| meta.path.is_ident(key))
                    .copied()
                else {
                    diag.error(
                        &meta.path,
                        format_args!(
                            "unknown gamewire message attribute `{}`; {}",
                            pretty(&meta.path),
                            kw::one_of(kw::MESSAGE_KEYS)
                        ),
                    );
                    return skip_value(&meta);
                };
                if seen.contains(&key) {
                    diag.error(
                        &meta.path,
                        format_args!("duplicate gamewire attribute `{key}`"),
                    );
                    return skip_value(&meta);
                }
                seen.push(key);
                attrs.read_key(diag, key, &meta)
            });
            if let Err(error) = result {
                diag.push(error);
            }
        }
        attrs
    }

    /// Reads the value of the known key `key`.
    fn read_key(&mut self, diag: &Diag, key: &str, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
        match key {
            kw::ID => self.id = Some(read_id(diag, meta)?),
            kw::DIRECTION => self.direction = read_direction(diag, meta)?,
            _ => {
                if !(meta.input.is_empty() || meta.input.peek(syn::Token![,])) {
                    diag.error(
                        &meta.path,
                        format_args!("`{key}` takes no value; write #[gamewire({key})]"),
                    );
                    return skip_value(meta);
                }
                match key {
                    kw::DROPPABLE => self.droppable = true,
                    kw::RETIRED => self.retired = true,
                    _ => self.unhandled = true,
                }
            }
        }
        Ok(())
    }
}

/// Reads `id = <u32 literal>`.
fn read_id(diag: &Diag, meta: &ParseNestedMeta<'_>) -> syn::Result<ExplicitId> {
    let value: syn::Expr = meta.value()?.parse()?;
    let literal = match &value {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(literal),
            ..
        }) => literal,
        syn::Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            ..
        }) => {
            diag.error(
                &value,
                "variant ids are `u32` and cannot be negative; write an id from `0` up, e.g. `id = 7`",
            );
            return Ok(ExplicitId::Invalid);
        }
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(text),
            ..
        }) => {
            let fix = match text.value().trim().parse::<u32>() {
                Ok(id) => format!("write `id = {id}`"),
                Err(_) => "write a number, e.g. `id = 7`".to_owned(),
            };
            diag.error(
                &value,
                format_args!("variant ids are `u32` literals, not strings; {fix}"),
            );
            return Ok(ExplicitId::Invalid);
        }
        _ => {
            diag.error(
                &value,
                "expected a `u32` literal, e.g. `id = 7`; #[message] reads ids itself, so constants and expressions cannot be used",
            );
            return Ok(ExplicitId::Invalid);
        }
    };
    if !matches!(literal.suffix(), "" | "u32") {
        diag.error(
            literal,
            format_args!(
                "variant ids are `u32`; remove the `{}` suffix",
                literal.suffix()
            ),
        );
        return Ok(ExplicitId::Invalid);
    }
    match literal.base10_parse::<u32>() {
        Ok(id) => Ok(ExplicitId::Valid(id, literal.clone())),
        Err(_) => {
            diag.error(
                literal,
                format_args!(
                    "variant id `{}` does not fit in a `u32`",
                    literal.base10_digits()
                ),
            );
            Ok(ExplicitId::Invalid)
        }
    }
}

/// Reads `direction = to_server | to_client | both`.
fn read_direction(diag: &Diag, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<Direction>> {
    let value: syn::Expr = meta.value()?.parse()?;
    let direction = match &value {
        syn::Expr::Path(path) if path.qself.is_none() => match path.path.get_ident() {
            Some(ident) if ident == kw::TO_SERVER => Some(Direction::ToServer),
            Some(ident) if ident == kw::TO_CLIENT => Some(Direction::ToClient),
            Some(ident) if ident == kw::BOTH => Some(Direction::Both),
            _ => None,
        },
        _ => None,
    };
    if direction.is_none() {
        diag.error(
            &value,
            format_args!(
                "unknown direction `{}`; {}",
                pretty(&value),
                kw::one_of(kw::DIRECTIONS)
            ),
        );
    }
    Ok(direction)
}

/// Skips whatever follows a key up to the next top-level `,`, so parsing
/// goes on after an error in one key.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    meta.input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tree, next)) = rest.token_tree() {
            if matches!(&tree, TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            rest = next;
        }
        Ok(((), rest))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    /// Parses `item` with `args`; the ids and the error messages.
    fn run(args: TokenStream, item: syn::Item) -> (Vec<u32>, Vec<String>) {
        let diag = Diag::new();
        let ids = protocol(&diag, args, &item)
            .map(|p| p.variants.iter().map(|v| v.id).collect())
            .unwrap_or_default();
        let errors = match diag.finish() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        };
        (ids, errors)
    }

    #[test]
    fn ids_count_up_like_c_discriminants() {
        let (ids, errors) = run(
            TokenStream::new(),
            syn::parse_quote! {
                enum E {
                    A,
                    #[gamewire(id = 10)]
                    B,
                    C,
                    #[gamewire(id = 3, direction = to_client, droppable)]
                    D(u8),
                    E { x: u8 },
                }
            },
        );
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(ids, [0, 10, 11, 3, 4]);
    }

    #[test]
    fn keys_are_read() {
        let item: syn::Item = syn::parse_quote! {
            enum E {
                #[gamewire(direction = to_server, unhandled)]
                #[gamewire(droppable, id = 4u32)]
                A,
            }
        };
        let diag = Diag::new();
        let p = protocol(&diag, quote!(builtin), &item).unwrap();
        diag.finish().unwrap();
        let v = &p.variants[0];
        assert!(p.builtin);
        assert_eq!(
            (v.id, v.direction, v.droppable, v.unhandled),
            (4, Direction::ToServer, true, true)
        );
    }

    #[test]
    fn attribute_errors_are_all_reported() {
        let (_, errors) = run(
            TokenStream::new(),
            syn::parse_quote! {
                enum E {
                    #[gamewire(idd = 1, direction = sideways)]
                    A,
                    #[gamewire(id = 1, id = 2, droppable = true)]
                    B,
                    #[gamewire(id = -1)]
                    C,
                    #[gamewire(id = 5000000000)]
                    D,
                    #[gamewire(id = 7u8)]
                    F,
                    #[gamewire(id = "7")]
                    G,
                    #[gamewire(id = "x")]
                    H,
                    #[gamewire(id = BASE + 1)]
                    I,
                }
            },
        );
        assert_eq!(
            errors,
            [
                "unknown gamewire message attribute `idd`; expected one of `id`, `direction`, `droppable`, `unhandled`, `retired`",
                "unknown direction `sideways`; expected one of `to_server`, `to_client`, `both`",
                "duplicate gamewire attribute `id`",
                "`droppable` takes no value; write #[gamewire(droppable)]",
                "variant ids are `u32` and cannot be negative; write an id from `0` up, e.g. `id = 7`",
                "variant id `5000000000` does not fit in a `u32`",
                "variant ids are `u32`; remove the `u8` suffix",
                "variant ids are `u32` literals, not strings; write `id = 7`",
                "variant ids are `u32` literals, not strings; write a number, e.g. `id = 7`",
                "expected a `u32` literal, e.g. `id = 7`; #[message] reads ids itself, so constants and expressions cannot be used",
            ]
        );
    }

    #[test]
    fn unknown_option_and_wrong_item() {
        let (_, errors) = run(
            quote!(bulitin),
            syn::parse_quote!(
                enum E {
                    A,
                }
            ),
        );
        assert_eq!(
            errors,
            [
                "unknown #[message] option `bulitin`; the options are `lock = \"File.lock\"` and `major = N`"
            ]
        );
        let (_, errors) = run(
            TokenStream::new(),
            syn::parse_quote!(
                fn f() {}
            ),
        );
        assert_eq!(
            errors,
            ["not expected here; #[message] goes on an `enum`, not on a `fn`"]
        );
        let (_, errors) = run(
            TokenStream::new(),
            syn::parse_quote!(
                struct S;
            ),
        );
        assert_eq!(
            errors,
            ["not expected here; #[message] goes on an `enum`, not on a `struct`"]
        );
    }

    #[test]
    fn derive_paths_are_collected() {
        let attrs: Vec<syn::Attribute> = vec![
            syn::parse_quote!(#[derive(Debug, std::clone::Clone)]),
            syn::parse_quote!(#[doc = "x"]),
            syn::parse_quote!(#[derive(PartialEq)]),
        ];
        let names: Vec<String> = derives(&attrs).iter().map(pretty).collect();
        assert_eq!(names, ["Debug", "std::clone::Clone", "PartialEq"]);
    }
}
