//! Standard Webhooks signatures (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
//!
//! Signed content is `"{id}.{timestamp}.{raw body}"`, HMAC-SHA256 keyed with the decoded `whsec_` secret,
//! sent as space-separated `v1,<base64>` entries so a sender can rotate secrets; the receiver may also hold
//! several secrets (its own rotation). Any one valid pair passes; comparison is constant-time.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Tolerance between the sender's timestamp and our clock, both ways.
pub const TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("header {0} is missing")]
    MissingHeader(&'static str),
    #[error("webhook-id must be 1-128 characters without '.'")]
    BadId,
    #[error("webhook-timestamp must be Unix seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is more than 300 s away from the receiver's clock")]
    StaleTimestamp,
    #[error("webhook-signature holds no valid v1 signature")]
    NoValidSignature,
}

impl SignatureError {
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::MissingHeader(_) => "missing_signature_header",
            SignatureError::BadId => "invalid_webhook_id",
            SignatureError::BadTimestamp => "invalid_timestamp",
            SignatureError::StaleTimestamp => "timestamp_out_of_tolerance",
            SignatureError::NoValidSignature => "invalid_signature",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("store-events secret #{index} is not a valid whsec_<base64> secret")]
pub struct SecretFormatError {
    pub index: usize,
}

/// The receiver's secrets. Several are allowed while one is being rotated out.
#[derive(Clone)]
pub struct WebhookVerifier {
    keys: Vec<HmacSha256>,
}

impl std::fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "WebhookVerifier({} keys)", self.keys.len())
    }
}

pub fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    let raw = secret.trim();
    let b64 = raw.strip_prefix("whsec_").unwrap_or(raw);
    let key = B64.decode(b64).ok()?;
    (!key.is_empty()).then_some(key)
}

impl WebhookVerifier {
    /// `secrets`: one or more `whsec_<base64>` values (whitespace- or comma-separated in configuration).
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Result<Self, SecretFormatError> {
        let mut keys = Vec::new();
        for (index, secret) in secrets.iter().enumerate() {
            let key = decode_secret(secret.as_ref()).ok_or(SecretFormatError { index })?;
            keys.push(HmacSha256::new_from_slice(&key).map_err(|_| SecretFormatError { index })?);
        }
        if keys.is_empty() {
            return Err(SecretFormatError { index: 0 });
        }
        Ok(Self { keys })
    }

    pub fn from_config(value: &str) -> Result<Self, SecretFormatError> {
        let parts: Vec<&str> = value
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .collect();
        Self::new(&parts)
    }

    /// Verifies the three headers against the raw body. Returns the `webhook-id` on success.
    pub fn verify<'a>(
        &self,
        id: Option<&'a str>,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now_seconds: i64,
    ) -> Result<&'a str, SignatureError> {
        let id = id.ok_or(SignatureError::MissingHeader("webhook-id"))?;
        let timestamp = timestamp.ok_or(SignatureError::MissingHeader("webhook-timestamp"))?;
        let signature = signature.ok_or(SignatureError::MissingHeader("webhook-signature"))?;
        if id.is_empty() || id.len() > 128 || id.contains('.') {
            return Err(SignatureError::BadId);
        }
        let ts: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| SignatureError::BadTimestamp)?;
        // Checked: `ts` is anything a sender put in a header (i64::MIN overflowed the subtraction and panicked).
        let skew = now_seconds.checked_sub(ts).and_then(i64::checked_abs);
        if skew.is_none_or(|s| s > TOLERANCE_SECONDS) {
            return Err(SignatureError::StaleTimestamp);
        }
        let candidates: Vec<Vec<u8>> = signature
            .split(' ')
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|b64| B64.decode(b64).ok())
            .collect();
        if candidates.is_empty() {
            return Err(SignatureError::NoValidSignature);
        }
        for key in &self.keys {
            let mut mac = key.clone();
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.trim().as_bytes());
            mac.update(b".");
            mac.update(body);
            let expected = mac.finalize().into_bytes();
            // Check every candidate without early exit on the content; `ct_eq` is constant-time per pair.
            let mut ok = subtle::Choice::from(0u8);
            for candidate in &candidates {
                if candidate.len() == expected.len() {
                    ok |= subtle::ConstantTimeEq::ct_eq(candidate.as_slice(), expected.as_slice());
                }
            }
            if bool::from(ok) {
                return Ok(id);
            }
        }
        Err(SignatureError::NoValidSignature)
    }
}

/// Signs like a Standard Webhooks sender (the local run, tests and benchmarks use it).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = decode_secret(secret).expect("valid whsec_ secret");
    let mut mac = HmacSha256::new_from_slice(&key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const OTHER: &str = "whsec_c2VjcmV0LW51bWJlci10d28tZm9yLXJvdGF0aW9u";

    #[test]
    fn valid_signature_passes() {
        let v = WebhookVerifier::new(&[SECRET]).unwrap();
        let sig = sign(SECRET, "evt_1", 1000, b"{}");
        assert_eq!(
            v.verify(Some("evt_1"), Some("1000"), Some(&sig), b"{}", 1000),
            Ok("evt_1")
        );
    }

    #[test]
    fn spec_example_vector_verifies() {
        // Example from the Standard Webhooks specification.
        let v = WebhookVerifier::new(&[SECRET]).unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert!(v
            .verify(
                Some("msg_p5jXN8AQM9LWM0D4loKWxJek"),
                Some("1614265330"),
                Some(sig),
                body,
                1614265330
            )
            .is_ok());
    }

    #[test]
    fn wrong_body_or_secret_fails() {
        let v = WebhookVerifier::new(&[SECRET]).unwrap();
        let sig = sign(OTHER, "evt_1", 1000, b"{}");
        assert_eq!(
            v.verify(Some("evt_1"), Some("1000"), Some(&sig), b"{}", 1000),
            Err(SignatureError::NoValidSignature)
        );
        let sig = sign(SECRET, "evt_1", 1000, b"{}");
        assert_eq!(
            v.verify(Some("evt_1"), Some("1000"), Some(&sig), b"{ }", 1000),
            Err(SignatureError::NoValidSignature)
        );
        // The id and timestamp are covered by the signature too.
        assert_eq!(
            v.verify(Some("evt_2"), Some("1000"), Some(&sig), b"{}", 1000),
            Err(SignatureError::NoValidSignature)
        );
    }

    #[test]
    fn stale_and_future_timestamps_fail() {
        let v = WebhookVerifier::new(&[SECRET]).unwrap();
        let sig = sign(SECRET, "evt_1", 1000, b"{}");
        assert_eq!(
            v.verify(Some("evt_1"), Some("1000"), Some(&sig), b"{}", 1301),
            Err(SignatureError::StaleTimestamp)
        );
        assert_eq!(
            v.verify(Some("evt_1"), Some("1000"), Some(&sig), b"{}", 699),
            Err(SignatureError::StaleTimestamp)
        );
        assert!(v
            .verify(Some("evt_1"), Some("1000"), Some(&sig), b"{}", 1300)
            .is_ok());
    }

    #[test]
    fn extreme_timestamps_are_out_of_tolerance_not_a_panic() {
        let v = WebhookVerifier::new(&[SECRET]).unwrap();
        for (ts, now) in [
            (i64::MIN, 1_795_867_200),
            (i64::MAX, 1_795_867_200),
            (i64::MIN, i64::MAX),
            (i64::MAX, i64::MIN),
            (i64::MIN + 1, 0),
        ] {
            let t = ts.to_string();
            assert_eq!(
                v.verify(Some("evt_1"), Some(&t), Some("v1,Zm9v"), b"{}", now),
                Err(SignatureError::StaleTimestamp),
                "{ts} at {now}"
            );
        }
        // Past i64: not a number of seconds at all.
        assert_eq!(
            v.verify(
                Some("a"),
                Some("-9223372036854775809"),
                Some("v1,x"),
                b"",
                1
            ),
            Err(SignatureError::BadTimestamp)
        );
    }

    #[test]
    fn rotation_on_both_sides() {
        // Sender sends two signatures, one with a retired secret.
        let v = WebhookVerifier::new(&[SECRET]).unwrap();
        let header = format!(
            "{} {}",
            sign(OTHER, "evt_1", 1000, b"{}"),
            sign(SECRET, "evt_1", 1000, b"{}")
        );
        assert!(v
            .verify(Some("evt_1"), Some("1000"), Some(&header), b"{}", 1000)
            .is_ok());
        // Receiver holds old and new secrets.
        let v = WebhookVerifier::from_config(&format!("{OTHER} {SECRET}")).unwrap();
        let sig = sign(SECRET, "evt_1", 1000, b"{}");
        assert!(v
            .verify(Some("evt_1"), Some("1000"), Some(&sig), b"{}", 1000)
            .is_ok());
    }

    #[test]
    fn malformed_headers_are_named() {
        let v = WebhookVerifier::new(&[SECRET]).unwrap();
        assert_eq!(
            v.verify(None, Some("1"), Some("v1,x"), b"", 1),
            Err(SignatureError::MissingHeader("webhook-id"))
        );
        assert_eq!(
            v.verify(Some("a.b"), Some("1"), Some("v1,x"), b"", 1),
            Err(SignatureError::BadId)
        );
        assert_eq!(
            v.verify(Some("a"), Some("soon"), Some("v1,x"), b"", 1),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            v.verify(Some("a"), Some("1"), Some("v2,abc"), b"", 1),
            Err(SignatureError::NoValidSignature)
        );
        assert!(WebhookVerifier::from_config("whsec_").is_err());
        assert!(WebhookVerifier::from_config("").is_err());
    }
}
