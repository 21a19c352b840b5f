//! The binary as a user meets it: --help, token create, config errors, startup.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use usher::{auth::TokenVerifier, clock::Clock as _, config::Keys};

fn usher() -> Command {
    Command::new(env!("CARGO_BIN_EXE_usher"))
}

#[test]
fn help_teaches_the_quick_start() {
    let out = usher().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in ["--dev", "--config", "--keys", "token create", "devkey"] {
        assert!(text.contains(needle), "--help lacks {needle}:\n{text}");
    }
}

#[test]
fn token_create_prints_a_token_the_server_accepts() {
    let out = usher()
        .args(["token", "create", "--api-key", "devkey", "--api-secret", "secret", "--room", "demo"])
        .args(["--identity", "alice", "--name", "Alice", "--grant", "join,admin", "--valid-for", "1h"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let keys = Keys::new([("devkey".to_string(), "secret".to_string())]);
    let now = usher::clock::SystemClock.now_secs();
    let claims = TokenVerifier::new(keys).verify(&token, now).unwrap();
    assert_eq!((claims.identity.as_str(), claims.name.as_str()), ("alice", "Alice"));
    let v = claims.video();
    assert!(v.room_join && v.room_admin && !v.room_create);
    assert_eq!(v.room, "demo");
    assert!((claims.expires_at - now - 3600).abs() <= 2);

    let bad =
        usher().args(["token", "create", "--api-key", "k", "--api-secret", "s", "--grant", "fly"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown grant"));
}

#[test]
fn a_malformed_key_list_is_refused_without_printing_the_secret() {
    let out = usher().args(["--keys", "devkey:hunter2-supersecret"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--keys / LIVEKIT_KEYS"), "{err}");
    assert!(!err.contains("hunter2"), "the secret leaked:\n{err}");
}

#[test]
fn config_problems_are_all_reported_and_exit_nonzero() {
    let out = usher()
        .args(["--config-body", "port: high\nroom:\n  empty_timeout: soon\nmystery: 1\n"])
        .env_remove("LIVEKIT_KEYS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for path in ["port:", "room.empty_timeout:", "mystery: unknown key", "keys:"] {
        assert!(err.contains(path), "missing {path} in:\n{err}");
    }
}

#[test]
fn starts_with_a_livekit_config_and_names_unsupported_keys() {
    let yaml = "keys:\n  k: a-secret-of-at-least-thirty-two-chars\nrtc:\n  tcp_port: 7881\n  use_external_ip: true\nturn:\n  enabled: false\n";
    let mut child = usher()
        .args(["--config-body", yaml, "--bind", "127.0.0.1", "--port", "0"])
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("listening on http://") {
                let _ = tx.send(seen.clone());
            }
        }
    });
    let log = rx.recv_timeout(Duration::from_secs(20)).expect("server reports its address");
    let _ = child.kill();
    let _ = child.wait();
    assert!(log.contains("rtc ("), "{log}");
    assert!(log.contains("turn ("), "{log}");
    assert!(log.contains("keys=[\"k\"]"), "{log}");
    assert!(!log.contains("a-secret-of-at-least"), "secrets must not be logged:\n{log}");
}
