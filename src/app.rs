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
    /// The webhook sender, when receivers are configured.
    pub webhooks: Option<Arc<crate::webhooks::Notifier>>,
    /// Signalling sessions still running (upgraded sockets are outside axum's graceful
    /// shutdown, so the server counts them to wait for their leaves to be written).
    pub sessions: Arc<std::sync::atomic::AtomicUsize>,
}

impl AppState {
    /// State for `config`, reading time from `clock`.
    pub fn new(config: Config, clock: SharedClock) -> Self {
        let refresher = Arc::new(KeyRefresher::new(&config.keys, Arc::clone(&clock)));
        let webhooks = crate::webhooks::Notifier::start(&config.webhook, &config.keys, Arc::clone(&clock));
        let events: Arc<dyn crate::rooms::events::EventSink> = match &webhooks {
            Some(w) => Arc::clone(w) as _,
            None => Arc::new(crate::rooms::events::NoEvents),
        };
        let registry = crate::rooms::Registry::with_events(config.room.clone(), Arc::clone(&clock), refresher, events);
        let verifier = Arc::new(TokenVerifier::new(config.keys.clone()));
        Self { config: Arc::new(config), registry, verifier, clock, webhooks, sessions: Arc::default() }
    }
}
