//! Webhooks: room events POSTed to the app's backend, signed so LiveKit's `WebhookReceiver`s
//! verify them, in order per room, retried, and never dropped without a trace.
//!
//! Flow: a room emits an event under its lock ([`crate::rooms::events`]), so events of one
//! room enter [`Notifier`]'s bounded intake in the order they happened. One dispatcher task
//! reads the intake and hands each event to a *lane* per (receiver URL, room): a bounded queue
//! and a task that delivers its events one at a time, retrying each until it is delivered or
//! given up. Rooms never wait on a receiver, and a slow receiver or room holds up only its
//! own lanes. Whatever is dropped (intake full, lane full, too old, retries exhausted) is
//! counted in [`Stats`] and logged with the event id.

mod deliver;
mod encode;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{sync::mpsc, task::JoinSet, time::Instant};

use crate::{
    clock::SharedClock,
    config::{Keys, WebhookConfig},
    ids::random_id,
    proto,
    rooms::events::{EventSink, names},
};

/// Events waiting for the dispatcher, all rooms together.
const INTAKE: usize = 10_000;
/// A lane with nothing to send for this long ends (a new event starts it again).
const LANE_IDLE: Duration = Duration::from_secs(60);

/// What happened to events, since start. Every event emitted ends in exactly one of these
/// per receiver, except `filtered` (once per event).
#[derive(Debug, Default)]
pub struct Stats {
    /// Delivered (the receiver answered, with anything but a retryable error).
    pub delivered: AtomicU64,
    /// Not sent: the receiver filter excludes the event.
    pub filtered: AtomicU64,
    /// Dropped because a queue was full (the intake, or a lane).
    pub dropped_full: AtomicU64,
    /// Dropped because the event waited longer than `max_age` before it could be sent.
    pub dropped_expired: AtomicU64,
    /// Given up after the last retry.
    pub failed: AtomicU64,
}

impl Stats {
    fn bump(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Everything dropped or failed so far.
    pub fn lost(&self) -> u64 {
        self.dropped_full.load(Ordering::Relaxed)
            + self.dropped_expired.load(Ordering::Relaxed)
            + self.failed.load(Ordering::Relaxed)
    }
}

/// An event on its way, with when it was queued.
#[derive(Debug, Clone)]
struct Queued {
    event: Arc<proto::WebhookEvent>,
    room: String,
    at: Instant,
}

enum Intake {
    Event(Queued),
    /// Stop taking events; deliver what is queued.
    Drain,
}

/// The webhook sender: an [`EventSink`] for rooms, and the tasks that deliver.
pub struct Notifier {
    intake: mpsc::Sender<Intake>,
    config: WebhookConfig,
    clock: SharedClock,
    stats: Arc<Stats>,
    done: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").field("urls", &self.config.urls).finish_non_exhaustive()
    }
}

impl Notifier {
    /// Starts delivering to `config.urls`, signing with `config.api_key`'s secret. `None` when
    /// no receiver is configured (or the key is missing, which config validation rules out).
    pub fn start(config: &WebhookConfig, keys: &Keys, clock: SharedClock) -> Option<Arc<Self>> {
        if config.urls.is_empty() {
            return None;
        }
        let secret = keys.secret(&config.api_key)?.to_string();
        if tokio::runtime::Handle::try_current().is_err() {
            tracing::error!("webhooks need the async runtime; none is running, so none will be sent");
            return None;
        }
        let (intake, rx) = mpsc::channel(INTAKE);
        let stats = Arc::new(Stats::default());
        let sender = deliver::Sender::new(config.api_key.clone(), secret, Arc::clone(&clock), config.retry_base);
        let dispatcher = Dispatcher { config: config.clone(), sender: Arc::new(sender), stats: Arc::clone(&stats) };
        let done = tokio::spawn(dispatcher.run(rx));
        tracing::info!(urls = ?config.urls, "webhooks on");
        Some(Arc::new(Self { intake, config: config.clone(), clock, stats, done: parking_lot::Mutex::new(Some(done)) }))
    }

    /// Counters of what happened to events.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether the filter lets `event` through. LiveKit's rule (include wins over exclude),
    /// plus: Usher's extra events go only to receivers that include them by name.
    pub fn allows(&self, event: &str) -> bool {
        let c = &self.config;
        if !c.include_events.is_empty() {
            return c.include_events.iter().any(|e| e == event);
        }
        !names::EXTRAS.contains(&event) && !c.exclude_events.iter().any(|e| e == event)
    }

    /// Stops taking events and gives queued ones up to `grace` to be delivered.
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self.intake.send(Intake::Drain).await;
        let done = self.done.lock().take();
        if let Some(done) = done
            && tokio::time::timeout(grace, done).await.is_err()
        {
            tracing::warn!(lost = self.stats.lost(), "webhook events still queued at shutdown were not delivered");
        }
    }
}

impl EventSink for Notifier {
    fn emit(&self, mut event: proto::WebhookEvent) {
        if !self.allows(&event.event) {
            Stats::bump(&self.stats.filtered);
            return;
        }
        event.id = random_id("EV_");
        event.created_at = self.clock.now_secs();
        let room = event.room.as_ref().map(|r| r.name.clone()).unwrap_or_default();
        let id = event.id.clone();
        let queued = Queued { event: Arc::new(event), room, at: Instant::now() };
        if self.intake.try_send(Intake::Event(queued)).is_err() {
            let total = Stats::bump(&self.stats.dropped_full);
            tracing::warn!(event_id = %id, dropped_total = total, "webhook intake full; event dropped");
        }
    }
}

/// Reads the intake and feeds the lanes.
struct Dispatcher {
    config: WebhookConfig,
    sender: Arc<deliver::Sender>,
    stats: Arc<Stats>,
}

impl Dispatcher {
    async fn run(self, mut rx: mpsc::Receiver<Intake>) {
        let mut lanes: HashMap<(usize, String), mpsc::Sender<Queued>> = HashMap::new();
        let mut tasks = JoinSet::new();
        let depth = usize::try_from(self.config.max_depth.max(1)).unwrap_or(200);
        while let Some(Intake::Event(queued)) = rx.recv().await {
            for (u, url) in self.config.urls.iter().enumerate() {
                let key = (u, queued.room.clone());
                let mut attempt = queued.clone();
                for _ in 0..2 {
                    let lane = lanes.entry(key.clone()).or_insert_with(|| {
                        let (tx, lane_rx) = mpsc::channel(depth);
                        let lane = Lane {
                            url: url.clone(),
                            sender: Arc::clone(&self.sender),
                            stats: Arc::clone(&self.stats),
                            max_age: self.config.max_age,
                        };
                        tasks.spawn(lane.run(lane_rx));
                        tx
                    });
                    match lane.try_send(attempt) {
                        Ok(()) => break,
                        Err(mpsc::error::TrySendError::Full(q)) => {
                            let total = Stats::bump(&self.stats.dropped_full);
                            tracing::warn!(event_id = %q.event.id, url = %url, room = %q.room, dropped_total = total,
                                "webhook queue full for this receiver and room; event dropped");
                            break;
                        }
                        // The lane ended while idle: start a new one and hand it the event.
                        Err(mpsc::error::TrySendError::Closed(q)) => {
                            lanes.remove(&key);
                            attempt = q;
                        }
                    }
                }
            }
            // Forget lanes that ended.
            while tasks.try_join_next().is_some() {}
            lanes.retain(|_, tx| !tx.is_closed());
        }
        // Drain: no more events; each lane finishes what it holds.
        drop(lanes);
        while tasks.join_next().await.is_some() {}
    }
}

/// Delivers one room's events to one receiver, in order.
struct Lane {
    url: String,
    sender: Arc<deliver::Sender>,
    stats: Arc<Stats>,
    max_age: Duration,
}

impl Lane {
    async fn run(self, mut rx: mpsc::Receiver<Queued>) {
        loop {
            let queued = match tokio::time::timeout(LANE_IDLE, rx.recv()).await {
                Ok(Some(q)) => q,
                // Closed (drain) or idle: done. Events arriving later start a new lane.
                Ok(None) | Err(_) => return,
            };
            let id = &queued.event.id;
            if queued.at.elapsed() > self.max_age {
                let total = Stats::bump(&self.stats.dropped_expired);
                tracing::warn!(event_id = %id, url = %self.url, dropped_total = total,
                    "webhook event waited longer than max_age; dropped");
                continue;
            }
            match self.sender.deliver(&self.url, &queued.event).await {
                Ok(()) => {
                    Stats::bump(&self.stats.delivered);
                }
                Err(e) => {
                    let total = Stats::bump(&self.stats.failed);
                    tracing::warn!(event_id = %id, url = %self.url, error = %e, failed_total = total,
                        "webhook delivery given up");
                }
            }
        }
    }
}
