//! `#[derive(Describe)]`: a struct or enum of yours says how bincode lays
//! it out, so a generator can write a client for a protocol that uses it.
//!
//! The layout follows serde's derive: a struct is its fields in order, an
//! enum is a varint tag (the variant's declaration index) then the
//! variant's fields. `#[serde]` attributes that change that layout
//! (`flatten`, `skip`, `with`, `transparent`, ...) are refused, since the
//! description would no longer match the bytes; the ones that only rename
//! are fine, since bincode writes no names. A field's own type is described
//! through [`paths::shape_of`], so it never stops the build.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{ToTokens, quote};
use syn::ext::IdentExt;

use crate::diag::Diag;
use crate::{kw, paths};

/// Expands `#[derive(Describe)] item`.
pub(crate) fn derive(item: TokenStream) -> TokenStream {
    let input = match syn::parse2::<syn::DeriveInput>(item) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    let diag = Diag::new();
    check(&diag, &input);
    if let Err(error) = diag.finish() {
        return error.to_compile_error();
    }
    describe_impl(&input)
}

/// The serde keys that leave bincode's layout as it is, by where they
/// are written.
const ITEM_KEYS: &[&str] = &[
    "rename",
    "rename_all",
    "rename_all_fields",
    "deny_unknown_fields",
    "bound",
    "crate",
    "expecting",
    "default",
];
const VARIANT_KEYS: &[&str] = &["rename", "alias", "rename_all", "bound"];
const FIELD_KEYS: &[&str] = &["rename", "alias", "default", "bound", "borrow"];

/// Generics, unions, and `#[serde]` keys that change the layout.
fn check(diag: &Diag, input: &syn::DeriveInput) {
    if !input.generics.params.is_empty() {
        diag.error(
            &input.generics,
            "#[derive(Describe)] does not take generic types: a generated client gives each type name one layout; describe a concrete wrapper instead",
        );
    }
    check_serde(diag, &input.attrs, ITEM_KEYS);
    match &input.data {
        syn::Data::Struct(data) => check_fields(diag, &data.fields),
        syn::Data::Enum(data) => {
            for variant in &data.variants {
                check_serde(diag, &variant.attrs, VARIANT_KEYS);
                check_fields(diag, &variant.fields);
            }
        }
        syn::Data::Union(data) => diag.error(
            data.union_token,
            "#[derive(Describe)] goes on a `struct` or an `enum`, not on a `union`",
        ),
    }
}

fn check_fields(diag: &Diag, fields: &syn::Fields) {
    for field in fields {
        check_serde(diag, &field.attrs, FIELD_KEYS);
    }
}

/// One error per `#[serde]` key of `attrs` that is not in `allowed`. A
/// malformed `#[serde]` is left to serde's derive to report.
fn check_serde(diag: &Diag, attrs: &[syn::Attribute], allowed: &[&str]) {
    for attr in attrs.iter().filter(|a| a.path().is_ident(kw::SERDE)) {
        let _ = attr.parse_nested_meta(|meta| {
            let key = meta.path.get_ident().map(|i| i.unraw().to_string());
            if !key.as_deref().is_some_and(|k| allowed.contains(&k)) {
                let key = key.unwrap_or_else(|| "this key".to_owned());
                diag.error(
                    &meta.path,
                    format!(
                        "#[serde({key})] changes how the value is laid out on the wire, which #[derive(Describe)] cannot follow; implement `gamewire::Describe` by hand for this type"
                    ),
                );
            }
            // Step over the value, `= "..."` or `(...)`.
            if meta.input.peek(syn::Token![=]) {
                meta.value()?.parse::<syn::Expr>()?;
            } else if meta.input.peek(syn::token::Paren) {
                meta.input.parse::<proc_macro2::TokenTree>()?;
            }
            Ok(())
        });
    }
}

/// `impl Describe`, listing the type under its own name.
fn describe_impl(input: &syn::DeriveInput) -> TokenStream {
    let span = Span::call_site();
    let (describe, registry, wire_shape, type_def, type_name) = (
        paths::describe(span),
        paths::registry(span),
        paths::wire_shape(span),
        paths::type_def(span),
        paths::type_name(span),
    );
    let ident = &input.ident;
    let name = ident.unraw().to_string();
    let def = match &input.data {
        syn::Data::Struct(data) => {
            let fields = fields_expr(&data.fields);
            quote!(#type_def::Struct(#fields))
        }
        syn::Data::Enum(data) => {
            let (enum_variant, vec, string) = (
                paths::enum_variant(span),
                paths::vec(span),
                paths::string(span),
            );
            let variants = data.variants.iter().enumerate().map(|(tag, variant)| {
                let tag = Literal::u32_suffixed(u32::try_from(tag).unwrap_or(u32::MAX));
                let name = variant.ident.unraw().to_string();
                let fields = fields_expr(&variant.fields);
                quote! {
                    #enum_variant {
                        tag: #tag,
                        name: #string::from(#name),
                        fields: #fields,
                    }
                }
            });
            quote!(#type_def::Enum(#vec::from([#(#variants),*])))
        }
        syn::Data::Union(_) => unreachable!("refused by check"),
    };
    quote! {
        #[automatically_derived]
        impl #describe for #ident {
            fn shape(__registry: &mut #registry) -> #wire_shape {
                __registry.named(#name, #type_name::<Self>(), |__registry| #def)
            }
        }
    }
}

/// The `Fields` value of `fields`, as an expression that reads
/// `__registry`.
pub(crate) fn fields_expr(fields: &syn::Fields) -> TokenStream {
    let span = Span::call_site();
    let (fields_path, vec, string) = (paths::fields(span), paths::vec(span), paths::string(span));
    match fields {
        syn::Fields::Unit => quote!(#fields_path::Unit),
        syn::Fields::Unnamed(unnamed) => {
            let shapes = unnamed.unnamed.iter().map(|f| shape(&f.ty));
            quote!(#fields_path::Tuple(#vec::from([#(#shapes),*])))
        }
        syn::Fields::Named(named) => {
            let pairs = named.named.iter().map(|f| {
                let name = f
                    .ident
                    .as_ref()
                    .map(|i| i.unraw().to_string())
                    .unwrap_or_default();
                let shape = shape(&f.ty);
                quote!((#string::from(#name), #shape))
            });
            quote!(#fields_path::Named(#vec::from([#(#pairs),*])))
        }
    }
}

fn shape(ty: &syn::Type) -> TokenStream {
    paths::shape_of(&ty.to_token_stream())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(item: TokenStream) -> String {
        derive(item).to_string()
    }

    #[test]
    fn describes_structs_and_enums_by_declaration_order() {
        let out = derive(quote! {
            pub enum Shape { Dot, Circle { r: f32 }, Pair(u8, r#String) }
        });
        let text = out.to_string();
        syn::parse2::<syn::File>(out).unwrap();
        assert!(text.contains("tag : 0u32 , name : :: gamewire :: __private :: std :: string :: String :: from (\"Dot\")"), "{text}");
        assert!(text.contains("tag : 2u32"), "{text}");
        assert!(text.contains("DescribeProbe :: < f32 >"), "{text}");
        assert!(text.contains("__registry . named (\"Shape\""), "{text}");
    }

    #[test]
    fn refuses_generics_unions_and_layout_changing_serde_keys() {
        let text = errors(quote! {
            struct Wrapper<T> { inner: T }
        });
        assert!(text.contains("does not take generic types"), "{text}");
        let text = errors(quote! {
            union U { a: u8 }
        });
        assert!(text.contains("not on a `union`"), "{text}");
        let text = errors(quote! {
            #[serde(rename_all = "camelCase", transparent)]
            struct S {
                #[serde(rename = "x", flatten)]
                inner: Inner,
                #[serde(skip_serializing_if = "Option::is_none")]
                extra: Option<u8>,
            }
        });
        assert!(text.contains("#[serde(transparent)] changes how"), "{text}");
        assert!(text.contains("#[serde(flatten)] changes how"), "{text}");
        assert!(text.contains("#[serde(skip_serializing_if)]"), "{text}");
        assert!(!text.contains("#[serde(rename"), "{text}");
    }
}
