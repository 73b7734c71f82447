//! Test harness: one `Kernel` trait implemented by the in-memory kernel and by a real
//! network namespace driven with `ip`, so the same scenarios run against both.
#![allow(dead_code)]
#![allow(unsafe_code)] // geteuid, setns into the test namespace

use std::collections::BTreeSet;
use std::future::Future;
use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fib_sync::{Fib, Hop, KernelRoute, MemoryFib, MemoryKernel, NetlinkFib, RouteKey, RouteKind};
use ipnetwork::IpNetwork;

/// A route as a test looks at it (device names, not indexes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub prefix: IpNetwork,
    pub proto: u8,
    pub metric: u32,
    pub blackhole: bool,
    pub hops: BTreeSet<(IpAddr, String, bool)>,
}

/// A foreign route to add the way an admin would.
pub struct Spec<'a> {
    pub prefix: &'a str,
    /// Gateway; empty for a device route (`dev DEV` only).
    pub via: &'a str,
    pub dev: &'a str,
    pub proto: u8,
    pub metric: u32,
}

/// What a scenario can do to the kernel besides running fib-sync.
pub trait Kernel {
    type F: Fib;
    fn fib(&self) -> Self::F;
    fn add_link(&self, name: &str);
    fn set_up(&self, name: &str, up: bool);
    /// Delete a link (its IPv4 routes go without a notification).
    fn del_link(&self, name: &str);
    fn add_addr(&self, name: &str, cidr: &str);
    fn del_addr(&self, name: &str, cidr: &str);
    fn add_route(&self, s: &Spec);
    /// `ip route replace`.
    fn replace_route(&self, s: &Spec);
    fn del_route(&self, prefix: &str, metric: u32);
    fn routes(&self) -> Vec<Seen>;
    /// Make fib-sync do a full dump + reconcile (lost notifications in the memory kernel;
    /// an address removal in a namespace).
    fn trigger_resync(&self);
    fn is_netlink(&self) -> bool;
}

pub fn net(s: &str) -> IpNetwork {
    s.parse().expect("test prefix")
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn mem_route(k: &MemoryKernel, s: &Spec) -> KernelRoute {
    KernelRoute {
        prefix: net(s.prefix),
        table: 254,
        protocol: s.proto,
        metric: s.metric,
        kind: RouteKind::unicast(vec![Hop {
            gateway: (!s.via.is_empty()).then(|| ip(s.via)),
            ifindex: k.ifindex(s.dev).expect("device"),
            onlink: false,
        }]),
    }
}

impl Kernel for MemoryKernel {
    type F = MemoryFib;
    fn fib(&self) -> MemoryFib {
        MemoryKernel::fib(self)
    }
    fn add_link(&self, name: &str) {
        MemoryKernel::add_link(self, name);
    }
    fn set_up(&self, name: &str, up: bool) {
        assert!(MemoryKernel::set_up(self, name, up));
    }
    fn del_link(&self, name: &str) {
        assert!(MemoryKernel::del_link(self, name));
    }
    fn add_addr(&self, name: &str, cidr: &str) {
        assert!(MemoryKernel::add_addr(self, name, net(cidr)));
    }
    fn del_addr(&self, name: &str, cidr: &str) {
        assert!(MemoryKernel::del_addr(self, name, net(cidr)));
    }
    fn add_route(&self, s: &Spec) {
        MemoryKernel::add_route(self, mem_route(self, s)).expect("add foreign route");
    }
    fn replace_route(&self, s: &Spec) {
        MemoryKernel::replace_route(self, mem_route(self, s)).expect("replace foreign route");
    }
    fn del_route(&self, prefix: &str, metric: u32) {
        MemoryKernel::del_route(
            self,
            254,
            RouteKey {
                prefix: net(prefix),
                metric,
            },
        )
        .expect("del route");
    }
    fn routes(&self) -> Vec<Seen> {
        MemoryKernel::routes(self, 254)
            .into_iter()
            .map(|r| Seen {
                prefix: r.prefix,
                proto: r.protocol,
                metric: r.metric,
                blackhole: r.kind == RouteKind::Blackhole,
                hops: match &r.kind {
                    RouteKind::Unicast(h) => h
                        .iter()
                        .filter_map(|h| Some((h.gateway?, self.link_name(h.ifindex)?, h.onlink)))
                        .collect(),
                    _ => BTreeSet::new(),
                },
            })
            .collect()
    }
    fn trigger_resync(&self) {
        self.overrun();
    }
    fn is_netlink(&self) -> bool {
        false
    }
}

/// A network namespace, deleted on drop (also when the test panics).
pub struct NetNs {
    pub name: String,
}

static NS_COUNTER: AtomicUsize = AtomicUsize::new(0);

impl NetNs {
    /// Create `tern-fib-<pid>-<n>`; `Err(reason)` when the test must be skipped.
    pub fn new() -> Result<NetNs, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root".into());
        }
        let name = format!(
            "tern-fib-{}-{}",
            std::process::id(),
            NS_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .map_err(|e| format!("ip not available: {e}"))?;
        if !out.status.success() {
            return Err(format!("cannot create netns: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(NetNs { name })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Kernel of a namespace, changed with `ip -n NAME ...`.
#[derive(Clone)]
pub struct NsKernel {
    pub ns: String,
}

impl NsKernel {
    /// Run `ip -n NS <args>`, panicking with stderr on failure.
    pub fn ip(&self, args: &str) -> String {
        let mut a = vec!["-n", &self.ns];
        a.extend(args.split_whitespace());
        let out = Command::new("ip").args(&a).output().expect("run ip");
        assert!(
            out.status.success(),
            "ip {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn dump(&self, family: &str) -> Vec<Seen> {
        let out = self.ip(&format!("-N -j {family} route show table main"));
        let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j output");
        let mut res = Vec::new();
        for r in v.as_array().into_iter().flatten() {
            let s = |k: &str| r.get(k).and_then(|x| x.as_str()).map(str::to_string);
            let mut dst = s("dst").unwrap_or_default();
            if dst == "default" {
                dst = if family == "-6" { "::/0" } else { "0.0.0.0/0" }.into();
            } else if !dst.contains('/') {
                dst += if family == "-6" { "/128" } else { "/32" };
            }
            let onlink = |x: &serde_json::Value| {
                x.get("flags")
                    .and_then(|f| f.as_array())
                    .is_some_and(|f| f.iter().any(|f| f == "onlink"))
            };
            let mut hops = BTreeSet::new();
            if let Some(nhs) = r.get("nexthops").and_then(|n| n.as_array()) {
                for nh in nhs {
                    if let (Some(g), Some(d)) = (nh.get("gateway"), nh.get("dev")) {
                        hops.insert((
                            ip(g.as_str().unwrap_or("")),
                            d.as_str().unwrap_or("").to_string(),
                            onlink(nh),
                        ));
                    }
                }
            } else if let (Some(g), Some(d)) = (s("gateway"), s("dev")) {
                hops.insert((ip(&g), d, onlink(r)));
            }
            res.push(Seen {
                prefix: net(&dst),
                proto: s("protocol").and_then(|p| p.parse().ok()).unwrap_or(0),
                metric: r.get("metric").and_then(|m| m.as_u64()).unwrap_or(0) as u32,
                blackhole: s("type").as_deref() == Some("6"),
                hops,
            });
        }
        res
    }
}

/// `PREFIX [via GW] dev DEV proto P metric M` for `ip route`.
fn ns_route(s: &Spec) -> String {
    let via = if s.via.is_empty() {
        String::new()
    } else {
        format!("via {} ", s.via)
    };
    format!("{} {via}dev {} proto {} metric {}", s.prefix, s.dev, s.proto, s.metric)
}

impl Kernel for NsKernel {
    type F = NetlinkFib;
    fn fib(&self) -> NetlinkFib {
        NetlinkFib::new(254, 512).expect("netlink fib")
    }
    fn add_link(&self, name: &str) {
        let peer = format!("{}p", name);
        self.ip(&format!("link add {name} type veth peer name {peer}"));
        self.ip(&format!("link set {peer} up"));
        self.ip(&format!("link set {name} up"));
    }
    fn set_up(&self, name: &str, up: bool) {
        self.ip(&format!("link set {name} {}", if up { "up" } else { "down" }));
    }
    fn del_link(&self, name: &str) {
        self.ip(&format!("link del {name}"));
    }
    fn add_addr(&self, name: &str, cidr: &str) {
        self.ip(&format!("addr add {cidr} dev {name}"));
    }
    fn del_addr(&self, name: &str, cidr: &str) {
        self.ip(&format!("addr del {cidr} dev {name}"));
    }
    fn add_route(&self, s: &Spec) {
        self.ip(&format!("route add {}", ns_route(s)));
    }
    fn replace_route(&self, s: &Spec) {
        self.ip(&format!("route replace {}", ns_route(s)));
    }
    fn del_route(&self, prefix: &str, metric: u32) {
        self.ip(&format!("route del {prefix} metric {metric}"));
    }
    fn routes(&self) -> Vec<Seen> {
        let mut v = self.dump("-4");
        v.extend(self.dump("-6"));
        v
    }
    fn trigger_resync(&self) {
        // Losing an address makes fib-sync re-dump (the kernel flushes IPv4 routes silently).
        self.ip("addr add 192.168.77.1/24 dev lo");
        self.ip("addr del 192.168.77.1/24 dev lo");
    }
    fn is_netlink(&self) -> bool {
        true
    }
}

/// Run an async scenario inside a fresh namespace on a dedicated thread (netlink sockets
/// bind to the creating thread's namespace). Prints `skipped: ...` without root.
pub fn in_netns<Fut, F>(f: F)
where
    F: FnOnce(NsKernel) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let ns = match NetNs::new() {
        Ok(ns) => ns,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let name = ns.name.clone();
    let res = std::thread::spawn(move || {
        let path = format!("/var/run/netns/{name}");
        let file = std::fs::File::open(&path).expect("open netns");
        use std::os::fd::AsRawFd;
        // SAFETY: valid namespace fd; affects only this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(f(NsKernel { ns: name }));
    })
    .join();
    drop(ns);
    if let Err(p) = res {
        std::panic::resume_unwind(p);
    }
}

/// Poll `cond` until true or the deadline passes (fib-sync repairs are event-driven,
/// so this normally returns within milliseconds).
pub async fn wait_for<F: FnMut() -> bool>(what: &str, mut cond: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if cond() {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Our routes (proto 12) in the kernel.
pub fn ours<K: Kernel>(k: &K) -> Vec<Seen> {
    k.routes().into_iter().filter(|r| r.proto == 12).collect()
}

pub fn find<K: Kernel>(k: &K, prefix: &str) -> Vec<Seen> {
    let p = net(prefix);
    k.routes().into_iter().filter(|r| r.prefix == p).collect()
}

pub fn hops(list: &[(&str, &str, bool)]) -> BTreeSet<(IpAddr, String, bool)> {
    list.iter().map(|(g, d, o)| (ip(g), d.to_string(), *o)).collect()
}
