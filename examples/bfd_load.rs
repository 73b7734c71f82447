//! BFD load generator for `examples/bench-bfd.sh`.
//!
//!     bfd_load COUNT FIRST REMOTE INTERVAL_MS
//!
//! runs COUNT sessions, one from each of COUNT consecutive local IPv4
//! addresses starting at FIRST, to one REMOTE (the daemon under test), at
//! INTERVAL_MS × 3, with ternd's own BFD task; it prints `up K/COUNT` once a
//! second until killed.
//!
//!     bfd_load floor-send COUNT FIRST REMOTE INTERVAL_MS SECONDS
//!     bfd_load floor-recv LOCAL SECONDS
//!
//! measure what the kernel alone charges for that traffic: the same packet
//! rate (COUNT per 87.5 % of INTERVAL_MS, the mean after RFC 5880 §6.8.7
//! jitter) sent with one `send` per packet from COUNT connected sockets,
//! and received with one `recv` per packet on one socket, with no BFD
//! logic, each waking only every 10 ms (a floor no event loop can beat by
//! waking less). Each prints its own CPU use as `% of one core` when done.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use tern::bfd::{BfdPeer, BfdSettings, BfdTimers};

const USAGE: &str = "usage: bfd_load COUNT FIRST REMOTE INTERVAL_MS\n\
       bfd_load floor-send COUNT FIRST REMOTE INTERVAL_MS SECONDS\n\
       bfd_load floor-recv LOCAL SECONDS";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    tern::sys::raise_nofile_limit();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["floor-send", count, first, remote, interval, secs] => {
            floor_send(num(count), ip4(first), ip4(remote), num(interval), num(secs))
        }
        ["floor-recv", local, secs] => floor_recv(ip4(local), num(secs)),
        [count, first, remote, interval] => sessions(num(count), ip4(first), ip4(remote), num(interval)),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

fn num<T: std::str::FromStr>(s: &str) -> T {
    s.parse().unwrap_or_else(|_| {
        eprintln!("bfd_load: not a number: {s}\n{USAGE}");
        std::process::exit(2)
    })
}

fn ip4(s: &str) -> Ipv4Addr {
    s.parse().unwrap_or_else(|_| {
        eprintln!("bfd_load: not an IPv4 address: {s}\n{USAGE}");
        std::process::exit(2)
    })
}

/// COUNT real sessions, run by ternd's BFD task.
fn sessions(count: u32, first: Ipv4Addr, remote: Ipv4Addr, interval_ms: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let interval = Duration::from_millis(interval_ms);
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
                remote: IpAddr::V4(remote),
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

/// How often the floor loops wake: a BFD implementation must answer far sooner.
const FLOOR_TICK: Duration = Duration::from_millis(10);

/// This process's user + system CPU time so far, from /proc/self/stat (clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

fn report(what: &str, packets: u64, cpu: Duration, wall: Duration) {
    let pct = 100.0 * cpu.as_secs_f64() / wall.as_secs_f64();
    println!(
        "{what} {packets} packets in {:.1} s: {pct:.2} % of one core",
        wall.as_secs_f64()
    );
}

/// A 24-byte BFD Control packet's worth of bytes, sent at the sessions' mean rate.
fn floor_send(count: u32, first: Ipv4Addr, remote: Ipv4Addr, interval_ms: u64, secs: u64) {
    let sockets: Vec<UdpSocket> = (0..count)
        .map(|i| {
            let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(u32::from(first) + i)), 0);
            let s = UdpSocket::bind(local).expect("bind");
            s.set_ttl(255).expect("ttl");
            s.connect((remote, bfd::udp::SINGLE_HOP_PORT)).expect("connect");
            s
        })
        .collect();
    let per_sec = f64::from(count) / (0.875 * interval_ms as f64 / 1000.0);
    let packet = [0u8; 24];
    let (start, cpu0) = (Instant::now(), cpu_time());
    let mut sent = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        let due = (start.elapsed().as_secs_f64() * per_sec) as u64;
        while sent < due {
            let _ = sockets[(sent % u64::from(count)) as usize].send(&packet);
            sent += 1;
        }
        std::thread::sleep(FLOOR_TICK);
    }
    report("floor-send:", sent, cpu_time() - cpu0, start.elapsed());
}

/// Reads whatever arrives on LOCAL:3784, waking once a millisecond.
fn floor_recv(local: Ipv4Addr, secs: u64) {
    let s = UdpSocket::bind((local, bfd::udp::SINGLE_HOP_PORT)).expect("bind");
    // Room for 10 ms of packets between reads.
    let _ = socket2::SockRef::from(&s).set_recv_buffer_size(4 << 20);
    s.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 128];
    let (start, cpu0) = (Instant::now(), cpu_time());
    let mut got = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        while s.recv(&mut buf).is_ok() {
            got += 1;
        }
        std::thread::sleep(FLOOR_TICK);
    }
    report("floor-recv:", got, cpu_time() - cpu0, start.elapsed());
}
