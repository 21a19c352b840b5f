//! The `usher` binary: parse flags, load config, run the server or a tool command.

use std::{process::ExitCode, sync::Arc};

use clap::Parser as _;
use usher::{
    auth::{
        VideoGrant,
        mint::{TokenMinter, TokenSpec},
    },
    cli::{Cli, Command, TokenCommand, TokenCreateArgs, parse_duration_secs},
    clock::{Clock as _, SystemClock},
    config::{self, Config},
    server::Server,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token { action: TokenCommand::Create(args) }) => token_create(&args),
        None => serve(&cli.serve),
    }
}

fn token_create(a: &TokenCreateArgs) -> ExitCode {
    let grants = if a.grant.is_empty() { vec!["join".to_string()] } else { a.grant.clone() };
    let mut video = VideoGrant { room: a.room.clone(), ..Default::default() };
    for g in &grants {
        match g.trim().to_ascii_lowercase().as_str() {
            "join" | "roomjoin" => video.room_join = true,
            "admin" | "roomadmin" => video.room_admin = true,
            "create" | "roomcreate" => video.room_create = true,
            "list" | "roomlist" => video.room_list = true,
            "record" | "roomrecord" => video.room_record = true,
            "hidden" => video.hidden = true,
            other => {
                eprintln!("error: unknown grant {other:?} (use join, admin, create, list, record, hidden)");
                return ExitCode::from(2);
            }
        }
    }
    if (video.room_join || video.room_admin) && a.room.is_empty() {
        eprintln!("error: --room is required for the join and admin grants");
        return ExitCode::from(2);
    }
    if video.room_join && a.identity.is_empty() {
        eprintln!("error: --identity is required for the join grant");
        return ExitCode::from(2);
    }
    let ttl = match parse_duration_secs(&a.valid_for) {
        Ok(t) if t > 0 => t,
        Ok(_) => {
            eprintln!("error: --valid-for must be positive");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let spec = TokenSpec {
        api_key: a.api_key.clone(),
        identity: a.identity.clone(),
        name: a.name.clone(),
        metadata: a.metadata.clone(),
        video,
        now_secs: SystemClock.now_secs(),
        ttl_secs: ttl,
    };
    match TokenMinter::mint(&spec, &a.api_secret) {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot sign the token: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &usher::cli::ServeArgs) -> ExitCode {
    let yaml = match (&args.config_body, &args.config) {
        (Some(body), _) => body.clone(),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read config file {path}: {e}");
                return ExitCode::FAILURE;
            }
        },
        (None, None) => String::new(),
    };
    let read_file = |p: &std::path::Path| -> std::io::Result<(String, u32)> {
        let text = std::fs::read_to_string(p)?;
        #[cfg(unix)]
        let mode = {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::metadata(p)?.permissions().mode()
        };
        #[cfg(not(unix))]
        let mode = 0;
        Ok((text, mode))
    };
    let config = match config::load(&yaml, &args.overrides(), &read_file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config))
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("USHER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("usher={}", config.logging.level)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if config.logging.json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(config: Config) -> ExitCode {
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "starting Usher");
    let key_ids: Vec<_> = config.keys.ids().map(str::to_string).collect();
    tracing::info!(keys = ?key_ids, "API keys loaded (secrets are never logged)");
    if config.development {
        tracing::warn!("development mode: do not expose this server; dev keys are public knowledge");
    }
    for key in &config.unsupported {
        tracing::warn!(key = %key, "config key accepted but not served");
    }
    for (id, secret) in config.keys.iter() {
        if !config.development && secret.len() < 32 {
            tracing::error!(key = id, "secret is shorter than 32 characters; use a longer one");
        }
    }
    let mut server = match Server::start(config, Arc::new(SystemClock)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for addr in server.addrs() {
        tracing::info!("listening on http://{addr}");
    }
    tokio::select! {
        res = server.wait() => {
            if let Err(e) = res {
                tracing::error!(error = %e, "server stopped");
                return ExitCode::FAILURE;
            }
        }
        () = shutdown_signal() => {
            tracing::info!("shutting down");
            server.shutdown().await;
        }
    }
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
