//! Parse stage of `#[handler]`: the `Enum::Variant` argument and the
//! parameter types.

use proc_macro2::{Span, TokenStream};
use syn::parse::{ParseStream, Parser};

use super::Handler;
use crate::diag::{Diag, pretty};
use crate::sig::ItemFnTokens;

/// The message for a missing or malformed argument.
const EXPECTED_VARIANT: &str = "expected `Enum::Variant`, e.g. #[handler(GameMessage::Ping)]";

/// Reads `#[handler(args)]` on `func`. Returns `None` when the argument is
/// unusable (the error is recorded).
pub(crate) fn handler<'a>(
    diag: &Diag,
    args: TokenStream,
    func: &'a ItemFnTokens,
) -> Option<Handler<'a>> {
    let (protocol, variant) = target(diag, args)?;
    let params = func
        .sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            syn::FnArg::Typed(typed) => Some(&*typed.ty),
            // reported by validate
            syn::FnArg::Receiver(_) => None,
        })
        .collect();
    Some(Handler {
        func,
        protocol,
        variant,
        params,
    })
}

/// Splits `Enum::Variant` into the enum path and the variant ident.
fn target(diag: &Diag, args: TokenStream) -> Option<(syn::Path, syn::Ident)> {
    if args.is_empty() {
        diag.error_at(Span::call_site(), EXPECTED_VARIANT);
        return None;
    }
    let parser = |input: ParseStream<'_>| {
        let path: syn::Path = input.parse()?;
        let rest: TokenStream = input.parse()?;
        Ok((path, rest))
    };
    let (mut path, rest) = match parser.parse2(args) {
        Ok(parsed) => parsed,
        Err(error) => {
            diag.error_at(error.span(), EXPECTED_VARIANT);
            return None;
        }
    };
    if !rest.is_empty() {
        diag.error(
            &rest,
            format_args!(
                "unexpected `{}`; #[handler] takes exactly one `Enum::Variant`",
                pretty(&rest)
            ),
        );
    }
    if let Some(segment) = path.segments.iter().find(|s| !s.arguments.is_none()) {
        diag.error(
            &segment.arguments,
            "generic arguments are not supported here; write `Enum::Variant`",
        );
        return None;
    }
    if path.segments.len() < 2 {
        diag.error(
            &path,
            format_args!(
                "expected `Enum::Variant`, found `{}`; name the variant with its enum",
                pretty(&path)
            ),
        );
        return None;
    }
    let variant = path.segments.pop()?.into_value().ident;
    path.segments.pop_punct();
    Some((path, variant))
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn run(args: TokenStream) -> (Option<(String, String)>, Vec<String>) {
        let diag = Diag::new();
        let target = target(&diag, args).map(|(p, v)| (pretty(&p), v.to_string()));
        let errors = match diag.finish() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        };
        (target, errors)
    }

    #[test]
    fn splits_enum_and_variant() {
        assert_eq!(
            run(quote!(GameMessage::CustomCommand)),
            (Some(("GameMessage".into(), "CustomCommand".into())), vec![])
        );
        assert_eq!(
            run(quote!(crate::proto::Chat::Send)),
            (Some(("crate::proto::Chat".into(), "Send".into())), vec![])
        );
    }

    #[test]
    fn argument_errors() {
        assert_eq!(run(quote!()).1, [EXPECTED_VARIANT]);
        assert_eq!(run(quote!("Ping")).1, [EXPECTED_VARIANT]);
        assert_eq!(
            run(quote!(Ping)).1,
            ["expected `Enum::Variant`, found `Ping`; name the variant with its enum"]
        );
        assert_eq!(
            run(quote!(E::A, E::B)).1,
            ["unexpected `, E::B`; #[handler] takes exactly one `Enum::Variant`"]
        );
        assert_eq!(
            run(quote!(E::<u8>::A)).1,
            ["generic arguments are not supported here; write `Enum::Variant`"]
        );
    }

    #[test]
    fn parameter_types_are_collected() {
        let func: ItemFnTokens = syn::parse_quote! {
            async fn f(cmd: Cmd, (a, b): State<(u8, u8)>, _: Session) {}
        };
        let diag = Diag::new();
        let handler = handler(&diag, quote!(E::A), &func).unwrap();
        diag.finish().unwrap();
        let params: Vec<String> = handler.params.iter().map(|t| pretty(*t)).collect();
        assert_eq!(params, ["Cmd", "State<(u8, u8)>", "Session"]);
    }
}
