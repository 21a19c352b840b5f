//! Binding listeners and running the service until shutdown.

use std::{net::SocketAddr, sync::Arc};

use tokio::{net::TcpListener, sync::watch, task::JoinSet};

use crate::{app::AppState, clock::SharedClock, config::Config, http};

/// How long open requests may run on after a stop signal.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// A running server: its addresses and a handle to stop it.
pub struct Server {
    addrs: Vec<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<std::io::Result<()>>,
    app: Arc<AppState>,
}

impl Server {
    /// Binds every configured address (all interfaces when none) and starts serving.
    pub async fn start(config: Config, clock: SharedClock) -> std::io::Result<Self> {
        let port = config.port;
        // No bind address means every interface, IPv6 and IPv4 (a `::` socket is dual-stack
        // on Linux); hosts without IPv6 fall back to IPv4 only.
        let any_v6 = config.bind_addresses.is_empty();
        let ips = if any_v6 { vec![std::net::IpAddr::from([0u16; 8])] } else { config.bind_addresses.clone() };
        let app = Arc::new(AppState::new(config, clock));
        let (stop, _) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut addrs = Vec::new();
        // With port 0 the first listener picks a port and the others reuse it.
        let mut chosen = port;
        for ip in ips {
            let mut bound = TcpListener::bind(SocketAddr::new(ip, chosen)).await;
            if any_v6 && bound.is_err() {
                bound = TcpListener::bind(SocketAddr::new(std::net::IpAddr::from([0, 0, 0, 0]), chosen)).await;
            }
            let listener = bound.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", SocketAddr::new(ip, chosen)))
            })?;
            let addr = listener.local_addr()?;
            chosen = addr.port();
            addrs.push(addr);
            let svc = http::service(Arc::clone(&app));
            let mut rx = stop.subscribe();
            tasks.spawn(async move {
                axum::serve(listener, svc)
                    .with_graceful_shutdown(async move {
                        let _ = rx.wait_for(|s| *s).await;
                    })
                    .await
            });
        }
        tasks.spawn({
            let reaper = app.registry.spawn_reaper();
            let mut rx = stop.subscribe();
            async move {
                let _ = rx.wait_for(|s| *s).await;
                reaper.abort();
                Ok(())
            }
        });
        Ok(Self { addrs, stop, tasks, app })
    }

    /// Where the server listens (the real ports, also when 0 was asked for).
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The shared state (tests inspect the registry through it).
    pub fn app(&self) -> &Arc<AppState> {
        &self.app
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the listeners.
    ///
    /// Requests get [`SHUTDOWN_GRACE`] to finish (LiveKit allows 5 s too); a client holding a
    /// request open longer is cut off, so a stop signal always stops the server.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        // Sessions get a SERVER_SHUTDOWN leave, then the grace period to write it.
        self.app.registry.disconnect_everyone(crate::proto::DisconnectReason::ServerShutdown);
        let sessions = Arc::clone(&self.app.sessions);
        let sessions_done = async move {
            while sessions.load(std::sync::atomic::Ordering::Relaxed) > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        };
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, sessions_done).await;
        let drain = async {
            while let Some(res) = self.tasks.join_next().await {
                if let Ok(Err(e)) = res {
                    tracing::warn!(error = %e, "listener ended with an error");
                }
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            tracing::info!(grace = ?SHUTDOWN_GRACE, "requests still open after the grace period; closing them");
            self.tasks.abort_all();
        }
        // Rooms created by requests during the grace period close too, so every room's last
        // events are queued; then queued webhooks get the same grace to go out.
        self.app.registry.disconnect_everyone(crate::proto::DisconnectReason::ServerShutdown);
        if let Some(webhooks) = &self.app.webhooks {
            webhooks.shutdown(SHUTDOWN_GRACE).await;
        }
    }

    /// Waits until a listener fails (normally never).
    pub async fn wait(&mut self) -> std::io::Result<()> {
        match self.tasks.join_next().await {
            Some(Ok(r)) => r,
            Some(Err(e)) => Err(std::io::Error::other(e)),
            None => Ok(()),
        }
    }
}
