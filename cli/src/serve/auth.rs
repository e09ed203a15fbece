//! Who is calling: the grant (scope and access level) of the call's bearer token (SPEC §11,
//! §14).
//!
//! Every call carries `authorization: Bearer <token>`. Clients that only speak
//! username/password send a Basic handshake whose password is the token; the handshake
//! answers with the bearer header they then send. A missing, malformed, unknown, revoked or
//! expired token is `UNAUTHENTICATED`, and the message never tells which.
//!
//! Failures cost little and teach a guesser nothing: an unknown token id presented again is
//! refused from memory (`Tokens`), and a failing call from an address that failed recently
//! waits before its answer, longer the more it failed ([`Throttle`]). Only failing calls
//! wait: a client with a good token behind the same address is never slowed.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use jammi_catalog::{Grant, Tokens};
use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

/// Basic credentials as Go clients (unpadded) and Rust clients (padded) send them.
const BASIC: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub fn unauthenticated() -> Status {
    Status::unauthenticated("a valid bearer token is required (jammi token create)")
}

/// Checks the tokens of calls, and slows down repeated failures.
pub struct Authenticator {
    tokens: Tokens,
    throttle: Mutex<Throttle>,
}

impl Authenticator {
    pub fn new(tokens: Tokens) -> Self {
        Authenticator {
            tokens,
            throttle: Mutex::new(Throttle::default()),
        }
    }

    /// The grant of the call's bearer token, or `UNAUTHENTICATED` (after the address's
    /// penalty, when it failed recently).
    pub async fn grant_of<T>(&self, request: &Request<T>) -> Result<Grant, Status> {
        let token = header(request.metadata()).and_then(|value| credentials(value, "Bearer "));
        match token {
            Some(token) => self.check(request, token.trim()).await,
            None => Err(self.failed(request).await),
        }
    }

    /// The token of a Basic handshake (its password; the username is ignored) and its
    /// grant, or `UNAUTHENTICATED`.
    pub async fn basic<T>(&self, request: &Request<T>) -> Result<(String, Grant), Status> {
        let Some(token) = basic_password(request.metadata()) else {
            return Err(self.failed(request).await);
        };
        let grant = self.check(request, &token).await?;
        Ok((token, grant))
    }

    /// The grant of `token`, or `UNAUTHENTICATED`.
    async fn check<T>(&self, request: &Request<T>, token: &str) -> Result<Grant, Status> {
        match self.tokens.authenticate(token).await {
            Ok(Some(grant)) => Ok(grant),
            Ok(None) => Err(self.failed(request).await),
            Err(e) => Err(Status::unavailable(format!("cannot check the token: {e}"))),
        }
    }

    /// Counts a failure of the request's address and waits its penalty.
    async fn failed<T>(&self, request: &Request<T>) -> Status {
        let peer = request.remote_addr().map(|a| a.ip());
        let penalty = match peer {
            Some(ip) => self
                .throttle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .failure(ip, Instant::now()),
            None => Duration::ZERO,
        };
        if !penalty.is_zero() {
            tokio::time::sleep(penalty).await;
        }
        unauthenticated()
    }
}

/// Failures an address may have within a window before its failing calls wait.
const FREE_FAILURES: u32 = 5;
/// Failures older than this are forgotten.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// The first penalty; each further failure doubles it, up to [`MAX_PENALTY`].
const FIRST_PENALTY: Duration = Duration::from_millis(10);
const MAX_PENALTY: Duration = Duration::from_secs(2);
/// Addresses remembered at most; when that many failed within the window, the memory
/// starts again (which only forgives, never slows a good call).
const ADDRESSES: usize = 65_536;

/// Recent authentication failures by client address.
#[derive(Debug, Default)]
pub struct Throttle {
    /// Failures in the current window, and when the window began.
    failures: HashMap<IpAddr, (u32, Instant)>,
}

impl Throttle {
    /// Records a failure of `ip` at `now`; returns how long its answer waits.
    pub fn failure(&mut self, ip: IpAddr, now: Instant) -> Duration {
        let ip = network(ip);
        if self.failures.len() >= ADDRESSES && !self.failures.contains_key(&ip) {
            self.failures
                .retain(|_, (_, since)| now.saturating_duration_since(*since) < FAILURE_WINDOW);
            if self.failures.len() >= ADDRESSES {
                self.failures.clear();
            }
        }
        let (count, since) = self.failures.entry(ip).or_insert((0, now));
        if now.saturating_duration_since(*since) >= FAILURE_WINDOW {
            (*count, *since) = (0, now);
        }
        *count = count.saturating_add(1);
        penalty(*count)
    }
}

/// The address a failure counts against: an IPv4 client's own (also when written as
/// IPv6), an IPv6 client's /64, all of which one host may hold.
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::from(u64::MAX)))),
        },
        v4 => v4,
    }
}

/// The wait of the `failures`-th failure within a window.
fn penalty(failures: u32) -> Duration {
    match failures.checked_sub(FREE_FAILURES + 1) {
        None => Duration::ZERO,
        Some(doublings) => FIRST_PENALTY
            .saturating_mul(1 << doublings.min(16))
            .min(MAX_PENALTY),
    }
}

/// The token a Basic handshake presents as its password (the username is ignored).
fn basic_password(metadata: &MetadataMap) -> Option<String> {
    let encoded = header(metadata).and_then(|value| credentials(value, "Basic "))?;
    let decoded = BASIC
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())?;
    let (_user, password) = decoded.split_once(':')?;
    Some(password.to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_failures_wait_longer_up_to_a_bound() {
        let mut throttle = Throttle::default();
        let (guesser, neighbour) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let start = Instant::now();
        let waits: Vec<Duration> = (0..20).map(|_| throttle.failure(guesser, start)).collect();
        assert!(waits[..5].iter().all(Duration::is_zero), "{waits:?}");
        assert_eq!(waits[5], FIRST_PENALTY);
        assert_eq!(waits[6], FIRST_PENALTY * 2);
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert_eq!(waits[19], MAX_PENALTY);
        // Another address starts with nothing against it.
        assert_eq!(throttle.failure(neighbour, start), Duration::ZERO);
        // After the window, the guesser does too.
        let later = start + FAILURE_WINDOW;
        assert_eq!(throttle.failure(guesser, later), Duration::ZERO);
    }

    #[test]
    fn an_ipv6_client_counts_as_its_64_network() {
        let mut throttle = Throttle::default();
        let now = Instant::now();
        for i in 0..5u16 {
            let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, i, i, i, i));
            assert_eq!(throttle.failure(ip, now), Duration::ZERO);
        }
        let same_64: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert_eq!(throttle.failure(same_64, now), FIRST_PENALTY);
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(throttle.failure(other_64, now), Duration::ZERO);
        let mapped: IpAddr = "::ffff:10.0.0.9".parse().unwrap();
        throttle.failure(mapped, now);
        assert!(
            throttle
                .failures
                .contains_key(&"10.0.0.9".parse::<IpAddr>().unwrap())
        );
    }

    #[test]
    fn the_memory_of_addresses_is_bounded() {
        let mut throttle = Throttle::default();
        let now = Instant::now();
        for i in 0..(ADDRESSES as u32 + 10) {
            throttle.failure(IpAddr::from(i.to_be_bytes()), now);
            assert!(throttle.failures.len() <= ADDRESSES);
        }
    }
}
