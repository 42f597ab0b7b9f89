//! Replication into a large mailbox (issue 9's aim: one new message into a mailbox of
//! 1,000,000 records costs about what it costs into one of 10,000).
//!
//! For each size N, in-process: a master store with one mailbox of N records (sharing
//! a hundred small messages, written as replicated batches for speed), a replica store
//! behind the real sync listener on 127.0.0.1, one full sync; then, each measured
//! several times and reported as the median: one new message appended on the master
//! and a one-shot sync of that mailbox (what rolling replication does per change), a
//! sync with nothing to do, and `--verify` of the user (quick: digests) and
//! `--verify --deep` (every record).
//!
//! Run: `cargo bench -p tern-sync --bench large_mailbox` (N = 10,000 and 1,000,000;
//! `TERN_BENCH_SIZES=10000,100000` to choose). Needs about 2 GB of disk in the temp dir
//! and a few minutes for the million.

use std::time::{Duration, Instant};

use tern_store::{
    Flags, Guid, MailboxState, MailboxUpdate, ReplicaAppend, Store, StoreConfig, UniqueId,
};
use tern_sync::client::{self, ClientConfig, Target};

const USER: &str = "big";
const BATCH: u32 = 5_000;
const REPEATS: usize = 7;

fn message(i: u32) -> Vec<u8> {
    format!(
        "From: sender{i}@example.org\r\nTo: big@example.org\r\nSubject: message {i}\r\n\
         Message-ID: <m{i}@example.org>\r\n\r\nbody of message {i}\r\n"
    )
    .into_bytes()
}

/// A master store with one mailbox of `n` records.
fn build_master(dir: &std::path::Path, n: u32) -> (Store, UniqueId) {
    let store = Store::open(
        StoreConfig::new(dir),
        std::sync::Arc::new(tern_message::MessageIndexer),
    )
    .expect("master store");
    store.create_user(USER, None, false).expect("user");
    let bodies: Vec<Vec<u8>> = (0..100).map(message).collect();
    let id = UniqueId::random();
    let mut uid = 0;
    while uid < n {
        let last = (uid + BATCH).min(n);
        let appends = (uid + 1..=last)
            .map(|u| {
                let body = &bodies[(u % 100) as usize];
                ReplicaAppend {
                    uid: u,
                    modseq: u64::from(u),
                    internaldate: 1_700_000_000 + i64::from(u),
                    size: body.len() as u64,
                    guid: Guid::of(body),
                    flags: if u % 3 == 0 {
                        Flags::parse_list("\\Seen").unwrap_or_default()
                    } else {
                        Flags::new()
                    },
                    // Each body travels once; later records name it held.
                    data: (u <= 100).then(|| body.clone()),
                    pop3_uidl: None,
                }
            })
            .collect();
        store
            .replica()
            .apply_update(MailboxUpdate {
                user: USER.into(),
                uniqueid: Some(id.clone()),
                expect: (uid > 0).then_some(u64::from(uid)),
                state: MailboxState {
                    name: "INBOX".into(),
                    partition: "default".into(),
                    uidvalidity: 1,
                    last_uid: last,
                    highest_modseq: u64::from(last),
                    ..Default::default()
                },
                appends,
                ..Default::default()
            })
            .expect("bulk load");
        uid = last;
    }
    (store, id)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Figures {
    n: u32,
    load: Duration,
    full: Duration,
    one_new: Duration,
    noop: Duration,
    verify: Duration,
    verify_deep: Duration,
    rolling: Duration,
}

/// Waits until the replica's mailbox holds `uid`, polling its store (the bench's own
/// thread; the listener and the rolling client run on the runtime's workers).
fn wait_for(replica: &Store, uid: u32) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let last = replica
            .mailbox(USER, "INBOX")
            .expect("replica mailbox")
            .map_or(0, |m| m.last_uid);
        if last >= uid {
            return;
        }
        assert!(Instant::now() < deadline, "rolling never brought uid {uid}");
        std::thread::sleep(Duration::from_micros(100));
    }
}

async fn measure(n: u32) -> Figures {
    let root = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let (master, _) = build_master(&root.path().join("master"), n);
    let load = started.elapsed();

    let replica = Store::open(
        StoreConfig::new(root.path().join("replica")),
        std::sync::Arc::new(tern_message::MessageIndexer),
    )
    .expect("replica");
    replica
        .create_user("repl", Some("bench-secret"), true)
        .expect("admin");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(tern_sync::serve_tcp(
        listener,
        replica.clone(),
        tern_sync::SyncServerConfig::default(),
        stopped,
    ));
    let config = ClientConfig {
        replica: addr.to_string(),
        user: "repl".into(),
        password: "bench-secret".into(),
        tls: None,
        require_tls: false,
        allow_plaintext: false,
    };
    let sync = |target: Target| {
        let (master, config) = (&master, &config);
        async move {
            let t = Instant::now();
            client::sync(master, config, target, 1).await.expect("sync");
            t.elapsed()
        }
    };
    let full = sync(Target::Users(vec![USER.into()])).await;

    let mut one_new = Vec::new();
    for i in 0..REPEATS as u32 {
        master
            .append_as_owner(USER, "INBOX", &Flags::new(), 0, &message(1_000 + i))
            .expect("append");
        one_new.push(sync(Target::Mailbox(USER.into(), "INBOX".into())).await);
    }
    let mut noop = Vec::new();
    for _ in 0..REPEATS {
        noop.push(sync(Target::Mailbox(USER.into(), "INBOX".into())).await);
    }
    let mut verify = Vec::new();
    for _ in 0..REPEATS {
        let t = Instant::now();
        let (_, _, diffs) = client::verify(&master, &config, vec![USER.into()], false)
            .await
            .expect("verify");
        assert!(diffs.is_empty(), "{diffs:?}");
        verify.push(t.elapsed());
    }
    let t = Instant::now();
    let (_, _, diffs) = client::verify(&master, &config, vec![USER.into()], true)
        .await
        .expect("deep verify");
    assert!(diffs.is_empty(), "{diffs:?}");
    let verify_deep = t.elapsed();

    // The rolling client itself: from the append on the master to the replica holding
    // the message (its 2 ms idle poll of the change log included).
    let (stop_rolling, stop_rx) = tokio::sync::watch::channel(false);
    let rolling_task = {
        let (master, config) = (master.clone(), config.clone());
        tokio::spawn(async move {
            client::rolling(&master, &config, client::RollingOptions::default(), stop_rx).await
        })
    };
    let mut rolling = Vec::new();
    // The first round catches up on the change log of the load and the syncs above.
    for i in 0..=REPEATS as u32 {
        let t = Instant::now();
        let appended = master
            .append_as_owner(USER, "INBOX", &Flags::new(), 0, &message(2_000 + i))
            .expect("append");
        wait_for(&replica, appended.uid);
        if i > 0 {
            rolling.push(t.elapsed());
        }
    }
    let _ = stop_rolling.send(true);
    rolling_task
        .await
        .expect("rolling task")
        .expect("rolling client");
    Figures {
        n,
        load,
        full,
        one_new: median(one_new),
        noop: median(noop),
        verify: median(verify),
        verify_deep,
        rolling: median(rolling),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let sizes: Vec<u32> = std::env::var("TERN_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 1_000_000]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let figures: Vec<Figures> = sizes
        .iter()
        .map(|&n| runtime.block_on(measure(n)))
        .collect();
    println!(
        "| figure | {} |",
        figures
            .iter()
            .map(|f| format!("N = {}", f.n))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---:|".repeat(figures.len()));
    type Row = (&'static str, fn(&Figures) -> Duration);
    let rows: [Row; 7] = [
        ("building the master (bulk load, not replication)", |f| {
            f.load
        }),
        ("full sync (one session)", |f| f.full),
        (
            "one new message + one-shot sync of the mailbox (median)",
            |f| f.one_new,
        ),
        (
            "one new message, rolling client: append to replica holding it (median)",
            |f| f.rolling,
        ),
        ("no-op sync of the mailbox (median)", |f| f.noop),
        ("`--verify` of the user (median)", |f| f.verify),
        ("`--verify --deep` of the user", |f| f.verify_deep),
    ];
    for (name, get) in rows {
        println!(
            "| {name} | {} |",
            figures
                .iter()
                .map(|f| ms(get(f)))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    if let (Some(small), Some(large)) = (figures.first(), figures.last()) {
        if figures.len() > 1 {
            let ratio = large.one_new.as_secs_f64() / small.one_new.as_secs_f64();
            println!(
                "\none new message: N = {} costs {ratio:.2}x N = {}",
                large.n, small.n
            );
            let ratio = large.rolling.as_secs_f64() / small.rolling.as_secs_f64();
            println!(
                "one new message, rolling: N = {} costs {ratio:.2}x N = {}",
                large.n, small.n
            );
        }
    }
}
