//! Command-line interface: `usher [serve flags]` and `usher token create`.
//!
//! Flag names follow `livekit-server` (`--dev`, `--keys`, `--config`, `--bind`) and `lk token
//! create`, so LiveKit users can reuse their scripts. These types deliberately do not derive
//! `Debug`: they hold secrets (`--keys`, `--config-body`, `--api-secret`).

use clap::{Args, Parser, Subcommand};

use crate::config::Overrides;

const ABOUT: &str = "Usher: a self-hosted room and participant server that speaks LiveKit's protocols.";

const LONG_ABOUT: &str = "\
Usher: a self-hosted room and participant server that speaks LiveKit's protocols.

Point LiveKit's official server SDKs (Go, Python, Node, Rust) at Usher's URL and manage rooms
with them. Without a subcommand, Usher runs the server.

QUICK START
  usher --dev                      # dev keys devkey/secret, listens on 127.0.0.1:7880
  usher token create --api-key devkey --api-secret secret \\
        --room demo --identity alice --grant join
  usher --config config/usher.yaml # your LiveKit config.yaml works as it is

CONFIGURATION
  Config is LiveKit's YAML (see config/usher.yaml for an annotated sample). Flags and
  environment override the file; every problem is reported at once with its key path.
  Keys LiveKit knows but Usher does not serve yet (rtc, turn, redis, ...) are accepted with a
  warning naming them.";

/// Top-level command line.
#[derive(Parser)]
#[command(name = "usher", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    /// Server flags (used when no subcommand is given).
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Optional subcommand.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags for running the server.
#[derive(Args, Default)]
pub struct ServeArgs {
    /// Path to a LiveKit-style YAML config file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<String>,
    /// YAML config given inline; wins over --config.
    #[arg(long, value_name = "YAML", env = "LIVEKIT_CONFIG", hide_env_values = true)]
    pub config_body: Option<String>,
    /// Development mode: API key `devkey`, secret `secret` (when no keys are configured),
    /// listen on loopback only, debug logging.
    #[arg(long)]
    pub dev: bool,
    /// API keys as YAML "key: secret" lines (note the space after the colon).
    #[arg(long, value_name = "KEYS", env = "LIVEKIT_KEYS", hide_env_values = true)]
    pub keys: Option<String>,
    /// File of "key: secret" lines; must not be readable by others. Replaces `keys`.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<String>,
    /// Address to listen on; repeat for several. Default: all interfaces.
    #[arg(long, value_name = "IP")]
    pub bind: Vec<String>,
    /// HTTP port for the API and signalling (default 7880; 0 picks a free port).
    #[arg(long, env = "LIVEKIT_PORT")]
    pub port: Option<u16>,
    /// Region name reported to clients.
    #[arg(long, env = "LIVEKIT_REGION")]
    pub region: Option<String>,
}

impl ServeArgs {
    /// The overrides these flags carry.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            dev: self.dev,
            keys: self.keys.clone(),
            key_file: self.key_file.clone(),
            bind: self.bind.clone(),
            port: self.port,
            region: self.region.clone(),
        }
    }
}

/// Subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Access tokens.
    Token {
        /// What to do with tokens.
        #[command(subcommand)]
        action: TokenCommand,
    },
}

/// `usher token …`.
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Print a signed access token (like `lk token create`).
    ///
    /// Example: usher token create --api-key devkey --api-secret secret --room demo
    /// --identity alice --grant join
    Create(TokenCreateArgs),
}

/// `usher token create` flags.
#[derive(Args)]
pub struct TokenCreateArgs {
    /// API key (the token's issuer).
    #[arg(long, env = "LIVEKIT_API_KEY")]
    pub api_key: String,
    /// API secret that signs the token.
    #[arg(long, env = "LIVEKIT_API_SECRET", hide_env_values = true)]
    pub api_secret: String,
    /// Room the token is for (needed by join and admin).
    #[arg(long, default_value = "")]
    pub room: String,
    /// Participant identity.
    #[arg(long, default_value = "")]
    pub identity: String,
    /// Display name.
    #[arg(long, default_value = "")]
    pub name: String,
    /// Participant metadata.
    #[arg(long, default_value = "")]
    pub metadata: String,
    /// Grants, comma-separated or repeated: join, admin, create, list, record, hidden.
    /// Default: join.
    #[arg(long, value_delimiter = ',', value_name = "GRANT")]
    pub grant: Vec<String>,
    /// Lifetime, e.g. 30m, 6h, 2d (default 6h).
    #[arg(long, default_value = "6h")]
    pub valid_for: String,
}

/// Parses `30s`, `15m`, `6h`, `2d` or plain seconds.
pub fn parse_duration_secs(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('s') => (&s[..s.len() - 1], 1),
        Some('m') => (&s[..s.len() - 1], 60),
        Some('h') => (&s[..s.len() - 1], 3600),
        Some('d') => (&s[..s.len() - 1], 86_400),
        _ => (s, 1),
    };
    num.parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("invalid duration {s:?} (use e.g. 30m, 6h, 2d)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("6h"), Ok(21_600));
        assert_eq!(parse_duration_secs("90"), Ok(90));
        assert_eq!(parse_duration_secs("2d"), Ok(172_800));
        assert!(parse_duration_secs("soon").is_err());
        assert!(parse_duration_secs("999999999999999999d").is_err(), "overflow is an error, not a panic");
    }

    #[test]
    fn cli_parses_livekit_style_flags() {
        let cli = Cli::try_parse_from(["usher", "--dev", "--bind", "127.0.0.1", "--port", "0"]).unwrap();
        assert!(cli.serve.dev);
        assert_eq!(cli.serve.overrides().port, Some(0));
        let cli = Cli::try_parse_from([
            "usher",
            "token",
            "create",
            "--api-key",
            "k",
            "--api-secret",
            "s",
            "--room",
            "r",
            "--grant",
            "join,admin",
        ])
        .unwrap();
        let Some(Command::Token { action: TokenCommand::Create(a) }) = cli.command else { panic!("no token command") };
        assert_eq!(a.grant, ["join", "admin"]);
    }
}
