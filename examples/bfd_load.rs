//! BFD load generator for `examples/bench-bfd.sh`: COUNT sessions, one from
//! each of COUNT consecutive local IPv4 addresses starting at FIRST, to one
//! REMOTE (ternd), at INTERVAL_MS × 3, run by ternd's own BFD task. Prints
//! `up K/COUNT` once a second until killed.
//!
//!     bfd_load COUNT FIRST REMOTE INTERVAL_MS

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use tern::bfd::{BfdPeer, BfdSettings, BfdTimers};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: bfd_load COUNT FIRST REMOTE INTERVAL_MS";
    let [count, first, remote, interval] = args.as_slice() else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let count: u32 = count.parse().expect(usage);
    let first: Ipv4Addr = first.parse().expect(usage);
    let remote: IpAddr = remote.parse().expect(usage);
    let interval = Duration::from_millis(interval.parse().expect(usage));
    tern::sys::raise_nofile_limit();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let timers = BfdTimers {
            min_tx: interval,
            min_rx: interval,
            multiplier: 3,
        };
        let (bfd, _notices) = tern::bfd::spawn(BfdSettings::new(vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)], timers));
        for i in 0..count {
            let local = Ipv4Addr::from(u32::from(first) + i);
            bfd.add(BfdPeer {
                name: format!("s{i}"),
                remote,
                local: Some(IpAddr::V4(local)),
                multihop: false,
            });
        }
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let up = bfd.sessions().await.iter().filter(|s| s.state == "Up").count();
            println!("up {up}/{count}");
        }
    });
}
