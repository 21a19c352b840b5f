//! Webhooks: room events POSTed to the app's backend, signed so LiveKit's `WebhookReceiver`s
//! verify them, in order per room, retried, and never dropped without a trace.
//!
//! Flow: a room emits an event under its lock ([`crate::rooms::events`]), so events of one
//! room enter [`Notifier`]'s bounded intake in the order they happened. One dispatcher task
//! reads the intake and hands each event to a *lane* per (receiver URL, room): a bounded queue
//! and a task that delivers its events one at a time, retrying each until it is delivered or
//! given up. A lane ends after its room's `room_finished`; a new room of the same name gets a
//! new lane that starts once the old one is through. Rooms never wait on a receiver, and a
//! slow receiver or room holds up only its own lanes. Whatever is dropped (intake full, lane
//! full, past its deadline, retries exhausted, shutdown) is counted in [`Stats`] and logged
//! with the event id; a report every [`REPORT_EVERY`] sums up what was lost since the last.

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

use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};

use crate::{
    clock::SharedClock,
    config::{Keys, WebhookConfig},
    ids::random_id,
    proto,
    rooms::events::{EventSink, names},
};

/// Events waiting for the dispatcher, all rooms together.
const INTAKE: usize = 10_000;
/// A lane with nothing to send for this long ends (LiveKit reaps idle per-room queues after
/// 5 minutes); the room's next event starts a new one. Bounds the lanes of rooms whose
/// `room_finished` never came through (dropped when the intake was full).
const LANE_IDLE: Duration = Duration::from_secs(300);
/// After shutdown's grace, how long lanes get to notice they are cancelled.
const CANCEL_WAIT: Duration = Duration::from_secs(1);
/// How often losses since the last report are logged (at `warn`, with the ids refused at the
/// intake: those are not logged one by one, as rooms hand events in under their locks).
const REPORT_EVERY: Duration = Duration::from_secs(10);
/// Ids of intake drops kept for the next report; beyond this only their number is.
const REPORT_IDS: usize = 1_000;

/// What happened to events, since start. An event taken in ends, for each receiver that
/// wants it, in exactly one of `delivered`, `dropped_*` or `failed`; an event refused at the
/// intake (full) counts once in `dropped_full`; `filtered` counts events no receiver wants.
#[derive(Debug, Default)]
pub struct Stats {
    /// Delivered (the receiver answered, with anything but a retryable error).
    pub delivered: AtomicU64,
    /// Not sent: the receiver filter excludes the event.
    pub filtered: AtomicU64,
    /// Dropped because a queue was full (the intake, or a lane).
    pub dropped_full: AtomicU64,
    /// Dropped because `max_age` after it was queued it was still not delivered (waiting, or
    /// between retries): the per-event deadline.
    pub dropped_expired: AtomicU64,
    /// Given up after the last retry.
    pub failed: AtomicU64,
    /// Still queued or being sent when shutdown's grace period ran out.
    pub dropped_shutdown: AtomicU64,
    /// Queued for a receiver and not yet through (a gauge).
    pub pending: AtomicU64,
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
            + self.dropped_shutdown.load(Ordering::Relaxed)
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
    /// The dispatcher task (which ends after every lane); taken by `shutdown`.
    done: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Set when shutdown's grace ran out: every lane stops where it is.
    cancel: watch::Sender<bool>,
    /// Losses to report (see [`REPORT_EVERY`]).
    report: parking_lot::Mutex<Report>,
}

/// What the next loss report says.
#[derive(Debug, Default)]
struct Report {
    /// `Stats::lost` at the last report.
    lost_before: u64,
    /// Ids refused at the intake since the last report (at most [`REPORT_IDS`]).
    refused: Vec<String>,
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
        let (cancel, cancelled) = watch::channel(false);
        let dispatcher =
            Dispatcher { config: config.clone(), sender: Arc::new(sender), stats: Arc::clone(&stats), cancelled };
        let done = tokio::spawn(dispatcher.run(rx));
        tracing::info!(urls = ?config.urls, "webhooks on");
        let notifier = Arc::new(Self {
            intake,
            config: config.clone(),
            clock,
            stats,
            done: parking_lot::Mutex::new(Some(done)),
            cancel,
            report: parking_lot::Mutex::new(Report::default()),
        });
        // Reports until the notifier is gone.
        let weak = Arc::downgrade(&notifier);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REPORT_EVERY).await;
                let Some(notifier) = weak.upgrade() else { break };
                notifier.report_losses();
            }
        });
        Some(notifier)
    }

    /// Logs what was lost since the last report, if anything: the counters, and the ids of
    /// events refused at the intake.
    fn report_losses(&self) {
        let lost = self.stats.lost();
        let (since, refused) = {
            let mut r = self.report.lock();
            let since = lost.saturating_sub(r.lost_before);
            r.lost_before = lost;
            (since, std::mem::take(&mut r.refused))
        };
        if since == 0 {
            return;
        }
        let s = &self.stats;
        tracing::warn!(
            lost_since_last_report = since,
            lost_total = lost,
            dropped_full = s.dropped_full.load(Ordering::Relaxed),
            dropped_expired = s.dropped_expired.load(Ordering::Relaxed),
            failed = s.failed.load(Ordering::Relaxed),
            dropped_shutdown = s.dropped_shutdown.load(Ordering::Relaxed),
            refused_at_intake = ?refused,
            "webhook events were lost"
        );
    }

    /// Counters of what happened to events.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether the filter lets `event` through (see [`allows`]).
    pub fn allows(&self, event: &str) -> bool {
        allows(&self.config, event)
    }

    /// Stops taking events and gives queued ones up to `grace` to be delivered. Whatever is
    /// still queued or being sent then is cancelled and counted in `dropped_shutdown`, once:
    /// the lanes have stopped before the count is taken, so nothing is also counted delivered.
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self.intake.send(Intake::Drain).await;
        let done = self.done.lock().take();
        let Some(mut done) = done else { return };
        if tokio::time::timeout(grace, &mut done).await.is_err() {
            let _ = self.cancel.send(true);
            if tokio::time::timeout(CANCEL_WAIT, done).await.is_err() {
                tracing::warn!("webhook lanes did not stop after being cancelled");
            }
            let left = self.stats.pending.swap(0, Ordering::Relaxed);
            self.stats.dropped_shutdown.fetch_add(left, Ordering::Relaxed);
            tracing::warn!(
                undelivered = left,
                "webhook events still queued when shutdown's grace ran out were dropped"
            );
        }
        self.report_losses();
    }
}

impl EventSink for Notifier {
    fn emit(&self, mut event: proto::WebhookEvent) {
        // Filtered by the dispatcher, which also needs to see `room_finished` to retire lanes.
        event.id = random_id("EV_");
        event.created_at = self.clock.now_secs();
        let room = event.room.as_ref().map(|r| r.name.clone()).unwrap_or_default();
        let id = event.id.clone();
        let queued = Queued { event: Arc::new(event), room, at: Instant::now() };
        match self.intake.try_send(Intake::Event(queued)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                let total = Stats::bump(&self.stats.dropped_full);
                // Under the room's lock: the id goes to the next report, not to the log now,
                // so a flood of drops cannot stall rooms on logging; the first one is logged.
                if total == 1 {
                    tracing::warn!(event_id = %id, "webhook intake full; events are being dropped (see the reports)");
                }
                let mut report = self.report.lock();
                if report.refused.len() < REPORT_IDS {
                    report.refused.push(id);
                }
            }
            // After shutdown took the intake's last events: a room's very last words. Counted
            // as the dispatcher would have: once per receiver that wants it, or as filtered.
            Err(mpsc::error::TrySendError::Closed(Intake::Event(q))) => {
                if self.allows(&q.event.event) {
                    let receivers = u64::try_from(self.config.urls.len()).unwrap_or(u64::MAX);
                    self.stats.dropped_shutdown.fetch_add(receivers, Ordering::Relaxed);
                    tracing::warn!(event_id = %id, "webhook event emitted after shutdown began; dropped");
                } else {
                    Stats::bump(&self.stats.filtered);
                }
            }
            Err(mpsc::error::TrySendError::Closed(Intake::Drain)) => {}
        }
    }
}

/// Reads the intake and feeds the lanes.
struct Dispatcher {
    config: WebhookConfig,
    sender: Arc<deliver::Sender>,
    stats: Arc<Stats>,
    /// Shutdown's "stop now", handed to every lane.
    cancelled: watch::Receiver<bool>,
}

/// A lane's queue and task.
struct LaneHandle {
    tx: mpsc::Sender<Queued>,
    task: tokio::task::JoinHandle<()>,
}

type LaneKey = (usize, String);

impl Dispatcher {
    async fn run(self, mut rx: mpsc::Receiver<Intake>) {
        let mut lanes: HashMap<LaneKey, LaneHandle> = HashMap::new();
        // Lanes of finished rooms still delivering; a new room of the same name waits for its
        // predecessor's lane, so its `room_started` never overtakes the old `room_finished`.
        let mut retired: HashMap<LaneKey, tokio::task::JoinHandle<()>> = HashMap::new();
        loop {
            match rx.recv().await {
                Some(Intake::Event(queued)) => self.dispatch(queued, &mut lanes, &mut retired),
                Some(Intake::Drain) => {
                    // Take what is already queued, then no more.
                    rx.close();
                    while let Some(msg) = rx.recv().await {
                        if let Intake::Event(queued) = msg {
                            self.dispatch(queued, &mut lanes, &mut retired);
                        }
                    }
                    break;
                }
                None => break,
            }
        }
        // Each lane finishes what it holds, then ends.
        let tasks: Vec<_> = lanes.into_values().map(|l| l.task).chain(retired.into_values()).collect();
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Hands one event to its lane for every receiver that wants it.
    fn dispatch(
        &self,
        queued: Queued,
        lanes: &mut HashMap<LaneKey, LaneHandle>,
        retired: &mut HashMap<LaneKey, tokio::task::JoinHandle<()>>,
    ) {
        let finished = queued.event.event == names::ROOM_FINISHED;
        let wanted = allows(&self.config, &queued.event.event);
        if !wanted {
            Stats::bump(&self.stats.filtered);
        }
        for (u, url) in self.config.urls.iter().enumerate() {
            let key = (u, queued.room.clone());
            if wanted {
                self.enqueue(url, &key, queued.clone(), lanes, retired);
            }
            // The room is gone: its lane delivers what it holds and ends.
            if finished && let Some(lane) = lanes.remove(&key) {
                retired.retain(|_, t| !t.is_finished());
                retired.insert(key, lane.task);
            }
        }
    }

    /// Puts `queued` on its lane, starting the lane if there is none (or the last one ended
    /// idle: the new one starts after it, so order holds). A full lane drops the event.
    fn enqueue(
        &self,
        url: &str,
        key: &LaneKey,
        mut queued: Queued,
        lanes: &mut HashMap<LaneKey, LaneHandle>,
        retired: &mut HashMap<LaneKey, tokio::task::JoinHandle<()>>,
    ) {
        for _ in 0..2 {
            if lanes.get(key).is_some_and(|l| l.tx.is_closed())
                && let Some(ended) = lanes.remove(key)
            {
                retired.insert(key.clone(), ended.task);
            }
            if !lanes.contains_key(key) {
                // Amortised pruning of lanes that ended idle and were never needed again. One
                // that closed may still be sending what it held: it is retired, not forgotten,
                // so its room's next lane waits for it and shutdown waits for it.
                if lanes.len().is_power_of_two() {
                    let ended: Vec<_> =
                        lanes.iter().filter(|(_, l)| l.tx.is_closed()).map(|(k, _)| k.clone()).collect();
                    for k in ended {
                        if let Some(l) = lanes.remove(&k) {
                            retired.insert(k, l.task);
                        }
                    }
                    retired.retain(|_, t| !t.is_finished());
                }
                let lane = self.new_lane(url, retired.remove(key));
                lanes.insert(key.clone(), lane);
            }
            let Some(lane) = lanes.get(key) else { return };
            // Counted before the lane can see it: a lane that is through with it at once must
            // find it counted.
            self.stats.pending.fetch_add(1, Ordering::Relaxed);
            match lane.tx.try_send(queued) {
                Ok(()) => return,
                // The lane ended idle just now: once more, on a new lane.
                Err(mpsc::error::TrySendError::Closed(q)) => {
                    self.stats.pending.fetch_sub(1, Ordering::Relaxed);
                    queued = q;
                }
                Err(mpsc::error::TrySendError::Full(q)) => {
                    self.stats.pending.fetch_sub(1, Ordering::Relaxed);
                    queued = q;
                    break;
                }
            }
        }
        let total = Stats::bump(&self.stats.dropped_full);
        tracing::warn!(event_id = %queued.event.id, url = %url, room = %queued.room, dropped_total = total,
            "webhook queue full for this receiver and room; event dropped");
    }

    /// A lane for one receiver and room, starting once `before` (its predecessor) is through.
    fn new_lane(&self, url: &str, before: Option<tokio::task::JoinHandle<()>>) -> LaneHandle {
        let depth = usize::try_from(self.config.max_depth.max(1)).unwrap_or(200);
        let (tx, lane_rx) = mpsc::channel(depth);
        let lane = Lane {
            url: url.to_string(),
            sender: Arc::clone(&self.sender),
            stats: Arc::clone(&self.stats),
            max_age: self.config.max_age,
        };
        let task = tokio::spawn(lane.run(lane_rx, before, self.cancelled.clone()));
        LaneHandle { tx, task }
    }
}

/// LiveKit's filter rule (include wins over exclude), plus: Usher's extra events go only to
/// receivers that include them by name.
fn allows(c: &WebhookConfig, event: &str) -> bool {
    if !c.include_events.is_empty() {
        return c.include_events.iter().any(|e| e == event);
    }
    !names::EXTRAS.contains(&event) && !c.exclude_events.iter().any(|e| e == event)
}

/// Delivers one room's events to one receiver, in order.
struct Lane {
    url: String,
    sender: Arc<deliver::Sender>,
    stats: Arc<Stats>,
    max_age: Duration,
}

impl Lane {
    async fn run(
        self,
        mut rx: mpsc::Receiver<Queued>,
        before: Option<tokio::task::JoinHandle<()>>,
        mut cancelled: watch::Receiver<bool>,
    ) {
        if let Some(before) = before {
            tokio::select! {
                _ = before => {}
                () = cancel(&mut cancelled) => return,
            }
        }
        // Ends when the dispatcher lets go of the lane (room finished, or shutdown) and
        // everything queued is through, after [`LANE_IDLE`] with nothing to do, or when
        // shutdown cancels it (what it holds is then counted by `shutdown`).
        loop {
            let queued = tokio::select! {
                queued = rx.recv() => match queued {
                    Some(q) => q,
                    None => return,
                },
                () = tokio::time::sleep(LANE_IDLE) => {
                    // No more taken; anything that came meanwhile is still delivered.
                    rx.close();
                    continue;
                }
                () = cancel(&mut cancelled) => return,
            };
            tokio::select! {
                // A delivery that completed is counted as delivered, not as cancelled.
                biased;
                () = self.handle(&queued) => {}
                () = cancel(&mut cancelled) => return,
            }
            let _ = self.stats.pending.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    /// Delivers one event by its deadline (`max_age` after it was queued), retrying until
    /// then; counts what happened either way. The deadline keeps a dead receiver from holding
    /// a room's later events behind one event's full round of retries.
    async fn handle(&self, queued: &Queued) {
        let id = &queued.event.id;
        let deadline = queued.at + self.max_age;
        let expired = |waited: &str| {
            let total = Stats::bump(&self.stats.dropped_expired);
            tracing::warn!(event_id = %id, url = %self.url, dropped_total = total,
                "webhook event not delivered within max_age ({waited}); dropped");
        };
        if Instant::now() >= deadline {
            expired("waiting in the queue");
            return;
        }
        match tokio::time::timeout_at(deadline, self.sender.deliver(&self.url, &queued.event)).await {
            Ok(Ok(())) => {
                Stats::bump(&self.stats.delivered);
            }
            Ok(Err(e)) => {
                let total = Stats::bump(&self.stats.failed);
                tracing::warn!(event_id = %id, url = %self.url, error = %e, failed_total = total,
                    "webhook delivery given up");
            }
            Err(_) => expired("sending and retrying"),
        }
    }
}

/// Resolves once shutdown cancels the lanes (never, if the notifier is gone without one).
async fn cancel(cancelled: &mut watch::Receiver<bool>) {
    if cancelled.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}
