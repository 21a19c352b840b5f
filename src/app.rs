//! Shared state handed to every request handler.

use std::sync::Arc;

use crate::{
    auth::{TokenVerifier, mint::KeyRefresher},
    clock::SharedClock,
    config::Config,
    rooms::Registry,
};

/// Everything a handler may need. Built once at startup; cheap to share behind an `Arc`.
pub struct AppState {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// Live rooms.
    pub registry: Registry,
    /// Verifies access tokens against `config.keys`.
    pub verifier: Arc<TokenVerifier>,
    /// Wall clock (token times, creation times).
    pub clock: SharedClock,
    /// Signalling sessions still running (upgraded sockets are outside axum's graceful
    /// shutdown, so the server counts them to wait for their leaves to be written).
    pub sessions: Arc<std::sync::atomic::AtomicUsize>,
}

impl AppState {
    /// State for `config`, reading time from `clock`.
    pub fn new(config: Config, clock: SharedClock) -> Self {
        let refresher = Arc::new(KeyRefresher::new(&config.keys, Arc::clone(&clock)));
        let registry = crate::rooms::Registry::new(config.room.clone(), Arc::clone(&clock), refresher);
        let verifier = Arc::new(TokenVerifier::new(config.keys.clone()));
        Self { config: Arc::new(config), registry, verifier, clock, sessions: Arc::default() }
    }
}
