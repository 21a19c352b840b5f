//! Turning YAML text, flags and environment into a validated [`Config`].

use std::{collections::BTreeMap, net::IpAddr, path::Path, time::Duration};

use serde_yaml::Value;

use super::{
    Config, ConfigError, Keys, Problem,
    schema::{Kind, Node, ROOT},
};

/// Values from the command line and environment; they win over the YAML.
///
/// `Debug` is written by hand so the `keys` text (secrets) never reaches a log.
#[derive(Clone, Default)]
pub struct Overrides {
    /// `--dev`: development mode (dev keys when none are configured).
    pub dev: bool,
    /// `--keys` / `LIVEKIT_KEYS`: YAML `"key: secret"` lines.
    pub keys: Option<String>,
    /// `--key-file`.
    pub key_file: Option<String>,
    /// `--bind`, repeatable.
    pub bind: Vec<String>,
    /// `--port`.
    pub port: Option<u16>,
    /// `--region` / `LIVEKIT_REGION`.
    pub region: Option<String>,
}

impl std::fmt::Debug for Overrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overrides")
            .field("dev", &self.dev)
            .field("keys", &self.keys.as_ref().map(|_| "<redacted>"))
            .field("key_file", &self.key_file)
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("region", &self.region)
            .finish()
    }
}

/// Reads a key file and reports its Unix permission bits (0 where unknown).
pub type ReadFile<'a> = &'a dyn Fn(&Path) -> std::io::Result<(String, u32)>;

/// Builds the configuration from YAML text (may be empty) and overrides.
///
/// All problems are collected and returned together.
pub fn load(yaml: &str, overrides: &Overrides, read_file: ReadFile<'_>) -> Result<Config, ConfigError> {
    let mut r = Reader { problems: Vec::new(), unsupported: Vec::new() };
    let root = if yaml.trim().is_empty() {
        Value::Mapping(Default::default())
    } else {
        match serde_yaml::from_str::<Value>(yaml) {
            Ok(Value::Null) => Value::Mapping(Default::default()),
            Ok(v) => v,
            Err(e) => {
                return Err(ConfigError { problems: vec![Problem { path: "(yaml)".into(), message: e.to_string() }] });
            }
        }
    };
    r.check_section(&root, "", ROOT);

    let mut c = Config::default();
    r.set_u16(&root, "port", &mut c.port);
    let mut binds = Vec::new();
    r.set_list(&root, "bind_addresses", &mut binds);
    c.bind_addresses = r.parse_ips("bind_addresses", &binds);
    let mut keys = BTreeMap::new();
    r.set_map(&root, "keys", &mut keys);
    let mut key_file = String::new();
    r.set_str(&root, "key_file", &mut key_file);
    r.set_str(&root, "region", &mut c.region);
    r.set_bool(&root, "development", &mut c.development);

    let mut level = String::new();
    r.set_str(&root, "log_level", &mut level);
    r.set_str(&root, "logging.level", &mut level);
    r.set_bool(&root, "logging.json", &mut c.logging.json);

    r.set_bool(&root, "room.auto_create", &mut c.room.auto_create);
    r.set_secs(&root, "room.empty_timeout", &mut c.room.empty_timeout);
    r.set_secs(&root, "room.departure_timeout", &mut c.room.departure_timeout);
    r.set_u32(&root, "room.max_participants", &mut c.room.max_participants);
    r.set_bool(&root, "room.enable_remote_unmute", &mut c.room.enable_remote_unmute);

    let l = &mut c.limit;
    r.set_u32(&root, "limit.max_metadata_size", &mut l.max_metadata_size);
    r.set_u32(&root, "limit.max_attributes_size", &mut l.max_attributes_size);
    r.set_u32(&root, "limit.max_room_name_length", &mut l.max_room_name_length);
    r.set_u32(&root, "limit.max_participant_identity_length", &mut l.max_participant_identity_length);
    r.set_u32(&root, "limit.max_participant_name_length", &mut l.max_participant_name_length);
    r.set_u64(&root, "limit.max_api_request_body_size", &mut l.max_api_request_body_size);
    r.set_u64(&root, "limit.signal_message_size_limit", &mut l.signal_message_size_limit);
    // Legacy room.* size keys override limit.* when non-zero, as LiveKit does.
    for (legacy, target) in [
        ("room.max_metadata_size", &mut l.max_metadata_size),
        ("room.max_room_name_length", &mut l.max_room_name_length),
        ("room.max_participant_identity_length", &mut l.max_participant_identity_length),
    ] {
        let mut v = 0;
        r.set_u32(&root, legacy, &mut v);
        if v != 0 {
            *target = v;
        }
    }

    r.set_str(&root, "webhook.api_key", &mut c.webhook.api_key);
    r.set_list(&root, "webhook.urls", &mut c.webhook.urls);
    r.set_list(&root, "webhook.filter_params.include_events", &mut c.webhook.include_events);
    r.set_list(&root, "webhook.filter_params.exclude_events", &mut c.webhook.exclude_events);
    r.set_u32(&root, "webhook.resource_url_notifier.max_depth", &mut c.webhook.max_depth);
    // Zero keeps the default, as LiveKit's notifier treats it.
    if let Some(age) = lookup(&root, "webhook.resource_url_notifier.max_age").and_then(go_duration)
        && !age.is_zero()
    {
        c.webhook.max_age = age;
    }
    r.set_str(&root, "redis.address", &mut c.redis_address);
    if !c.redis_address.is_empty() {
        r.unsupported.push(format!("redis.address ({})", super::schema::CLUSTER));
    }

    // Flags and environment win over the file.
    if let Some(p) = overrides.port {
        c.port = p;
    }
    if !overrides.bind.is_empty() {
        c.bind_addresses = r.parse_ips("--bind", &overrides.bind);
    }
    if let Some(region) = &overrides.region {
        c.region.clone_from(region);
    }
    if let Some(text) = &overrides.keys {
        match serde_yaml::from_str::<BTreeMap<String, String>>(text) {
            Ok(m) => keys = m,
            Err(e) => r.problem("--keys / LIVEKIT_KEYS", keys_syntax_error(&e)),
        }
    }
    if let Some(f) = &overrides.key_file {
        key_file.clone_from(f);
    }
    let key_file = expand_home(&key_file);
    if !key_file.is_empty() {
        match read_file(Path::new(&key_file)) {
            Ok((_, mode)) if mode & 0o007 != 0 => {
                r.problem("key_file", format!("{key_file} must not be readable by others (chmod 600 {key_file})"))
            }
            Ok((text, _)) => match serde_yaml::from_str::<BTreeMap<String, String>>(&text) {
                Ok(m) => keys = m,
                Err(e) => r.problem("key_file", format!("{key_file}: {}", keys_syntax_error(&e))),
            },
            Err(e) => r.problem("key_file", format!("cannot read {key_file}: {e}")),
        }
    }
    c.development |= overrides.dev;
    if c.development && keys.is_empty() {
        keys.insert("devkey".into(), "secret".into());
        if c.bind_addresses.is_empty() {
            c.bind_addresses = vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])];
        }
    }
    c.logging.level = if !level.is_empty() {
        level.to_ascii_lowercase()
    } else if c.development {
        "debug".into()
    } else {
        "info".into()
    };
    if !matches!(c.logging.level.as_str(), "trace" | "debug" | "info" | "warn" | "error") {
        r.problem("logging.level", format!("unknown level {:?} (use debug, info, warn or error)", c.logging.level));
    }

    // Validation of the result.
    if keys.is_empty() {
        r.problem("keys", "one of key_file or keys must be provided (or run with --dev)".into());
    }
    for (k, s) in &keys {
        if k.is_empty() || s.is_empty() {
            r.problem("keys", "API keys and secrets must not be empty".into());
        }
    }
    if !c.webhook.urls.is_empty() && !keys.contains_key(&c.webhook.api_key) {
        r.problem(
            "webhook.api_key",
            "api_key is required to use webhooks and must be one of the configured keys".into(),
        );
    }
    c.keys = Keys(keys);
    c.unsupported = r.unsupported;
    if r.problems.is_empty() { Ok(c) } else { Err(ConfigError { problems: r.problems }) }
}

/// Describes a malformed key list without echoing it: the text holds secrets, and YAML error
/// messages quote the offending input.
fn keys_syntax_error(e: &serde_yaml::Error) -> String {
    let at = e.location().map(|l| format!(" (line {}, column {})", l.line(), l.column())).unwrap_or_default();
    format!("expected \"key: secret\" lines, with a space after the colon{at}")
}

/// `~/…` → `$HOME/…`, as LiveKit expands `key_file`.
fn expand_home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => path.to_string(),
    }
}

/// Walks the YAML, collecting problems and the unsupported keys that were present.
struct Reader {
    problems: Vec<Problem>,
    unsupported: Vec<String>,
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
}

fn lookup<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(root, |v, k| v.get(k)).filter(|v| !v.is_null())
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Bool => "true or false",
        Kind::U16 => "a whole number up to 65535",
        Kind::U32 => "a whole number up to 4294967295",
        Kind::U64 => "a non-negative whole number",
        Kind::Str => "a string",
        Kind::StrList => "a list of strings",
        Kind::StrMap => "a map of strings to strings",
        Kind::Duration => "a duration such as \"30s\", \"1m30s\" or \"500ms\"",
    }
}

/// A Go `time.Duration` as YAML gives it: a whole number of nanoseconds, or a string of
/// decimal numbers each with a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), as Go's
/// `time.ParseDuration` reads it. Negative durations are refused.
fn go_duration(v: &Value) -> Option<Duration> {
    if let Some(n) = v.as_u64() {
        return Some(Duration::from_nanos(n));
    }
    let s = v.as_str()?.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() {
        return None;
    }
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let (mut rest, mut total) = (s, 0f64);
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * nanos_per;
    }
    // Go's limit is i64 nanoseconds (about 292 years); decimal fractions round to the nearest.
    let total = total.round();
    (total.is_finite() && total <= i64::MAX as f64).then(|| Duration::from_nanos(total as u64))
}

fn fits(kind: Kind, v: &Value) -> bool {
    let scalar_str = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
    match kind {
        Kind::Bool => v.is_bool(),
        Kind::U16 => v.as_u64().is_some_and(|n| n <= u64::from(u16::MAX)),
        Kind::U32 => v.as_u64().is_some_and(|n| n <= u64::from(u32::MAX)),
        Kind::U64 => v.as_u64().is_some(),
        Kind::Str => scalar_str(v),
        Kind::StrList => v.as_sequence().is_some_and(|s| s.iter().all(scalar_str)),
        Kind::StrMap => v.as_mapping().is_some_and(|m| m.iter().all(|(k, v)| scalar_str(k) && scalar_str(v))),
        Kind::Duration => go_duration(v).is_some(),
    }
}

fn scalar_to_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

impl Reader {
    fn problem(&mut self, path: &str, message: String) {
        self.problems.push(Problem { path: path.to_string(), message });
    }

    fn check_section(&mut self, v: &Value, prefix: &str, schema: &[(&str, Node)]) {
        let Some(map) = v.as_mapping() else {
            let at = if prefix.is_empty() { "(top level)" } else { prefix };
            self.problem(at, "expected a map of keys".into());
            return;
        };
        for (k, child) in map {
            let Some(key) = k.as_str() else {
                self.problem(prefix, format!("keys must be strings, found {k:?}"));
                continue;
            };
            let path = join(prefix, key);
            match schema.iter().find(|(name, _)| *name == key) {
                None => self.problem(&path, "unknown key".into()),
                Some((_, _)) if child.is_null() => {}
                Some((_, Node::Unsupported(why))) => self.unsupported.push(format!("{path} ({why})")),
                Some((_, Node::Section(inner))) => self.check_section(child, &path, inner),
                Some((_, Node::Leaf(kind))) => {
                    if !fits(*kind, child) {
                        self.problem(&path, format!("expected {}", kind_name(*kind)));
                    }
                }
            }
        }
    }

    // The setters read a value the schema walk already type-checked; a wrong type was reported
    // there, so here it simply leaves the default in place.
    fn set_bool(&mut self, root: &Value, path: &str, out: &mut bool) {
        if let Some(b) = lookup(root, path).and_then(Value::as_bool) {
            *out = b;
        }
    }
    fn set_u16(&mut self, root: &Value, path: &str, out: &mut u16) {
        if let Some(n) = lookup(root, path).and_then(Value::as_u64).and_then(|n| u16::try_from(n).ok()) {
            *out = n;
        }
    }
    fn set_u32(&mut self, root: &Value, path: &str, out: &mut u32) {
        if let Some(n) = lookup(root, path).and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()) {
            *out = n;
        }
    }
    fn set_u64(&mut self, root: &Value, path: &str, out: &mut u64) {
        if let Some(n) = lookup(root, path).and_then(Value::as_u64) {
            *out = n;
        }
    }
    /// Whole seconds; 0 means "keep the default", as LiveKit treats zero timeouts.
    fn set_secs(&mut self, root: &Value, path: &str, out: &mut Duration) {
        let mut n = 0;
        self.set_u32(root, path, &mut n);
        if n != 0 {
            *out = Duration::from_secs(u64::from(n));
        }
    }
    fn set_str(&mut self, root: &Value, path: &str, out: &mut String) {
        if let Some(v) = lookup(root, path).filter(|v| fits(Kind::Str, v)) {
            *out = scalar_to_string(v);
        }
    }
    fn set_list(&mut self, root: &Value, path: &str, out: &mut Vec<String>) {
        if let Some(seq) = lookup(root, path).and_then(Value::as_sequence) {
            *out = seq.iter().map(scalar_to_string).collect();
        }
    }
    fn set_map(&mut self, root: &Value, path: &str, out: &mut BTreeMap<String, String>) {
        if let Some(m) = lookup(root, path).and_then(Value::as_mapping) {
            *out = m.iter().map(|(k, v)| (scalar_to_string(k), scalar_to_string(v))).collect();
        }
    }
    fn parse_ips(&mut self, path: &str, items: &[String]) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for s in items {
            match s.parse::<IpAddr>() {
                Ok(ip) => out.push(ip),
                Err(_) => self.problem(path, format!("{s:?} is not an IP address")),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_files(_: &Path) -> std::io::Result<(String, u32)> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no files in this test"))
    }

    fn yaml(text: &str) -> Result<Config, ConfigError> {
        load(text, &Overrides::default(), &no_files)
    }

    const KEYS: &str = "keys:\n  k1: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n";

    #[test]
    fn defaults_match_livekit() {
        let c = yaml(KEYS).unwrap();
        assert_eq!(c.port, 7880);
        assert!(c.room.auto_create);
        assert_eq!(c.room.empty_timeout, Duration::from_secs(300));
        assert_eq!(c.room.departure_timeout, Duration::from_secs(20));
        assert!(!c.room.enable_remote_unmute);
        assert_eq!(c.limit.max_metadata_size, 524_288);
        assert_eq!(c.limit.max_attributes_size, 65_536);
        assert_eq!(c.limit.max_room_name_length, 256);
        assert_eq!(c.limit.max_api_request_body_size, 10 << 20);
        assert_eq!(c.logging.level, "info");
        assert_eq!(c.keys.secret("k1"), Some("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    }

    #[test]
    fn reads_every_supported_key() {
        let c = yaml(
            "port: 9000\nbind_addresses: [127.0.0.1]\nregion: eu\nkeys: {a: b}\n\
             logging: {level: WARN, json: true}\n\
             room: {auto_create: false, empty_timeout: 5, departure_timeout: 7, max_participants: 3, enable_remote_unmute: true}\n\
             limit: {max_metadata_size: 10, max_attributes_size: 11, max_room_name_length: 12,\n  \
             max_participant_identity_length: 13, max_participant_name_length: 14, max_api_request_body_size: 15, signal_message_size_limit: 16}\n",
        )
        .unwrap();
        assert_eq!(c.port, 9000);
        assert_eq!(c.bind_addresses, vec![IpAddr::from([127, 0, 0, 1])]);
        assert_eq!(c.region, "eu");
        assert_eq!(c.logging, super::super::LoggingConfig { level: "warn".into(), json: true });
        assert!(!c.room.auto_create);
        assert_eq!(c.room.empty_timeout, Duration::from_secs(5));
        assert_eq!(c.room.departure_timeout, Duration::from_secs(7));
        assert_eq!(c.room.max_participants, 3);
        assert!(c.room.enable_remote_unmute);
        let l = &c.limit;
        assert_eq!((l.max_metadata_size, l.max_attributes_size, l.max_room_name_length), (10, 11, 12));
        assert_eq!((l.max_participant_identity_length, l.max_participant_name_length), (13, 14));
        assert_eq!((l.max_api_request_body_size, l.signal_message_size_limit), (15, 16));
    }

    #[test]
    fn legacy_room_limits_override_limit_section() {
        let c = yaml(&format!("{KEYS}room: {{max_metadata_size: 99}}\nlimit: {{max_metadata_size: 5}}\n")).unwrap();
        assert_eq!(c.limit.max_metadata_size, 99);
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let err =
            yaml("port: nope\nroom: {empty_timeout: -1, bogus: 1}\nwat: 1\nlogging: {level: loud}\n").unwrap_err();
        let paths: Vec<_> = err.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["port", "room.empty_timeout", "room.bogus", "wat", "logging.level", "keys"]);
        let text = err.to_string();
        assert!(text.contains("room.bogus: unknown key"), "{text}");
        assert!(text.contains("port: expected a whole number up to 65535"), "{text}");
    }

    #[test]
    fn livekit_only_keys_start_with_a_warning() {
        let c = yaml(&format!(
            "{KEYS}rtc: {{tcp_port: 7881, port_range_start: 50000}}\nturn: {{enabled: false}}\n\
             room: {{enabled_codecs: [{{mime: audio/opus}}]}}\nredis: {{address: 'localhost:6379'}}\n"
        ))
        .unwrap();
        let u = c.unsupported.join("\n");
        for key in ["rtc (", "turn (", "room.enabled_codecs (", "redis.address ("] {
            assert!(u.contains(key), "{key} missing from {u}");
        }
    }

    #[test]
    fn dev_mode_adds_dev_keys_and_loopback() {
        let o = Overrides { dev: true, ..Default::default() };
        let c = load("", &o, &no_files).unwrap();
        assert_eq!(c.keys.secret("devkey"), Some("secret"));
        assert_eq!(c.bind_addresses.len(), 2);
        assert!(c.bind_addresses.iter().all(IpAddr::is_loopback));
        assert_eq!(c.logging.level, "debug");
        // Keys given explicitly win over the dev keys; explicit binds win over loopback.
        let o = Overrides {
            dev: true,
            keys: Some("k: s".into()),
            bind: vec!["0.0.0.0".into()],
            port: Some(0),
            ..Default::default()
        };
        let c = load("", &o, &no_files).unwrap();
        assert_eq!(c.keys.secret("devkey"), None);
        assert_eq!(c.keys.secret("k"), Some("s"));
        assert_eq!(c.bind_addresses, vec![IpAddr::from([0, 0, 0, 0])]);
        assert_eq!(c.port, 0);
    }

    #[test]
    fn flags_override_yaml() {
        let o = Overrides {
            keys: Some("x: y\nz: w".into()),
            port: Some(1234),
            region: Some("us".into()),
            ..Default::default()
        };
        let c = load(&format!("{KEYS}port: 9\nregion: eu\n"), &o, &no_files).unwrap();
        assert_eq!(c.port, 1234);
        assert_eq!(c.region, "us");
        assert_eq!(c.keys.ids().collect::<Vec<_>>(), ["x", "z"]);
    }

    #[test]
    fn key_file_replaces_keys_and_must_be_private() {
        let read = |p: &Path| -> std::io::Result<(String, u32)> {
            match p.to_str() {
                Some("/ok") => Ok(("fk: fs\n".into(), 0o600)),
                Some("/open") => Ok(("fk: fs\n".into(), 0o644)),
                _ => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "missing")),
            }
        };
        let c = load(&format!("{KEYS}key_file: /ok\n"), &Overrides::default(), &read).unwrap();
        assert_eq!(c.keys.ids().collect::<Vec<_>>(), ["fk"]);
        let err = load("key_file: /open\n", &Overrides::default(), &read).unwrap_err();
        assert!(err.to_string().contains("must not be readable by others"));
        let err = load("key_file: /gone\n", &Overrides::default(), &read).unwrap_err();
        assert!(err.to_string().contains("cannot read /gone"));
    }

    #[test]
    fn webhooks_need_a_configured_key() {
        let err = yaml(&format!("{KEYS}webhook: {{urls: ['http://x'], api_key: nope}}\n")).unwrap_err();
        assert_eq!(err.problems[0].path, "webhook.api_key");
        let c = yaml(&format!("{KEYS}webhook: {{urls: ['http://x'], api_key: k1}}\n")).unwrap();
        assert_eq!(c.webhook.urls, ["http://x"]);
    }

    #[test]
    fn malformed_keys_are_reported_without_the_secret() {
        // The classic mistake: no space after the colon makes the whole line one string.
        let o = Overrides { keys: Some("devkey:hunter2-supersecret".into()), ..Default::default() };
        let err = load("", &o, &no_files).unwrap_err().to_string();
        assert!(err.contains("--keys / LIVEKIT_KEYS: expected \"key: secret\" lines"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let read = |_: &Path| Ok(("k:hunter2-in-a-file".to_string(), 0o600));
        let err = load("key_file: /k\n", &Overrides::default(), &read).unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn body_limit_zero_means_unlimited_and_is_accepted() {
        let c = yaml(&format!("{KEYS}limit: {{max_api_request_body_size: 0}}\n")).unwrap();
        assert_eq!(c.limit.max_api_request_body_size, 0);
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let c = yaml("keys: {visible-id: hunter2-secret}\n").unwrap();
        let dbg = format!("{c:?}");
        assert!(dbg.contains("visible-id"));
        assert!(!dbg.contains("hunter2"));
        let o = Overrides { keys: Some("k: hunter2-secret".into()), ..Default::default() };
        assert!(!format!("{o:?}").contains("hunter2"));
    }

    #[test]
    fn the_annotated_sample_config_loads_cleanly() {
        let sample = include_str!("../../config/usher.yaml");
        // It ships without keys, so nobody runs a published secret by accident…
        let err = yaml(sample).unwrap_err();
        assert_eq!(err.problems.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(), ["keys"]);
        // …and starts once keys come from the environment.
        let o = Overrides { keys: Some("APIexample: s".into()), ..Default::default() };
        let c = load(sample, &o, &no_files).unwrap();
        assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
        assert_eq!(c.keys.ids().collect::<Vec<_>>(), ["APIexample"]);
        let defaults = yaml(KEYS).unwrap();
        assert_eq!((c.room.clone(), c.limit.clone()), (defaults.room, defaults.limit), "sample shows the defaults");
    }

    #[test]
    fn garbage_yaml_is_one_clear_problem() {
        let err = yaml("port: [unclosed\n").unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert_eq!(err.problems[0].path, "(yaml)");
    }

    #[test]
    fn webhook_max_age_takes_go_durations() {
        let age = |v: &str| {
            let yaml =
                format!("keys:\n  k: {s}\nwebhook:\n  resource_url_notifier:\n    max_age: {v}\n", s = "x".repeat(32));
            load(&yaml, &Overrides::default(), &no_files).map(|c| c.webhook.max_age)
        };
        assert_eq!(age("\"1m30s\"").unwrap(), Duration::from_secs(90));
        assert_eq!(age("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(age("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(age("1.000000001s").unwrap(), Duration::from_nanos(1_000_000_001), "rounded, not truncated");
        assert!(age("3000000h").is_err(), "beyond Go's range (about 292 years)");
        assert_eq!(age("2000000000").unwrap(), Duration::from_secs(2), "a number is nanoseconds, as Go reads it");
        assert_eq!(age("0").unwrap(), Duration::from_secs(30), "zero keeps the default");
        for bad in ["-1s", "soon", "5 parsecs", "\"\""] {
            assert!(age(bad).is_err(), "{bad} must be refused");
        }
    }
}
