//! Binding listeners and running the service until shutdown.

use std::{net::SocketAddr, sync::Arc};

use tokio::{net::TcpListener, sync::watch, task::JoinSet};

use crate::{app::AppState, clock::SharedClock, config::Config, http};

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
        let ips = if config.bind_addresses.is_empty() {
            vec![std::net::IpAddr::from([0, 0, 0, 0])]
        } else {
            config.bind_addresses.clone()
        };
        let app = Arc::new(AppState::new(config, clock));
        let (stop, _) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut addrs = Vec::new();
        // With port 0 the first listener picks a port and the others reuse it.
        let mut chosen = port;
        for ip in ips {
            let listener = TcpListener::bind(SocketAddr::new(ip, chosen)).await.map_err(|e| {
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
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while let Some(res) = self.tasks.join_next().await {
            if let Ok(Err(e)) = res {
                tracing::warn!(error = %e, "listener ended with an error");
            }
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
