//! Install then remove 100,000 /26 routes in a fresh network namespace, with fib-sync
//! and with `ip -batch`, and print routes/s for both. Needs root.
//!
//! `cargo run --release -p fib-sync --example bench_install [COUNT] [fib-only] [foreign=N]`
//!
//! `foreign=N` first adds N `/32 dev` routes of another protocol (a Calico host's pod
//! routes) and prints the heap fib-sync holds after starting over them (the cover index);
//! with `NORECURSIVE=1` in the environment fib-sync runs without recursive resolution (no
//! index), for comparison.
//!
//! Besides the rates it prints fib-sync's heap (a counting global allocator: live bytes
//! per route after the install, and the peak during it) and the process RSS (VmRSS,
//! VmHWM from /proc/self/status) with the routes installed. `fib-only` skips `ip -batch`
//! (handy under heaptrack).
#![allow(unsafe_code)] // a counting allocator, geteuid, setns into the bench namespace

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fib_sync::{Change, Desired, FibConfig, FibSync, ShutdownMode};
use ipnetwork::IpNetwork;

/// Counts live heap bytes and their high-water mark, so the table can show them.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE.fetch_sub(l.size(), Ordering::Relaxed);
            grew(new);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Live heap now; resets the peak to it (so the next `peak()` covers one phase).
fn heap_mark() -> usize {
    let now = LIVE.load(Ordering::Relaxed);
    PEAK.store(now, Ordering::Relaxed);
    now
}

/// `VmRSS` and `VmHWM` of this process, in KiB.
fn rss_kib() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Memory figures of the fib-sync run.
struct Mem {
    /// Live heap added by the install, per route.
    live_per_route: f64,
    /// Peak heap during the install above the live heap before it, in bytes.
    peak_install: usize,
    /// Peak heap during the remove above the live heap before the install, in bytes.
    peak_remove: usize,
    /// Peak heap while restarting over the installed routes (dump, adopt, re-desire),
    /// above the live heap before the restart, in bytes.
    peak_adopt: usize,
    /// Live heap left after the remove above the live heap before the install, in bytes.
    left_after_remove: isize,
    /// VmRSS and VmHWM with the routes installed, KiB.
    rss: (u64, u64),
    /// Live heap held after starting (dump of the table, cover index), in bytes.
    at_start: usize,
}

struct NetNs(String);

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(ns: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(["-n", ns])
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn count_ours(ns: &str) -> Result<usize, String> {
    Ok(ip(ns, &["route", "show", "proto", "bird"])?.lines().count())
}

fn prefixes(n: u32) -> Vec<IpNetwork> {
    (0..n)
        .filter_map(|i| IpNetwork::new(Ipv4Addr::from(0x0a00_0000u32 + (i << 6)).into(), 26).ok())
        .collect()
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn run() -> Result<(), String> {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse().map_err(|_| "COUNT must be a number".to_string()))
        .transpose()?
        .unwrap_or(100_000)
        .min(1 << 18);
    let fib_only = std::env::args().any(|a| a == "fib-only");
    let foreign: u32 = std::env::args()
        .find_map(|a| a.strip_prefix("foreign=").map(str::to_string))
        .map(|n| n.parse().map_err(|_| "foreign=N must be a number".to_string()))
        .transpose()?
        .unwrap_or(0)
        .min(1 << 20);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: not root");
        return Ok(());
    }
    let name = format!("tern-fib-bench-{}", std::process::id());
    let st = Command::new("ip").args(["netns", "add", &name]).status();
    if !st.map(|s| s.success()).unwrap_or(false) {
        return Err("cannot create netns".into());
    }
    let ns = NetNs(name);
    for a in [
        &["link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"][..],
        &["link", "set", "eth0", "up"],
        &["link", "set", "eth0p", "up"],
        &["addr", "add", "192.168.1.11/24", "dev", "eth0"],
    ] {
        ip(&ns.0, a)?;
    }
    if foreign > 0 {
        let path = std::env::temp_dir().join(format!("{}-foreign.batch", ns.0));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).map_err(|e| e.to_string())?);
        for i in 0..foreign {
            // 172.16.0.0/12: outside the bench's own prefixes.
            let a = Ipv4Addr::from(0xac10_0000u32 + i);
            writeln!(f, "route add {a}/32 dev eth0 proto 80").map_err(|e| e.to_string())?;
        }
        f.flush().map_err(|e| e.to_string())?;
        drop(f);
        ip(&ns.0, &["-batch", &path.to_string_lossy()])?;
        let _ = std::fs::remove_file(&path);
    }
    let prefixes = prefixes(n);

    // fib-sync, on a thread inside the namespace.
    let nsname = ns.0.clone();
    let pf = prefixes.clone();
    let fib = std::thread::spawn(move || -> Result<(Duration, Duration, Mem), String> {
        let f = std::fs::File::open(format!("/var/run/netns/{nsname}")).map_err(|e| e.to_string())?;
        // SAFETY: valid namespace fd; affects only this thread (and threads it spawns).
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let before_start = heap_mark();
            let cfg = FibConfig {
                recursive: std::env::var_os("NORECURSIVE").is_none(),
                ..FibConfig::default()
            };
            let (h, task) = FibSync::start(cfg).await.map_err(|e| e.to_string())?;
            let gw = "192.168.1.12".parse().map_err(|_| "gw")?;
            h.settle().await.map_err(|e| e.to_string())?;
            let base = heap_mark();
            let at_start = base.saturating_sub(before_start);
            let changes = pf.iter().map(|p| Change::Set(*p, Desired::via([gw]))).collect();
            let t = Instant::now();
            h.apply(changes).await.map_err(|e| e.to_string())?;
            h.settle().await.map_err(|e| e.to_string())?;
            let install = t.elapsed();
            let peak_install = PEAK.load(Ordering::Relaxed).saturating_sub(base);
            let live = heap_mark();
            let rss = rss_kib();
            let c = count_ours(&nsname)?;
            if c != pf.len() {
                return Err(format!("fib-sync installed {c} of {}", pf.len()));
            }
            // Restart over the installed routes (graceful restart): adopt them, re-desire them.
            h.shutdown(ShutdownMode::KeepRoutes).await.map_err(|e| e.to_string())?;
            task.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
            let before_adopt = heap_mark();
            let (h, task) = FibSync::start(FibConfig::default()).await.map_err(|e| e.to_string())?;
            let changes = pf.iter().map(|p| Change::Set(*p, Desired::via([gw]))).collect();
            h.apply(changes).await.map_err(|e| e.to_string())?;
            h.settle().await.map_err(|e| e.to_string())?;
            let peak_adopt = PEAK.load(Ordering::Relaxed).saturating_sub(before_adopt);
            if h.stats().installs != 0 {
                return Err("re-desiring adopted routes rewrote them".into());
            }
            // Start the remove phase's peak here: `count_ours` read a big `ip` output.
            heap_mark();
            let t = Instant::now();
            h.apply(pf.iter().map(|p| Change::Remove(*p)).collect())
                .await
                .map_err(|e| e.to_string())?;
            h.settle().await.map_err(|e| e.to_string())?;
            let remove = t.elapsed();
            let peak_remove = PEAK.load(Ordering::Relaxed).saturating_sub(base);
            let left_after_remove = LIVE.load(Ordering::Relaxed) as isize - base as isize;
            let mem = Mem {
                live_per_route: live.saturating_sub(base) as f64 / pf.len().max(1) as f64,
                peak_install,
                peak_remove,
                peak_adopt,
                left_after_remove,
                rss,
                at_start,
            };
            let c = count_ours(&nsname)?;
            if c != 0 {
                return Err(format!("fib-sync left {c} routes"));
            }
            let st = h.stats();
            if st.errors != 0 || st.resyncs != 1 || st.deletes != pf.len() as u64 {
                println!("note: stats {st:?}");
            }
            h.shutdown(ShutdownMode::KeepRoutes).await.map_err(|e| e.to_string())?;
            task.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
            Ok((install, remove, mem))
        })
    })
    .join()
    .map_err(|_| "fib-sync thread panicked".to_string())??;

    let len = prefixes.len();
    let mib = |b: f64| b / (1024.0 * 1024.0);
    let heap_line = format!(
        "fib-sync heap: {:.1} B/route live after install; peak above start {:.1} MiB (install), {:.1} MiB (restart+adopt), {:.1} MiB (remove); {:.1} KiB left after remove",
        fib.2.live_per_route,
        mib(fib.2.peak_install as f64),
        mib(fib.2.peak_adopt as f64),
        mib(fib.2.peak_remove as f64),
        fib.2.left_after_remove as f64 / 1024.0
    );
    if foreign > 0 {
        println!(
            "fib-sync heap after start over {foreign} foreign /32 dev routes: {:.1} KiB ({:.1} B/route)",
            fib.2.at_start as f64 / 1024.0,
            fib.2.at_start as f64 / f64::from(foreign)
        );
    }
    let (rss, hwm) = (fib.2.rss.0 as f64 / 1024.0, fib.2.rss.1 as f64 / 1024.0);
    if fib_only {
        println!("{len} /26 routes, one veth gateway, fresh netns");
        println!("{heap_line}");
        println!(
            "fib-sync: install {:.3} s ({:.0} r/s), remove {:.3} s ({:.0} r/s), VmRSS {rss:.1} MiB, VmHWM {hwm:.1} MiB",
            fib.0.as_secs_f64(),
            rate(len, fib.0),
            fib.1.as_secs_f64(),
            rate(len, fib.1)
        );
        return Ok(());
    }

    // ip -batch doing the same work.
    let dir = std::env::temp_dir();
    let add = dir.join(format!("{}-add.batch", ns.0));
    let del = dir.join(format!("{}-del.batch", ns.0));
    let write = |path: &std::path::Path, verb: &str| -> Result<(), String> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| e.to_string())?);
        for p in &prefixes {
            if verb == "add" {
                writeln!(f, "route add {p} via 192.168.1.12 dev eth0 proto bird metric 32")
            } else {
                writeln!(f, "route del {p} proto bird metric 32")
            }
            .map_err(|e| e.to_string())?;
        }
        f.flush().map_err(|e| e.to_string())
    };
    write(&add, "add")?;
    write(&del, "del")?;
    let t = Instant::now();
    ip(&ns.0, &["-batch", &add.to_string_lossy()])?;
    let ip_install = t.elapsed();
    let c = count_ours(&ns.0)?;
    let t = Instant::now();
    ip(&ns.0, &["-batch", &del.to_string_lossy()])?;
    let ip_remove = t.elapsed();
    let _ = std::fs::remove_file(&add);
    let _ = std::fs::remove_file(&del);
    if c != prefixes.len() || count_ours(&ns.0)? != 0 {
        return Err("ip -batch did not install/remove every route".into());
    }

    println!("{len} /26 routes, one veth gateway, fresh netns");
    println!(
        "{:<10} {:>10} {:>12} {:>10} {:>12} {:>10} {:>10}",
        "", "install s", "install r/s", "remove s", "remove r/s", "RSS MiB", "HWM MiB"
    );
    let rows = [
        ("fib-sync", fib.0, fib.1, format!("{rss:.1}"), format!("{hwm:.1}")),
        ("ip -batch", ip_install, ip_remove, "-".into(), "-".into()),
    ];
    for (who, i, r, rss, hwm) in rows {
        println!(
            "{:<10} {:>10.3} {:>12.0} {:>10.3} {:>12.0} {:>10} {:>10}",
            who,
            i.as_secs_f64(),
            rate(len, i),
            r.as_secs_f64(),
            rate(len, r),
            rss,
            hwm
        );
    }
    println!("(RSS/HWM: this process, VmRSS/VmHWM with the routes installed by fib-sync)");
    println!("{heap_line}");
    println!(
        "fib-sync / ip -batch: install {:.2}x, remove {:.2}x",
        rate(len, fib.0) / rate(len, ip_install),
        rate(len, fib.1) / rate(len, ip_remove)
    );
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench_install: {e}");
        std::process::exit(1);
    }
}
