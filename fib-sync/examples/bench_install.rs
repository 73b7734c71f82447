//! Install then remove 100,000 /26 routes in a fresh network namespace, with fib-sync
//! and with `ip -batch`, and print routes/s for both. Needs root.
//!
//! `cargo run --release -p fib-sync --example bench_install [COUNT]`

use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use fib_sync::{Change, Desired, FibConfig, FibSync, ShutdownMode};
use ipnetwork::IpNetwork;

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
    let prefixes = prefixes(n);

    // fib-sync, on a thread inside the namespace.
    let nsname = ns.0.clone();
    let pf = prefixes.clone();
    let fib = std::thread::spawn(move || -> Result<(Duration, Duration), String> {
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
            let (h, task) = FibSync::start(FibConfig::default()).await.map_err(|e| e.to_string())?;
            let gw = "192.168.1.12".parse().map_err(|_| "gw")?;
            let changes = pf.iter().map(|p| Change::Set(*p, Desired::via([gw]))).collect();
            let t = Instant::now();
            h.apply(changes).await.map_err(|e| e.to_string())?;
            h.settle().await.map_err(|e| e.to_string())?;
            let install = t.elapsed();
            let c = count_ours(&nsname)?;
            if c != pf.len() {
                return Err(format!("fib-sync installed {c} of {}", pf.len()));
            }
            let t = Instant::now();
            h.apply(pf.iter().map(|p| Change::Remove(*p)).collect())
                .await
                .map_err(|e| e.to_string())?;
            h.settle().await.map_err(|e| e.to_string())?;
            let remove = t.elapsed();
            let c = count_ours(&nsname)?;
            if c != 0 {
                return Err(format!("fib-sync left {c} routes"));
            }
            let st = h.stats();
            if st.errors != 0 || st.resyncs != 1 {
                println!("note: stats {st:?}");
            }
            h.shutdown(ShutdownMode::KeepRoutes).await.map_err(|e| e.to_string())?;
            task.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
            Ok((install, remove))
        })
    })
    .join()
    .map_err(|_| "fib-sync thread panicked".to_string())??;

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

    let len = prefixes.len();
    println!("{len} /26 routes, one veth gateway, fresh netns");
    println!(
        "{:<10} {:>12} {:>14} {:>12} {:>14}",
        "", "install s", "install r/s", "remove s", "remove r/s"
    );
    for (who, i, r) in [("fib-sync", fib.0, fib.1), ("ip -batch", ip_install, ip_remove)] {
        println!(
            "{:<10} {:>12.3} {:>14.0} {:>12.3} {:>14.0}",
            who,
            i.as_secs_f64(),
            rate(len, i),
            r.as_secs_f64(),
            rate(len, r)
        );
    }
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
