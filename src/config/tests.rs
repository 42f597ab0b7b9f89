//! Tests of the configuration: defaults, overrides, and the errors naming the key.

use super::*;

#[test]
fn expire_schedules_parse_and_say_when_the_next_run_is() {
    assert_eq!(Schedule::parse("off").unwrap(), None);
    assert_eq!(
        Schedule::parse("04:00").unwrap(),
        Some(Schedule::Daily(4 * 3600))
    );
    assert_eq!(
        Schedule::parse("6h").unwrap(),
        Some(Schedule::Every(Duration::from_secs(6 * 3600)))
    );
    for bad in ["24:00", "4:60", "0", "x", "04:000"] {
        assert!(Schedule::parse(bad).is_err(), "{bad}");
    }
    let daily = Schedule::Daily(4 * 3600);
    // 03:00 -> 1 h; 04:00 exactly -> a day; 05:00 -> 23 h.
    assert_eq!(daily.wait_from(3 * 3600), Duration::from_secs(3600));
    assert_eq!(
        daily.wait_from(86400 + 4 * 3600),
        Duration::from_secs(86400)
    );
    assert_eq!(daily.wait_from(5 * 3600), Duration::from_secs(23 * 3600));
    assert_eq!(
        Config::load(None).unwrap().expire.schedule,
        Some(Schedule::Daily(4 * 3600))
    );
}

fn load_str(text: &str) -> anyhow::Result<Config> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(Some(&path))
}

#[test]
fn defaults_have_every_listener_on_loopback() {
    let c = Config::load(None).unwrap();
    assert_eq!(c.listen.lmtp.as_deref(), Some("127.0.0.1:2424"));
    assert_eq!(c.listen.imap.as_deref(), Some("127.0.0.1:1143"));
    assert_eq!(c.data_dir, PathBuf::from("./tern-data"));
}

#[test]
fn chaining_is_off_unless_asked_for() {
    assert!(!Config::load(None).unwrap().store().log_replicated);
    let c = load_str("[sync]\nchain = true\n").unwrap();
    assert!(c.sync.chain && c.store().log_replicated);
}

#[test]
fn listen_table_replaces_the_default_set() {
    let c = load_str("data_dir = \"/tmp/x\"\n[listen]\nlmtp = \"127.0.0.1:0\"\n").unwrap();
    assert_eq!(c.listeners(), vec![("listen.lmtp", "127.0.0.1:0")]);
    assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
    assert_eq!(c.lmtp.max_recipients, 1000);
}

#[test]
fn unknown_keys_and_bad_values_name_the_key() {
    let e = format!("{:#}", load_str("[listen]\nimapp = \"x\"\n").unwrap_err());
    assert!(e.contains("imapp"), "{e}");
    let e = format!(
        "{:#}",
        load_str("[listen]\nlmtp = \"nonsense\"\n").unwrap_err()
    );
    assert!(e.contains("listen.lmtp"), "{e}");
    let e = format!(
        "{:#}",
        load_str("[lmtp]\nmax_recipients = 0\n").unwrap_err()
    );
    assert!(e.contains("lmtp.max_recipients"), "{e}");
    let e = format!(
        "{:#}",
        load_str("[lmtp]\nidle_timeout = \"x\"\n").unwrap_err()
    );
    assert!(e.contains("idle_timeout"), "{e}");
}

#[test]
fn tls_keys_are_checked() {
    // TLS is always available (a generated certificate without [tls]).
    let c = Config::load(None).unwrap();
    assert!(c.tls.is_none() && c.imap.plaintext_auth);
    assert_eq!(c.listen.imaps.as_deref(), Some("127.0.0.1:1993"));
    assert_eq!(c.listen.pop3s.as_deref(), Some("127.0.0.1:1995"));
    let c = load_str("[pop3]\nplaintext_auth = false\nmax_connections = 3\n").unwrap();
    assert!(!c.pop3.plaintext_auth && c.pop3.max_connections == 3);
    let e = format!("{:#}", load_str("[pop3]\nidle_timeout = 60\n").unwrap_err());
    assert!(e.contains("pop3.idle_timeout"), "{e}");
    let c =
        load_str("[listen]\nimaps = \"127.0.0.1:0\"\n[imap]\nplaintext_auth = false\n").unwrap();
    assert!(c.listeners().contains(&("listen.imaps", "127.0.0.1:0")));
    assert!(!c.imap.plaintext_auth);

    let e = format!("{:#}", load_str("[tls]\ncert = \"c.pem\"\n").unwrap_err());
    assert!(e.contains("tls.key"), "{e}");
    let e = format!("{:#}", load_str("[tls]\ncrt = \"c.pem\"\n").unwrap_err());
    assert!(e.contains("crt"), "{e}");
    let c = load_str("[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n").unwrap();
    let files = c.tls.unwrap();
    assert_eq!((files.cert, files.key), ("c.pem".into(), "k.pem".into()));
}

#[test]
fn replication_trust_and_plaintext_keys() {
    let base = "[replication]\nreplica = \"[::1]:2005\"\nuser = \"repl\"\npassword = \"p\"\n";
    let r = load_str(base).unwrap().replication.unwrap();
    assert_eq!(r.trust, ReplicaTrust::FirstUse);
    assert!(!r.require_tls && !r.allow_plaintext);
    assert_eq!(r.server_name, "::1");

    let fp = "ab".repeat(32);
    let r = load_str(&format!(
        "{base}tls_fingerprint = \"{fp}\"\nstarttls = true\n"
    ))
    .unwrap()
    .replication
    .unwrap();
    assert_eq!(r.trust, ReplicaTrust::Fingerprint([0xAB; 32]));
    assert!(r.require_tls);

    let r = load_str(&format!(
        "{base}ca_file = \"ca.pem\"\nserver_name = \"r.example\"\n"
    ))
    .unwrap()
    .replication
    .unwrap();
    assert_eq!(r.trust, ReplicaTrust::CaFile("ca.pem".into()));
    assert_eq!(r.server_name, "r.example");

    for (extra, key) in [
        (
            "tls_fingerprint = \"AB:CD\"\n",
            "replication.tls_fingerprint",
        ),
        (
            "ca_file = \"ca.pem\"\ntls_fingerprint = \"AB\"\n",
            "ca_file and tls_fingerprint",
        ),
        (
            "starttls = true\nallow_plaintext = true\n",
            "replication.allow_plaintext",
        ),
    ] {
        let e = format!("{:#}", load_str(&format!("{base}{extra}")).unwrap_err());
        assert!(e.contains(key), "{extra}: {e}");
    }
}

#[test]
fn ages_parse_with_their_units_and_the_expire_defaults_are_a_week() {
    assert_eq!(parse_age("0").unwrap(), Duration::ZERO);
    assert_eq!(parse_age("90m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_age("12h").unwrap(), Duration::from_secs(43200));
    assert_eq!(parse_age("7d").unwrap(), Duration::from_secs(604800));
    for bad in ["", "d", "7w", "-1d", "1.5h"] {
        assert!(parse_age(bad).is_err(), "{bad:?}");
    }
    let config = Config::load(None).unwrap();
    assert_eq!(config.expire.purge_expunged, Duration::from_secs(7 * 86400));
    assert_eq!(
        config.expire.consumer_max_idle,
        Duration::from_secs(30 * 86400)
    );
}
