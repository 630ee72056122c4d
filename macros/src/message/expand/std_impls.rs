//! `Debug` and `Clone` for the enum and its payload structs. They are
//! written out rather than derived so that, as everywhere in the expansion,
//! a field's type is used only through [`field_fn`]: a field type that is
//! not `Debug` or `Clone` is then the single "cannot be a field" error, not
//! one error per derive.

use proc_macro2::{Span, TokenStream};
use quote::quote;

use super::{bindings, field_fn, field_names, payloads};
use crate::message::{Protocol, Shape};
use crate::paths;

/// `Debug` and `Clone` for the enum and every payload struct; with `stub`,
/// bodies are `unreachable!()` (the error path).
pub(super) fn std_impls(protocol: &Protocol<'_>, stub: bool) -> TokenStream {
    let ident = &protocol.item.ident;
    let arms: Vec<Arm<'_>> = protocol
        .variants
        .iter()
        .map(|v| {
            let variant = v.ident();
            Arm {
                path: quote!(Self::#variant),
                name: v.name(),
                fields: Fields::of(v.shape()),
            }
        })
        .collect();
    let mut out = debug_clone(&quote!(#ident), &arms, stub);
    for (variant, _) in payloads(protocol) {
        let shape = variant.shape();
        if matches!(shape, Shape::Newtype(_)) {
            continue;
        }
        let arm = Arm {
            path: quote!(Self),
            name: variant.name(),
            fields: Fields::of(shape),
        };
        let payload = variant.ident();
        out.extend(debug_clone(&quote!(#payload), &[arm], stub));
    }
    out
}

/// One pattern of a `match self`: a variant, or the payload struct itself.
struct Arm<'a> {
    /// `Self::Ping` or `Self`.
    path: TokenStream,
    /// The name `Debug` prints.
    name: String,
    /// The fields.
    fields: Fields<'a>,
}

/// The fields of an [`Arm`].
enum Fields<'a> {
    /// None.
    Unit,
    /// Positional: the types.
    Tuple(Vec<&'a syn::Type>),
    /// Named: the fields.
    Struct(Vec<&'a syn::Field>),
}

impl<'a> Fields<'a> {
    fn of(shape: Shape<'a>) -> Self {
        match shape {
            Shape::Unit => Fields::Unit,
            Shape::Newtype(ty) => Fields::Tuple(vec![ty]),
            Shape::Tuple(fields) => Fields::Tuple(fields.iter().map(|f| &f.ty).collect()),
            Shape::Struct(fields) => Fields::Struct(fields),
        }
    }

    /// The pattern binding each field to `__f0, __f1, ...`.
    fn pattern(&self, path: &TokenStream) -> TokenStream {
        match self {
            Fields::Unit => quote!(#path),
            Fields::Tuple(types) => {
                let binds = bindings(types.len());
                quote!(#path(#(#binds),*))
            }
            Fields::Struct(fields) => {
                let binds = bindings(fields.len());
                let members = fields.iter().map(|f| &f.ident);
                quote!(#path { #(#members: #binds),* })
            }
        }
    }
}

/// `impl Debug` and `impl Clone` for `ty`, matching `self` against `arms`.
fn debug_clone(ty: &TokenStream, arms: &[Arm<'_>], stub: bool) -> TokenStream {
    let span = Span::call_site();
    let (debug, clone, formatter, fmt_result) = (
        paths::debug(span),
        paths::clone(span),
        paths::formatter(span),
        paths::fmt_result(span),
    );
    let (debug_body, clone_body) = if stub {
        (
            quote!(::core::unreachable!()),
            quote!(::core::unreachable!()),
        )
    } else {
        let debug_arms = arms.iter().map(|arm| debug_arm(arm, &formatter));
        let clone_arms = arms.iter().map(clone_arm);
        (
            quote!(match self { #(#debug_arms)* }),
            quote!(match self { #(#clone_arms)* }),
        )
    };
    quote! {
        #[automatically_derived]
        impl #debug for #ty {
            fn fmt(&self, __f: &mut #formatter<'_>) -> #fmt_result {
                #debug_body
            }
        }

        #[automatically_derived]
        impl #clone for #ty {
            #[inline]
            fn clone(&self) -> Self {
                #clone_body
            }
        }
    }
}

/// `pattern => what #[derive(Debug)] writes,`.
fn debug_arm(arm: &Arm<'_>, formatter: &TokenStream) -> TokenStream {
    let (name, pattern) = (&arm.name, arm.fields.pattern(&arm.path));
    let body = match &arm.fields {
        Fields::Unit => quote!(#formatter::write_str(__f, #name)),
        Fields::Tuple(types) => {
            let fields = types.iter().zip(bindings(types.len())).map(|(ty, bind)| {
                let as_debug = field_fn(ty, "as_debug");
                quote!(.field(#as_debug(#bind)))
            });
            quote!(#formatter::debug_tuple(__f, #name) #(#fields)* .finish())
        }
        Fields::Struct(fields) => {
            let names = field_names(fields);
            let fields = fields.iter().zip(bindings(fields.len())).zip(&names).map(
                |((field, bind), name)| {
                    let as_debug = field_fn(&field.ty, "as_debug");
                    quote!(.field(#name, #as_debug(#bind)))
                },
            );
            quote!(#formatter::debug_struct(__f, #name) #(#fields)* .finish())
        }
    };
    quote!(#pattern => #body,)
}

/// `pattern => the same shape, each field cloned,`.
fn clone_arm(arm: &Arm<'_>) -> TokenStream {
    let (path, pattern) = (&arm.path, arm.fields.pattern(&arm.path));
    let body = match &arm.fields {
        Fields::Unit => quote!(#path),
        Fields::Tuple(types) => {
            let clones = types.iter().zip(bindings(types.len())).map(|(ty, bind)| {
                let clone_field = field_fn(ty, "clone_field");
                quote!(#clone_field(#bind))
            });
            quote!(#path(#(#clones),*))
        }
        Fields::Struct(fields) => {
            let clones = fields.iter().zip(bindings(fields.len())).map(|(f, bind)| {
                let (member, clone_field) = (&f.ident, field_fn(&f.ty, "clone_field"));
                quote!(#member: #clone_field(#bind))
            });
            quote!(#path { #(#clones),* })
        }
    };
    quote!(#pattern => #body,)
}
