//! Every path the expansions name, absolute and in one place.
//!
//! Generated code reaches gamewire's runtime, serde, inventory and std only
//! through `::gamewire::__private`, and core only through `::core`, so a
//! user's own `serde`, `std` or `Result` cannot capture it. Each function
//! takes the span the path's tokens get: `Span::call_site()` normally, or a
//! user token's span when rustc's error about the path should land there.

use proc_macro2::{Span, TokenStream};
use quote::quote_spanned;

/// The crate path serde's derive is told to use: `#[serde(crate = "...")]`.
pub(crate) const SERDE_CRATE: &str = "::gamewire::__private::serde";

/// `MessageField`, as text for `#[serde(serialize_with = "...")]`.
pub(crate) const MESSAGE_FIELD: &str = "::gamewire::__private::MessageField";

/// `::gamewire::__private`.
pub(crate) fn private(span: Span) -> TokenStream {
    quote_spanned!(span=> ::gamewire::__private)
}

macro_rules! private_paths {
    ($($(#[$doc:meta])* $name:ident => $($segment:ident)::+;)*) => {
        $(
            $(#[$doc])*
            pub(crate) fn $name(span: Span) -> TokenStream {
                let private = private(span);
                quote_spanned!(span=> #private $(:: $segment)+)
            }
        )*
    };
}

macro_rules! core_paths {
    ($($(#[$doc:meta])* $name:ident => $($segment:ident)::+;)*) => {
        $(
            $(#[$doc])*
            pub(crate) fn $name(span: Span) -> TokenStream {
                quote_spanned!(span=> ::core $(:: $segment)+)
            }
        )*
    };
}

private_paths! {
    /// `serde::Serialize`, the trait and the derive.
    serialize => serde::Serialize;
    /// `serde::Deserialize`, the trait and the derive.
    deserialize => serde::Deserialize;
    /// `serde::Serializer`.
    serializer => serde::Serializer;
    /// `serde::Deserializer`.
    deserializer => serde::Deserializer;
    /// `serde::ser::SerializeStructVariant`.
    serialize_struct_variant => serde::ser::SerializeStructVariant;
    /// `serde::ser::SerializeTupleVariant`.
    serialize_tuple_variant => serde::ser::SerializeTupleVariant;
    /// `serde::de::Error`.
    de_error => serde::de::Error;
    /// `serde::de::Visitor`.
    de_visitor => serde::de::Visitor;
    /// `serde::de::EnumAccess`.
    de_enum_access => serde::de::EnumAccess;
    /// `serde::de::VariantAccess`.
    de_variant_access => serde::de::VariantAccess;
    /// `serde::de::DeserializeSeed`.
    de_deserialize_seed => serde::de::DeserializeSeed;
    /// `serde::de::Unexpected`.
    de_unexpected => serde::de::Unexpected;
    /// `inventory::submit`, invoked as a macro.
    inventory_submit => inventory::submit;
    /// `std::boxed::Box`.
    boxed => std::boxed::Box;
    /// `std::sync::Arc`.
    arc => std::sync::Arc;
    /// `std::string::String`.
    string => std::string::String;
    /// `Message`, the protocol trait.
    message => Message;
    /// `ProtocolInfo`.
    protocol_info => ProtocolInfo;
    /// `VariantInfo`.
    variant_info => VariantInfo;
    /// `Revision`.
    revision => Revision;
    /// `LockFile`.
    lock_file => LockFile;
    /// `Direction`.
    direction => Direction;
    /// `ProtocolRegistration`.
    protocol_registration => ProtocolRegistration;
    /// `Location`.
    location => Location;
    /// `variant_index`, the const fn.
    variant_index => variant_index;
    /// `HandlerContext`.
    handler_context => HandlerContext;
    /// `FromSession`.
    from_session => FromSession;
    /// `Rejection`.
    rejection => Rejection;
    /// `IntoReply`.
    into_reply => IntoReply;
    /// `Reply`.
    reply => Reply;
    /// `HandlerFuture`.
    handler_future => HandlerFuture;
    /// `TypedHandler`.
    typed_handler => TypedHandler;
    /// `HandlerRegistration`.
    handler_registration => HandlerRegistration;
    /// `PayloadOfHandledVariant`.
    payload_of_handled_variant => PayloadOfHandledVariant;
    /// `payload_matches`, the const fn.
    payload_matches => payload_matches;
    /// `MessageField`.
    message_field => MessageField;
    /// `MessageMiddleware`.
    message_middleware => MessageMiddleware;
    /// `TypedMiddleware`.
    typed_middleware => TypedMiddleware;
    /// `MiddlewareRegistration`.
    middleware_registration => MiddlewareRegistration;
    /// `type_id`, the fn.
    type_id => type_id;
    /// `std::vec::Vec`.
    vec => std::vec::Vec;
    /// `std::any::type_name`, the fn.
    type_name => std::any::type_name;
    /// `Describe`, the trait.
    describe => Describe;
    /// `DescribeProbe`.
    describe_probe => DescribeProbe;
    /// `ViaDescribe`, the probe's first choice.
    via_describe => ViaDescribe;
    /// `ViaName`, the probe's fallback.
    via_name => ViaName;
    /// `Registry`, of described types.
    registry => Registry;
    /// `Fields`.
    fields => Fields;
    /// `WireShape`.
    wire_shape => WireShape;
    /// `TypeDef`.
    type_def => TypeDef;
    /// `EnumVariant`.
    enum_variant => EnumVariant;
}

/// The shape of a field of type `ty`, as an expression that reads
/// `__registry`: [`Describe::shape`] when the type implements it, its name
/// otherwise. Never a compile error, so a field type that does not
/// describe itself still compiles and a generator reports it.
pub(crate) fn shape_of(ty: &TokenStream) -> TokenStream {
    let span = Span::call_site();
    let (probe, via_describe, via_name) =
        (describe_probe(span), via_describe(span), via_name(span));
    quote_spanned! {span=>
        {
            #[allow(unused_imports)]
            use #via_describe as _;
            #[allow(unused_imports)]
            use #via_name as _;
            (&#probe::<#ty>::new()).probe_shape(__registry)
        }
    }
}

core_paths! {
    /// `core::fmt::Debug`, the trait and the derive.
    debug => fmt::Debug;
    /// `core::clone::Clone`, the trait and the derive.
    clone => clone::Clone;
    /// `core::fmt::Formatter`.
    formatter => fmt::Formatter;
    /// `core::fmt::Result`.
    fmt_result => fmt::Result;
    /// `core::result::Result`.
    result => result::Result;
    /// `core::result::Result::Ok`.
    ok => result::Result::Ok;
    /// `core::result::Result::Err`.
    err => result::Result::Err;
    /// `core::option::Option`.
    option => option::Option;
    /// `core::option::Option::Some`.
    some => option::Option::Some;
    /// `core::convert::From`.
    from => convert::From;
    /// `core::default::Default`.
    default => default::Default;
}

/// `Location { file: file!(), line: line!(), column: column!() }`, the
/// place of the macro call.
pub(crate) fn here() -> TokenStream {
    here_at(Span::call_site())
}

/// `Location { file: file!(), line: line!(), column: column!() }` with the
/// macros spanned at `span`, so they give the place of the user's token
/// there (a variant, say) rather than of the macro call.
pub(crate) fn here_at(span: Span) -> TokenStream {
    let location = location(span);
    quote_spanned! {span=>
        #location {
            file: ::core::file!(),
            line: ::core::line!(),
            column: ::core::column!(),
        }
    }
}

#[cfg(test)]
mod tests {
    use proc_macro2::Span;

    #[test]
    fn paths_are_absolute() {
        let span = Span::call_site();
        assert_eq!(
            super::serialize(span).to_string(),
            ":: gamewire :: __private :: serde :: Serialize"
        );
        assert_eq!(super::debug(span).to_string(), ":: core :: fmt :: Debug");
        assert!(super::here().to_string().contains(":: core :: file !"));
    }
}
