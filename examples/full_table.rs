//! Load generator of bench scenario S2 (`examples/bench/s2.sh`): a full table
//! through the daemon under test, eBGP to eBGP. A *source* peer (AS 65001)
//! announces N distinct /24s from 16.0.0.0 upward, a new attribute set (its
//! own community) every 100 prefixes, one UPDATE per set, then End-of-RIB; a
//! *sink* peer (AS 65002) counts the prefixes it holds (announced minus
//! withdrawn) until all N are there.
//!
//! ```text
//! full_table --connect DAEMON_IP --source SRC_IP --sink SINK_IP [--prefixes 1000000]
//!            [--per-set 100] [--timeout 900] [--result FILE] [--stop FILE]
//! ```
//! Prints one JSON line (also written to FILE): `seconds` from the source's
//! first UPDATE until the sink holds all N, the UPDATEs and bytes the sink
//! received by then. With `--stop`, both sessions stay up until that file
//! exists, so a harness reads the daemon's CPU and memory before teardown.

use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bgp_proto::attributes::{AsPath, AttrValue, Community, MpNextHop, Origin, PathAttribute};
use bgp_proto::update::{pack_announcements, Update};
use bgp_proto::{Family, Message, Nlri};
use ipnetwork::{IpNetwork, Ipv4Network};
use serde_json::json;
use tern_testkit::testpeer::TestPeer;

const SOURCE_AS: u32 = 65001;
const SINK_AS: u32 = 65002;
/// The first announced /24; prefix i is BASE + i * 256.
const BASE: u32 = 0x1000_0000;
/// Keepalive interval of both peers (we propose hold time 90 s).
const KEEPALIVE: Duration = Duration::from_secs(25);

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The command line, as `--name value` pairs.
struct Args(HashMap<String, String>);

impl Args {
    fn parse() -> Result<Args, Error> {
        let raw: Vec<String> = std::env::args().skip(1).collect();
        let mut map = HashMap::new();
        for pair in raw.chunks(2) {
            match pair {
                [k, v] if k.starts_with("--") => map.insert(k[2..].to_string(), v.clone()),
                _ => return Err(format!("expected `--name value` pairs, got {pair:?}").into()),
            };
        }
        Ok(Args(map))
    }

    fn get<T: std::str::FromStr>(&self, name: &str, default: Option<T>) -> Result<T, Error> {
        match self.0.get(name) {
            Some(v) => v.parse().map_err(|_| format!("--{name}: invalid value {v:?}").into()),
            None => default.ok_or_else(|| format!("--{name} is required").into()),
        }
    }
}

/// What the sink has seen; `converged` is set when it held all N.
#[derive(Default)]
struct SinkCount {
    updates: u64,
    bytes: u64,
    announced: u64,
    withdrawn: u64,
    foreign: u64,
    held: usize,
    converged: Option<Instant>,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("full_table: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Error> {
    let args = Args::parse()?;
    let daemon: Ipv4Addr = args.get("connect", None)?;
    let source: Ipv4Addr = args.get("source", None)?;
    let sink: Ipv4Addr = args.get("sink", None)?;
    let prefixes: usize = args.get("prefixes", Some(1_000_000))?;
    let per_set: usize = args.get("per-set", Some(100))?;
    let timeout = Duration::from_secs(args.get("timeout", Some(900))?);
    let result: Option<PathBuf> = args.0.get("result").map(PathBuf::from);
    let stop: Option<PathBuf> = args.0.get("stop").map(PathBuf::from);
    if prefixes == 0 || prefixes > 1 << 22 || per_set == 0 {
        return Err("--prefixes must be 1..=4194304 and --per-set at least 1".into());
    }
    let to = SocketAddr::from((daemon, 179));
    let finish = Arc::new(AtomicBool::new(false));

    // The sink first, so the daemon has it established before any route arrives.
    let sink_peer = TestPeer::connect_from(Some(IpAddr::V4(sink)), to, SINK_AS, sink, Duration::from_secs(30))?;
    let count = Arc::new(Mutex::new(SinkCount::default()));
    let sink_thread = {
        let (count, finish) = (count.clone(), finish.clone());
        std::thread::spawn(move || sink_loop(sink_peer, prefixes, &count, &finish))
    };

    let mut source_peer =
        TestPeer::connect_from(Some(IpAddr::V4(source)), to, SOURCE_AS, source, Duration::from_secs(30))?;
    let table = encode_table(&source_peer, source, prefixes, per_set)?;
    let drain_closed = Arc::new(AtomicBool::new(false));
    {
        let mut stream = source_peer.try_clone_stream()?;
        let closed = drain_closed.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
            closed.store(true, Ordering::Relaxed);
        });
    }
    let t0 = Instant::now();
    source_peer.send_raw(&table.bytes)?;
    source_peer.end_of_rib()?;
    let sent = t0.elapsed();
    eprintln!(
        "full_table: sent {prefixes} prefixes in {} UPDATEs ({} bytes) in {sent:.2?}",
        table.updates,
        table.bytes.len()
    );

    // Wait for the sink, keeping the source's session alive.
    let deadline = t0 + timeout;
    let mut last_keepalive = Instant::now();
    let converged = loop {
        if let Some(at) = count.lock().map_err(|_| "sink poisoned")?.converged {
            break Some(at);
        }
        if sink_thread.is_finished() || drain_closed.load(Ordering::Relaxed) || Instant::now() > deadline {
            break None;
        }
        if last_keepalive.elapsed() > KEEPALIVE {
            source_peer.keepalive()?;
            last_keepalive = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    // Why the sink stopped reading before it held everything (its session
    // closed or broke), for the report.
    let (sink_thread, sink_error) = if converged.is_none() && sink_thread.is_finished() {
        let why = match sink_thread.join() {
            Ok(Ok(())) => "the sink stopped reading".to_string(),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "the sink thread panicked".to_string(),
        };
        (None, Some(why))
    } else {
        (Some(sink_thread), None)
    };
    let report = {
        let c = count.lock().map_err(|_| "sink poisoned")?;
        json!({
            "prefixes": prefixes,
            "per_set": per_set,
            "source_updates": table.updates,
            "source_bytes": table.bytes.len(),
            "source_sent_s": sent.as_secs_f64(),
            "converged": converged.is_some(),
            "seconds": converged.map(|at| at.duration_since(t0).as_secs_f64()),
            "sink_held": c.held,
            "sink_updates": c.updates,
            "sink_bytes": c.bytes,
            "sink_announced": c.announced,
            "sink_withdrawn": c.withdrawn,
            "sink_foreign": c.foreign,
            "source_closed": drain_closed.load(Ordering::Relaxed),
            "sink_error": sink_error,
        })
    };
    println!("{report}");
    if let Some(path) = &result {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{report}\n"))?;
        std::fs::rename(&tmp, path)?;
    }
    if converged.is_none() {
        let why = sink_error.map(|e| format!(": {e}")).unwrap_or_default();
        return Err(format!("the sink did not hold all {prefixes} prefixes{why}").into());
    }
    if let Some(path) = stop {
        while !path.exists() && !drain_closed.load(Ordering::Relaxed) {
            if last_keepalive.elapsed() > KEEPALIVE {
                source_peer.keepalive()?;
                last_keepalive = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    finish.store(true, Ordering::Relaxed);
    if let Some(thread) = sink_thread {
        let _ = thread.join();
    }
    Ok(())
}

/// The whole table as UPDATE bytes, encoded before the clock starts.
struct Table {
    bytes: Vec<u8>,
    updates: usize,
}

fn encode_table(peer: &TestPeer, next_hop: Ipv4Addr, prefixes: usize, per_set: usize) -> Result<Table, Error> {
    let mut bytes = Vec::with_capacity(prefixes * 5);
    let mut updates = 0;
    let all: Vec<Nlri> = (0..prefixes)
        .map(|i| {
            let addr = Ipv4Addr::from(BASE + ((i as u32) << 8));
            Ipv4Network::new(addr, 24).map(|n| Nlri::new(IpNetwork::V4(n)))
        })
        .collect::<Result<_, _>>()?;
    for (set, chunk) in all.chunks(per_set).enumerate() {
        let attrs = [
            PathAttribute::new(AttrValue::Origin(Origin::Igp)),
            PathAttribute::new(AttrValue::AsPath(AsPath::sequence(vec![SOURCE_AS]))),
            PathAttribute::new(AttrValue::Communities(vec![Community(
                (SOURCE_AS << 16) | (set as u32 & 0xffff),
            )])),
        ];
        updates += pack_announcements(
            &peer.tx,
            Family::IPV4_UNICAST,
            MpNextHop::V4(next_hop),
            &attrs,
            chunk,
            &mut bytes,
        )?;
    }
    Ok(Table { bytes, updates })
}

/// Index of an announced prefix in the table, if it is one of ours.
fn table_index(prefix: &IpNetwork, prefixes: usize) -> Option<usize> {
    match prefix {
        IpNetwork::V4(n) if n.prefix() == 24 => {
            let i = u32::from(n.network()).checked_sub(BASE)? >> 8;
            ((i as usize) < prefixes).then_some(i as usize)
        }
        _ => None,
    }
}

/// Reads the sink's session until `finish`, counting held prefixes by
/// membership; answers with KEEPALIVEs on our own schedule.
fn sink_loop(mut peer: TestPeer, prefixes: usize, count: &Mutex<SinkCount>, finish: &AtomicBool) -> Result<(), Error> {
    let mut held = vec![false; prefixes];
    let mut last_keepalive = Instant::now();
    while !finish.load(Ordering::Relaxed) {
        if last_keepalive.elapsed() > KEEPALIVE {
            peer.keepalive()?;
            last_keepalive = Instant::now();
        }
        let before = peer.rx_bytes;
        let Some(decoded) = peer.recv(Instant::now() + Duration::from_millis(200))? else {
            continue;
        };
        let Message::Update(update) = decoded.message else {
            continue;
        };
        let mut c = count.lock().map_err(|_| "sink poisoned")?;
        if c.converged.is_some() {
            continue;
        }
        c.updates += 1;
        c.bytes += peer.rx_bytes - before;
        count_update(&update, &mut held, &mut c);
        if c.held == prefixes {
            c.converged = Some(Instant::now());
        }
    }
    Ok(())
}

fn count_update(update: &Update, held: &mut [bool], c: &mut SinkCount) {
    for (_, nlri) in update.withdrawn_routes() {
        c.withdrawn += 1;
        if let Some(i) = table_index(&nlri.prefix, held.len()) {
            if std::mem::replace(&mut held[i], false) {
                c.held -= 1;
            }
        }
    }
    for (_, nlri) in update.announced() {
        c.announced += 1;
        match table_index(&nlri.prefix, held.len()) {
            Some(i) if !std::mem::replace(&mut held[i], true) => c.held += 1,
            Some(_) => {}
            None => c.foreign += 1,
        }
    }
}
