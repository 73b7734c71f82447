//! An in-memory kernel: links, addresses, routes of every protocol, and notifications,
//! with the kernel's rules that matter to us (EEXIST, ESRCH, ENODEV, ENETUNREACH, and
//! silent flushing of IPv4 routes when their device goes down).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use ipnetwork::IpNetwork;
use tokio::sync::mpsc;

use crate::error::FibError;
use crate::fib::{Fib, FibEvent, OpResult};
use crate::model::{Errno, KernelRoute, Link, Op, RouteKey, RouteKind};

#[derive(Debug, Default)]
struct Inner {
    links: BTreeMap<u32, Link>,
    next_ifindex: u32,
    routes: BTreeMap<(u32, RouteKey), KernelRoute>,
    listeners: Vec<mpsc::UnboundedSender<FibEvent>>,
    inject: HashMap<IpNetwork, i32>,
    requests: u64,
}

impl Inner {
    fn notify(&mut self, ev: FibEvent) {
        self.listeners.retain(|l| l.send(ev.clone()).is_ok());
    }

    fn ifindex(&self, name: &str) -> Option<u32> {
        self.links.values().find(|l| l.name == name).map(|l| l.ifindex)
    }

    /// The kernel's next-hop checks (fib_check_nh): device exists and is up; a gateway
    /// without onlink must be inside a subnet of that device.
    fn check(&self, r: &KernelRoute) -> OpResult {
        if let RouteKind::Unicast(hops) = &r.kind {
            if hops.is_empty() {
                return Err(Errno(libc::EINVAL));
            }
            for h in hops.iter() {
                let l = self.links.get(&h.ifindex).ok_or(Errno(libc::ENODEV))?;
                if !l.up {
                    return Err(Errno(libc::ENETDOWN));
                }
                if let Some(gw) = h.gateway {
                    if gw.is_ipv4() != r.prefix.is_ipv4() {
                        return Err(Errno(libc::EINVAL));
                    }
                    let ll = matches!(gw, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
                    if !h.onlink && !ll && !l.addrs.iter().any(|a| a.contains(gw)) {
                        return Err(Errno(libc::ENETUNREACH));
                    }
                }
            }
        }
        Ok(())
    }

    fn apply_one(&mut self, op: &Op) -> OpResult {
        self.requests += 1;
        let r = op.route();
        if let Some(e) = self.inject.get(&r.prefix) {
            return Err(Errno(*e));
        }
        let k = (r.table, r.key());
        match op {
            Op::Add(r) | Op::Replace(r) => {
                if matches!(op, Op::Add(_)) && self.routes.contains_key(&k) {
                    return Err(Errno(libc::EEXIST));
                }
                self.check(r)?;
                self.routes.insert(k, r.clone());
                self.notify(FibEvent::RouteAdded(r.clone()));
                Ok(())
            }
            Op::Delete(r) => match self.routes.get(&k) {
                Some(have) if have.protocol == r.protocol => {
                    let gone = self.routes.remove(&k).ok_or(Errno(libc::ESRCH))?;
                    self.notify(FibEvent::RouteDeleted(gone));
                    Ok(())
                }
                _ => Err(Errno(libc::ESRCH)),
            },
        }
    }

    /// Drop routes whose hops no longer pass the checks, without notifying (as the
    /// kernel does for IPv4 when a device goes down or loses its address).
    fn flush_dead(&mut self) {
        let dead: Vec<_> = self
            .routes
            .iter()
            .filter(|(_, r)| self.check(r).is_err())
            .map(|(k, _)| *k)
            .collect();
        for k in dead {
            self.routes.remove(&k);
        }
    }
}

/// Handle on an in-memory kernel; clone it to manipulate the "kernel" from a test while
/// a [`MemoryFib`] made from it is driven by the sync worker.
#[derive(Debug, Clone)]
pub struct MemoryKernel {
    inner: Arc<Mutex<Inner>>,
}

impl Default for MemoryKernel {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryKernel {
    /// An empty kernel with only `lo` (ifindex 1, up).
    pub fn new() -> Self {
        let k = MemoryKernel {
            inner: Arc::new(Mutex::new(Inner {
                next_ifindex: 1,
                ..Inner::default()
            })),
        };
        k.add_link("lo");
        k
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means a test thread panicked; the data is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A `Fib` driving this kernel, subscribed to its notifications.
    pub fn fib(&self) -> MemoryFib {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().listeners.push(tx);
        MemoryFib {
            kernel: self.clone(),
            events: Some(rx),
        }
    }

    /// Create an up link; returns its ifindex.
    pub fn add_link(&self, name: &str) -> u32 {
        let mut g = self.lock();
        let ifindex = g.next_ifindex;
        g.next_ifindex += 1;
        g.links.insert(
            ifindex,
            Link {
                ifindex,
                name: name.to_string(),
                up: true,
                addrs: Vec::new(),
            },
        );
        g.notify(FibEvent::LinkChanged {
            ifindex,
            name: name.to_string(),
            up: true,
        });
        ifindex
    }

    /// Index of a link by name.
    pub fn ifindex(&self, name: &str) -> Option<u32> {
        self.lock().ifindex(name)
    }

    /// Name of a link by index.
    pub fn link_name(&self, ifindex: u32) -> Option<String> {
        self.lock().links.get(&ifindex).map(|l| l.name.clone())
    }

    /// Set a link up or down; returns false if it does not exist.
    pub fn set_up(&self, name: &str, up: bool) -> bool {
        let mut g = self.lock();
        let Some(i) = g.ifindex(name) else {
            return false;
        };
        if let Some(l) = g.links.get_mut(&i) {
            l.up = up;
        }
        g.flush_dead();
        g.notify(FibEvent::LinkChanged {
            ifindex: i,
            name: name.to_string(),
            up,
        });
        true
    }

    /// Delete a link; its routes go silently.
    pub fn del_link(&self, name: &str) -> bool {
        let mut g = self.lock();
        let Some(i) = g.ifindex(name) else {
            return false;
        };
        g.links.remove(&i);
        g.flush_dead();
        g.notify(FibEvent::LinkDeleted { ifindex: i });
        true
    }

    /// Add an address to a link.
    pub fn add_addr(&self, name: &str, addr: IpNetwork) -> bool {
        let mut g = self.lock();
        let Some(i) = g.ifindex(name) else {
            return false;
        };
        if let Some(l) = g.links.get_mut(&i) {
            l.addrs.push(addr);
        }
        g.notify(FibEvent::AddrAdded { ifindex: i, addr });
        true
    }

    /// Remove an address from a link; routes through it that become unreachable go silently.
    pub fn del_addr(&self, name: &str, addr: IpNetwork) -> bool {
        let mut g = self.lock();
        let Some(i) = g.ifindex(name) else {
            return false;
        };
        if let Some(l) = g.links.get_mut(&i) {
            l.addrs.retain(|a| *a != addr);
        }
        g.flush_dead();
        g.notify(FibEvent::AddrDeleted { ifindex: i, addr });
        true
    }

    /// `ip route add` (exclusive create) on behalf of someone else.
    pub fn add_route(&self, r: KernelRoute) -> OpResult {
        self.lock().apply_one(&Op::Add(r))
    }

    /// `ip route replace` on behalf of someone else.
    pub fn replace_route(&self, r: KernelRoute) -> OpResult {
        self.lock().apply_one(&Op::Replace(r))
    }

    /// `ip route del PREFIX metric M table T` of whatever protocol holds the key.
    pub fn del_route(&self, table: u32, key: RouteKey) -> OpResult {
        let mut g = self.lock();
        let gone = g.routes.remove(&(table, key)).ok_or(Errno(libc::ESRCH))?;
        g.notify(FibEvent::RouteDeleted(gone));
        Ok(())
    }

    /// All routes of a table.
    pub fn routes(&self, table: u32) -> Vec<KernelRoute> {
        self.lock()
            .routes
            .iter()
            .filter(|((t, _), _)| *t == table)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Make every op on `prefix` fail with `errno` (or stop doing so with `None`).
    pub fn inject_error(&self, prefix: IpNetwork, errno: Option<i32>) {
        let mut g = self.lock();
        match errno {
            Some(e) => g.inject.insert(prefix, e),
            None => g.inject.remove(&prefix),
        };
    }

    /// Simulate lost notifications (ENOBUFS on the listener socket).
    pub fn overrun(&self) {
        self.lock().notify(FibEvent::Overrun);
    }

    /// Number of route requests processed so far.
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }
}

/// [`Fib`] over a [`MemoryKernel`].
#[derive(Debug)]
pub struct MemoryFib {
    kernel: MemoryKernel,
    events: Option<mpsc::UnboundedReceiver<FibEvent>>,
}

impl Fib for MemoryFib {
    fn take_events(&mut self) -> Option<mpsc::UnboundedReceiver<FibEvent>> {
        self.events.take()
    }

    async fn dump_links(&mut self) -> Result<Vec<Link>, FibError> {
        Ok(self.kernel.lock().links.values().cloned().collect())
    }

    async fn dump_routes(&mut self, table: u32) -> Result<Vec<KernelRoute>, FibError> {
        Ok(self.kernel.routes(table))
    }

    async fn apply(&mut self, ops: &[Op]) -> Result<Vec<OpResult>, FibError> {
        let mut g = self.kernel.lock();
        Ok(ops.iter().map(|op| g.apply_one(op)).collect())
    }
}
