//! One delivery: sign, POST, retry.
//!
//! As LiveKit's notifier: `Authorization: <JWT>` (no `Bearer `) signed with the webhook key,
//! carrying the body's SHA-256 (standard base64) as the `sha256` claim; `Content-Type:
//! application/webhook+json`. Retried on connection errors, timeouts, 429 and 5xx other than
//! 501, with exponential backoff (doubling from `retry_base`, at most 30 s, ±20 % jitter),
//! five attempts in all. Any other answer counts as delivered (a 4xx will not get better).

use std::time::Duration;

use base64::Engine as _;
use rand::Rng as _;
use sha2::Digest as _;

use crate::{
    auth::{claims::RawClaims, mint::TokenMinter},
    clock::SharedClock,
    proto,
};

/// Attempts per event, the first included.
const ATTEMPTS: u32 = 5;
/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// One attempt may take this long.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Signs and sends events.
pub struct Sender {
    api_key: String,
    secret: String,
    clock: SharedClock,
    retry_base: Duration,
    client: reqwest::Client,
}

impl Sender {
    pub fn new(api_key: String, secret: String, clock: SharedClock, retry_base: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            // LiveKit's notifier says "LiveKit"; receivers may filter on it.
            .user_agent("LiveKit")
            .build()
            .unwrap_or_default();
        Self { api_key, secret, clock, retry_base, client }
    }

    /// Delivers `event` to `url`, retrying as above. `Err` says why it was given up.
    pub async fn deliver(&self, url: &str, event: &proto::WebhookEvent) -> Result<(), String> {
        let body = super::encode::body(event).map_err(|e| format!("encoding: {e}"))?;
        let sha = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&body));
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(self.backoff(attempt)).await;
            }
            let token = self.token(&sha).map_err(|e| format!("signing: {e}"))?;
            let sent = self
                .client
                .post(url)
                .header(http::header::AUTHORIZATION, token)
                .header(http::header::CONTENT_TYPE, "application/webhook+json")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(resp) if retryable(resp.status()) => last = format!("HTTP {}", resp.status().as_u16()),
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            tracing::debug!(event_id = %event.id, url, attempt, error = %last, "webhook attempt failed");
        }
        Err(format!("{ATTEMPTS} attempts failed; last: {last}"))
    }

    fn token(&self, sha256: &str) -> Result<String, jsonwebtoken::errors::Error> {
        let now = self.clock.now_secs();
        let claims = RawClaims {
            iss: Some(self.api_key.clone()),
            iat: Some(now),
            nbf: Some(now),
            exp: Some(now + 300),
            sha256: Some(sha256.to_string()),
            ..Default::default()
        };
        TokenMinter::sign(&claims, &self.secret)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.retry_base.saturating_mul(1 << (attempt - 1).min(16)).min(MAX_BACKOFF);
        let jitter = rand::rng().random_range(0.8..1.2);
        base.mul_f64(jitter).min(MAX_BACKOFF)
    }
}

/// Connection trouble is retried elsewhere; these statuses are retried too.
fn retryable(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || (status.is_server_error() && status != reqwest::StatusCode::NOT_IMPLEMENTED)
}
