//! One delivery attempt: the signed POST of one event to a webhook's URL.
//!
//! The body is the event as `jammi events` prints it. The headers carry the webhook, the
//! event id (what a receiver dedupes by), a delivery id unique per attempt, the time of
//! the attempt (seconds since the Unix epoch) and
//! `Jammi-Signature: sha256=<hex HMAC-SHA256 of "{delivery id}.{timestamp}.{body}">` keyed
//! with the webhook's secret: a receiver recomputes it, compares in constant time, and
//! refuses a timestamp too far from its clock (a replay).
//!
//! The client goes only to the URL: no redirect is followed and no proxy from the
//! environment is used.

use std::time::{Duration, Instant, SystemTime};

use jammi_catalog::{Attempt, Event, HeldWebhook};
use ring::hmac;

/// How much of a refusal's body is kept in the record of the attempt.
const ERROR_BODY_CHARS: usize = 200;

/// The client every attempt of a server uses (connections are reused per host).
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("jammi/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the webhook client: {e}"))
}

/// The signature of a delivery: hex HMAC-SHA256 over `{delivery_id}.{timestamp}.{body}`.
pub fn signature(secret: &str, delivery_id: &str, timestamp: u64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut context = hmac::Context::with_key(&key);
    context.update(format!("{delivery_id}.{timestamp}.").as_bytes());
    context.update(body);
    context
        .sign()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// POSTs `event` to the held webhook once, and says what happened.
pub async fn attempt(client: &reqwest::Client, held: &HeldWebhook, event: &Event) -> Attempt {
    let body = event.to_json().to_string().into_bytes();
    let delivery_id = uuid::Uuid::new_v4().to_string();
    let timestamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let signature = signature(held.secret(), &delivery_id, timestamp, &body);
    let started = Instant::now();
    let sent = client
        .post(&held.webhook.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Jammi-Webhook-Id", &held.webhook.webhook_id)
        .header("Jammi-Event-Id", event.event_id.to_string())
        .header("Jammi-Delivery-Id", &delivery_id)
        .header("Jammi-Timestamp", timestamp.to_string())
        .header("Jammi-Signature", format!("sha256={signature}"))
        .body(body)
        .send()
        .await;
    let (status_code, error) = match sent {
        Ok(response) => {
            let status = response.status();
            if status.is_success() {
                (Some(status.as_u16()), None)
            } else {
                let said = refusal_text(response).await;
                (Some(status.as_u16()), Some(format!("HTTP {status}{said}")))
            }
        }
        Err(e) => (None, Some(describe(&e))),
    };
    Attempt {
        delivery_id,
        event_id: event.event_id,
        status_code,
        error,
        duration: started.elapsed(),
    }
}

/// The start of a refusal's body, for the record (`: …`), or nothing.
async fn refusal_text(mut response: reqwest::Response) -> String {
    match response.chunk().await {
        Ok(Some(chunk)) => {
            let text: String = String::from_utf8_lossy(&chunk)
                .chars()
                .filter(|c| !c.is_control())
                .take(ERROR_BODY_CHARS)
                .collect();
            if text.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", text.trim())
            }
        }
        _ => String::new(),
    }
}

/// A failed request in words, without its URL (whose query may hold a credential).
fn describe(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "no answer within the timeout"
    } else if error.is_connect() {
        "cannot connect"
    } else if error.is_redirect() {
        "redirected (redirects are not followed)"
    } else {
        "the request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_delivery_timestamp_and_body() {
        // Computed with Python's hmac module, as a receiver would.
        assert_eq!(
            signature("whsec_test", "d-1", 1_700_000_000, br#"{"a":1}"#),
            "5dbb9249a8ae1dbe9518af5dc7acb563ca7b9b21e9d5085b36a75224767304d9"
        );
    }
}
