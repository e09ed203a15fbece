//! Who is calling: the scope of the call's bearer token (SPEC §11).
//!
//! Every call carries `authorization: Bearer <token>`. Clients that only speak
//! username/password send a Basic handshake whose password is the token; the handshake
//! answers with the bearer header they then send. A missing, malformed, unknown or revoked
//! token is `UNAUTHENTICATED`, and the message never tells which.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use jammi_catalog::{Scope, Tokens};
use tonic::Status;
use tonic::metadata::MetadataMap;

/// Basic credentials as Go clients (unpadded) and Rust clients (padded) send them.
const BASIC: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub fn unauthenticated() -> Status {
    Status::unauthenticated("a valid bearer token is required (jammi token create)")
}

/// The scope of the call's bearer token.
pub async fn scope_of_call(tokens: &Tokens, metadata: &MetadataMap) -> Result<Scope, Status> {
    let token = header(metadata)
        .and_then(|value| credentials(value, "Bearer "))
        .ok_or_else(unauthenticated)?;
    check(tokens, token.trim()).await
}

/// The token a Basic handshake presents as its password (the username is ignored).
pub fn basic_password(metadata: &MetadataMap) -> Result<String, Status> {
    let encoded = header(metadata)
        .and_then(|value| credentials(value, "Basic "))
        .ok_or_else(unauthenticated)?;
    let decoded = BASIC
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(unauthenticated)?;
    let (_user, password) = decoded.split_once(':').ok_or_else(unauthenticated)?;
    Ok(password.to_owned())
}

/// The scope of `token`, or `UNAUTHENTICATED`.
pub async fn check(tokens: &Tokens, token: &str) -> Result<Scope, Status> {
    match tokens.authenticate(token).await {
        Ok(Some(scope)) => Ok(scope),
        Ok(None) => Err(unauthenticated()),
        Err(e) => Err(Status::unavailable(format!("cannot check the token: {e}"))),
    }
}

/// What follows the authentication `scheme` (matched without regard to case, as HTTP
/// does) in `value`.
fn credentials<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let prefix = value.get(..scheme.len())?;
    prefix
        .eq_ignore_ascii_case(scheme)
        .then(|| &value[scheme.len()..])
}

fn header(metadata: &MetadataMap) -> Option<&str> {
    metadata.get("authorization")?.to_str().ok()
}
