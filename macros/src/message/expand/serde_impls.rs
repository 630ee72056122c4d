//! The serde impls of a protocol enum: each variant is written under its
//! stable wire id, and read back by id (or by name, for self-describing
//! formats) through its payload type. Field values go through
//! [`field_fn`], like everywhere in the expansion.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote};

use super::{bindings, field_fn, field_names, field_type};
use crate::message::{Protocol, Shape, Variant};
use crate::paths;

/// `impl Serialize`: each variant under its stable wire id.
pub(super) fn serialize_impl(protocol: &Protocol<'_>) -> TokenStream {
    let span = Span::call_site();
    let (serialize, serializer, result) = (
        paths::serialize(span),
        paths::serializer(span),
        paths::result(span),
    );
    let (struct_variant, tuple_variant) = (
        paths::serialize_struct_variant(span),
        paths::serialize_tuple_variant(span),
    );
    let ident = &protocol.item.ident;
    let name = protocol.name();
    let arms = protocol.variants.iter().map(|v| {
        let (variant, variant_name, id) = (v.ident(), v.name(), Literal::u32_suffixed(v.id));
        match v.shape() {
            Shape::Unit => quote! {
                Self::#variant => #serializer::serialize_unit_variant(__serializer, #name, #id, #variant_name),
            },
            Shape::Newtype(ty) => {
                let value = field_value(ty, &format_ident!("__f0"));
                quote! {
                    Self::#variant(__f0) => #serializer::serialize_newtype_variant(__serializer, #name, #id, #variant_name, #value),
                }
            }
            Shape::Tuple(fields) => {
                let (binds, len) = (bindings(fields.len()), fields.len());
                let writes = fields.iter().zip(&binds).map(|(f, bind)| {
                    let value = field_value(&f.ty, bind);
                    quote!(#tuple_variant::serialize_field(&mut __state, #value)?;)
                });
                quote! {
                    Self::#variant(#(#binds),*) => {
                        let mut __state = #serializer::serialize_tuple_variant(__serializer, #name, #id, #variant_name, #len)?;
                        #(#writes)*
                        #tuple_variant::end(__state)
                    }
                }
            }
            Shape::Struct(fields) => {
                let (binds, len) = (bindings(fields.len()), fields.len());
                let members = fields.iter().map(|f| &f.ident);
                let names = field_names(&fields);
                let writes = names.iter().zip(&fields).zip(&binds).map(|((name, f), bind)| {
                    let value = field_value(&f.ty, bind);
                    quote!(#struct_variant::serialize_field(&mut __state, #name, #value)?;)
                });
                quote! {
                    Self::#variant { #(#members: #binds),* } => {
                        let mut __state = #serializer::serialize_struct_variant(__serializer, #name, #id, #variant_name, #len)?;
                        #(#writes)*
                        #struct_variant::end(__state)
                    }
                }
            }
        }
    });
    quote! {
        #[automatically_derived]
        impl #serialize for #ident {
            fn serialize<__S>(&self, __serializer: __S) -> #result<__S::Ok, __S::Error>
            where
                __S: #serializer,
            {
                match self {
                    #(#arms)*
                }
            }
        }
    }
}

/// `&__Field(value)`, where `__Field` is a local wrapper whose `Serialize`
/// calls `<Ty as MessageField>::serialize_field`: the field is written
/// without the generated code naming `Ty: Serialize` itself.
fn field_value(ty: &syn::Type, value: &syn::Ident) -> TokenStream {
    let span = Span::call_site();
    let (serialize, serializer, result) = (
        paths::serialize(span),
        paths::serializer(span),
        paths::result(span),
    );
    let (serialize_field, ty) = (field_fn(ty, "serialize_field"), field_type(ty));
    quote! {
        &{
            #[doc(hidden)]
            struct __Field<'__a>(&'__a #ty);

            #[automatically_derived]
            impl #serialize for __Field<'_> {
                fn serialize<__S: #serializer>(&self, __s: __S) -> #result<__S::Ok, __S::Error> {
                    #serialize_field(self.0, __s)
                }
            }

            __Field(#value)
        }
    }
}

/// A local `DeserializeSeed` whose `deserialize` calls
/// `<Ty as MessageField>::deserialize_field`, for a newtype variant.
fn field_seed(ty: &syn::Type) -> TokenStream {
    let span = Span::call_site();
    let (seed, deserializer, result) = (
        paths::de_deserialize_seed(span),
        paths::deserializer(span),
        paths::result(span),
    );
    let (deserialize_field, ty) = (field_fn(ty, "deserialize_field"), field_type(ty));
    quote! {
        {
            #[doc(hidden)]
            struct __Seed;

            #[automatically_derived]
            impl<'de> #seed<'de> for __Seed {
                type Value = #ty;

                fn deserialize<__D: #deserializer<'de>>(self, __d: __D) -> #result<#ty, __D::Error> {
                    #deserialize_field(__d)
                }
            }

            __Seed
        }
    }
}

/// `impl Deserialize`: reads the variant by wire id (or by name, for
/// self-describing formats), then its payload.
pub(super) fn deserialize_impl(protocol: &Protocol<'_>) -> TokenStream {
    let span = Span::call_site();
    let (deserialize, deserializer, result, ok, err) = (
        paths::deserialize(span),
        paths::deserializer(span),
        paths::result(span),
        paths::ok(span),
        paths::err(span),
    );
    let (de_error, visitor, enum_access, variant_access, unexpected) = (
        paths::de_error(span),
        paths::de_visitor(span),
        paths::de_enum_access(span),
        paths::de_variant_access(span),
        paths::de_unexpected(span),
    );
    let (formatter, fmt_result, string, from) = (
        paths::formatter(span),
        paths::fmt_result(span),
        paths::string(span),
        paths::from(span),
    );
    let ident = &protocol.item.ident;
    let name = protocol.name();
    let tags: Vec<syn::Ident> = (0..protocol.variants.len())
        .map(|i| format_ident!("__V{}", i))
        .collect();
    let names: Vec<String> = protocol.variants.iter().map(Variant::name).collect();
    let byte_names = names.iter().map(|n| Literal::byte_string(n.as_bytes()));
    let ids = protocol
        .variants
        .iter()
        .map(|v| Literal::u64_suffixed(u64::from(v.id)));
    let expecting_id = format!("a variant id of `{name}`");
    let expecting_variant = format!("a variant of `{name}`");
    let expecting_enum = format!("enum `{name}`");
    let arms = protocol.variants.iter().zip(&tags).map(|(v, tag)| {
        let variant = v.ident();
        match v.shape() {
            Shape::Unit => quote! {
                __Variant::#tag => {
                    #variant_access::unit_variant(__access)?;
                    #ok(#ident::#variant)
                }
            },
            Shape::Newtype(ty) => {
                let seed = field_seed(ty);
                quote! {
                    __Variant::#tag => #ok(#ident::#variant(#variant_access::newtype_variant_seed(__access, #seed)?)),
                }
            }
            Shape::Tuple(_) | Shape::Struct(_) => quote! {
                __Variant::#tag => {
                    let __payload: #variant = #variant_access::newtype_variant::<#variant>(__access)?;
                    #ok(<#ident as #from<#variant>>::from(__payload))
                }
            },
        }
    });
    quote! {
        #[automatically_derived]
        impl<'de> #deserialize<'de> for #ident {
            fn deserialize<__D>(__deserializer: __D) -> #result<Self, __D::Error>
            where
                __D: #deserializer<'de>,
            {
                #[doc(hidden)]
                const __VARIANTS: &[&str] = &[#(#names),*];

                #[doc(hidden)]
                #[allow(non_camel_case_types)]
                enum __Variant { #(#tags),* }

                #[doc(hidden)]
                struct __VariantVisitor;

                impl<'de> #visitor<'de> for __VariantVisitor {
                    type Value = __Variant;

                    fn expecting(&self, __f: &mut #formatter<'_>) -> #fmt_result {
                        __f.write_str(#expecting_variant)
                    }

                    fn visit_u64<__E>(self, __value: u64) -> #result<__Variant, __E>
                    where
                        __E: #de_error,
                    {
                        match __value {
                            #(#ids => #ok(__Variant::#tags),)*
                            _ => #err(__E::invalid_value(#unexpected::Unsigned(__value), &#expecting_id)),
                        }
                    }

                    fn visit_str<__E>(self, __value: &str) -> #result<__Variant, __E>
                    where
                        __E: #de_error,
                    {
                        match __value {
                            #(#names => #ok(__Variant::#tags),)*
                            _ => #err(__E::unknown_variant(__value, __VARIANTS)),
                        }
                    }

                    fn visit_bytes<__E>(self, __value: &[u8]) -> #result<__Variant, __E>
                    where
                        __E: #de_error,
                    {
                        match __value {
                            #(#byte_names => #ok(__Variant::#tags),)*
                            _ => #err(__E::unknown_variant(&#string::from_utf8_lossy(__value), __VARIANTS)),
                        }
                    }
                }

                impl<'de> #deserialize<'de> for __Variant {
                    fn deserialize<__D>(__deserializer: __D) -> #result<Self, __D::Error>
                    where
                        __D: #deserializer<'de>,
                    {
                        #deserializer::deserialize_identifier(__deserializer, __VariantVisitor)
                    }
                }

                #[doc(hidden)]
                struct __Visitor;

                impl<'de> #visitor<'de> for __Visitor {
                    type Value = #ident;

                    fn expecting(&self, __f: &mut #formatter<'_>) -> #fmt_result {
                        __f.write_str(#expecting_enum)
                    }

                    fn visit_enum<__A>(self, __data: __A) -> #result<#ident, __A::Error>
                    where
                        __A: #enum_access<'de>,
                    {
                        let (__variant, __access) = #enum_access::variant::<__Variant>(__data)?;
                        match __variant {
                            #(#arms)*
                        }
                    }
                }

                #deserializer::deserialize_enum(__deserializer, #name, __VARIANTS, __Visitor)
            }
        }
    }
}

/// Serde impls whose bodies are `unreachable!()`, for the error path.
pub(super) fn serde_stubs(protocol: &Protocol<'_>) -> TokenStream {
    let span = Span::call_site();
    let (serialize, serializer, deserialize, deserializer, result) = (
        paths::serialize(span),
        paths::serializer(span),
        paths::deserialize(span),
        paths::deserializer(span),
        paths::result(span),
    );
    let ident = &protocol.item.ident;
    quote! {
        #[automatically_derived]
        impl #serialize for #ident {
            fn serialize<__S: #serializer>(&self, _: __S) -> #result<__S::Ok, __S::Error> {
                ::core::unreachable!()
            }
        }

        #[automatically_derived]
        impl<'de> #deserialize<'de> for #ident {
            fn deserialize<__D: #deserializer<'de>>(_: __D) -> #result<Self, __D::Error> {
                ::core::unreachable!()
            }
        }
    }
}
