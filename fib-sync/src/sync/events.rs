//! Kernel notifications folded into the worker's view, and the full resync.

use std::net::IpAddr;

use super::*;
use crate::cover::CoverIndex;

impl<F: Fib> Worker<F> {
    /// Queue the desired routes naming one of `gateways`. One pass over the records,
    /// made only when a next hop's covering route changed: no per-route dependency is
    /// stored, so a route costs no more memory for being resolved recursively.
    fn mark_using(&mut self, gateways: &[IpAddr]) {
        for (p, slot) in self.routes.iter_mut() {
            if slot.uses_any(&self.res.states, gateways) {
                mark(&mut self.dirty, p, slot, &mut self.res);
            }
        }
    }

    /// Whether a link's changes can change a resolution: it has addresses (on-link
    /// gateways), is the tunnel or a device hint, or carries a next hop's covering route.
    pub(super) fn link_matters(&self, ifindex: u32, name: &str, has_addrs: bool) -> bool {
        has_addrs
            || name == self.cfg.tunnel_device
            || self.hints.contains_key(name)
            || self.res.gateways.uses_link(ifindex)
    }

    /// Fold a route of our table into the cover index; when that changes the route a next
    /// hop in use resolves through, re-resolve the desired routes naming that next hop.
    /// Returns whether the index changed (so next hops inside the route's
    /// prefix may resolve differently).
    fn cover_route(&mut self, r: &KernelRoute, added: bool) -> bool {
        if !self.res.recursive {
            return false;
        }
        let own = self.cfg.protocol;
        let changed = if added {
            self.res.covers.learn(r, own, &mut self.res.hops)
        } else {
            self.res.covers.forget(r, own)
        };
        if !changed {
            return false;
        }
        let moved = self.res.gateways.recheck(r.prefix, &self.res.covers);
        if !moved.is_empty() {
            tracing::debug!(route = %r.prefix, next_hops = ?moved, "covering route changed; re-resolving");
            self.res.links_changed();
            self.mark_using(&moved);
        }
        true
    }

    /// Folds one kernel notification in; after a link or address change, or
    /// a change of a route that covers a next hop, tracked next hops are
    /// checked again.
    pub(super) fn event(&mut self, e: FibEvent) {
        let recheck = matches!(
            e,
            FibEvent::LinkChanged { .. }
                | FibEvent::LinkDeleted { .. }
                | FibEvent::AddrAdded { .. }
                | FibEvent::AddrDeleted { .. }
        );
        // A route of another protocol may cover tracked next hops (recursive
        // resolution): those inside its prefix are checked again.
        self.learn_event(&e);
        let covering = match &e {
            FibEvent::RouteAdded(r) if r.table == self.cfg.table => self.cover_route(r, true).then_some(r.prefix),
            FibEvent::RouteDeleted(r) if r.table == self.cfg.table => self.cover_route(r, false).then_some(r.prefix),
            _ => None,
        };
        self.fold_event(e);
        if recheck {
            self.recheck_next_hops(None);
        } else if let Some(prefix) = covering {
            self.recheck_next_hops(Some(prefix));
        }
    }

    fn fold_event(&mut self, e: FibEvent) {
        bump(&self.stats.events, 1);
        let proto = self.cfg.protocol;
        let metric = self.cfg.metric;
        match e {
            FibEvent::RouteAdded(r) | FibEvent::RouteDeleted(r) if r.table != self.cfg.table => {}
            FibEvent::RouteAdded(r) if r.metric == metric => {
                // One route per key: a route of one owner replaces the other's.
                let slot = self.routes.slot(r.prefix);
                if r.protocol == proto {
                    if slot.own_is(&self.res.states, &r.kind) {
                        // The echo of our own change: nothing to do, nothing allocated.
                        return;
                    }
                    let adopted = !slot.owned(&self.res.states);
                    slot.set_own(Some(&r.kind), &mut self.res);
                    slot.set_flags(&mut self.res, |f| {
                        f.stale |= adopted;
                        f.foreign = None;
                    });
                } else {
                    if slot.flags(&self.res.states).foreign == Some(r.protocol) && !slot.owned(&self.res.states) {
                        return;
                    }
                    slot.set_own(None, &mut self.res);
                    slot.set_flags(&mut self.res, |f| f.foreign = Some(r.protocol));
                }
                mark(&mut self.dirty, r.prefix, slot, &mut self.res);
            }
            FibEvent::RouteAdded(r) => {
                // Another metric: only our own routes matter there.
                if r.protocol != proto {
                    return;
                }
                let key = r.key();
                if self.other_own.get(&key).is_some_and(|o| o.route == r) {
                    return;
                }
                let stale = self.other_own.get(&key).is_none_or(|o| o.stale);
                self.other_own.insert(key, OwnRoute { route: r, stale });
                self.dirty_other.insert(key);
            }
            FibEvent::RouteDeleted(r) if r.metric == metric => {
                let Some(slot) = self.routes.get_mut(&r.prefix) else {
                    return;
                };
                if r.protocol == proto {
                    if slot.owned(&self.res.states) {
                        if slot.wanted(&self.res.states) && !slot.flags(&self.res.states).stale {
                            tracing::info!(prefix = %r.prefix, "owned route removed by someone else; restoring");
                            bump(&self.stats.restores, 1);
                        }
                        slot.set_own(None, &mut self.res);
                        mark(&mut self.dirty, r.prefix, slot, &mut self.res);
                    }
                } else if slot.flags(&self.res.states).foreign == Some(r.protocol) {
                    slot.set_flags(&mut self.res, |f| f.foreign = None);
                    mark(&mut self.dirty, r.prefix, slot, &mut self.res);
                }
            }
            FibEvent::RouteDeleted(r) => {
                let key = r.key();
                if r.protocol == proto && self.other_own.remove(&key).is_some() {
                    self.dirty_other.insert(key);
                }
            }
            FibEvent::LinkChanged { ifindex, name, up } => {
                let links = &mut self.res.links;
                let before = links.get(ifindex).map(|l| (l.up, !l.addrs.is_empty()));
                let old_name = links.get(ifindex).map(|l| l.name.clone());
                if links.upsert(ifindex, &name, up) {
                    self.res.links_changed();
                    let has_addrs = self.res.links.get(ifindex).is_some_and(|l| !l.addrs.is_empty());
                    let renamed_relevant = old_name.is_some_and(|n| self.link_matters(ifindex, &n, false));
                    if self.link_matters(ifindex, &name, has_addrs) || renamed_relevant {
                        self.mark_all_desired();
                        // IPv4 routes via a device going down vanish without notification.
                        if matches!(before, Some((true, _))) && !up {
                            self.resync_needed = true;
                        }
                    }
                }
            }
            FibEvent::LinkDeleted { ifindex } => {
                if let Some(l) = self.res.links.remove(ifindex) {
                    self.res.links_changed();
                    if self.link_matters(ifindex, &l.name, !l.addrs.is_empty()) {
                        self.mark_all_desired();
                        self.resync_needed = true;
                    }
                }
            }
            FibEvent::AddrAdded { ifindex, addr } => {
                if !is_v6_link_local(&addr) && self.res.links.add_addr(ifindex, addr) {
                    self.res.links_changed();
                    self.mark_all_desired();
                }
            }
            FibEvent::AddrDeleted { ifindex, addr } => {
                if !is_v6_link_local(&addr) && self.res.links.del_addr(ifindex, addr) {
                    self.res.links_changed();
                    self.mark_all_desired();
                    self.resync_needed = true;
                }
            }
            FibEvent::Overrun => self.resync_needed = true,
        }
    }

    /// Dump links and our table, rebuild the kernel side of every record (new own routes
    /// are adopted as stale), and reconcile everything.
    pub(super) async fn resync(&mut self) -> Result<(), FibError> {
        self.resync_needed = false;
        // Events queued before the dump are superseded by it.
        while self.events.try_recv().is_ok() {}
        let links = self.fib.dump_links().await?;
        let routes = self.fib.dump_routes(self.cfg.table).await?;
        self.res.links = LinkTable::from_links(links.into_iter().map(|mut l| {
            l.addrs.retain(|a| !is_v6_link_local(a));
            l
        }));
        self.res.links_changed();
        self.relearn(&routes);
        if self.res.recursive {
            // The old index goes first: the peak holds one, not two.
            self.res.covers = CoverIndex::default();
            self.res.covers = CoverIndex::build(&routes, self.cfg.protocol, &mut self.res.hops);
            self.res.gateways.recheck_all(&self.res.covers);
            tracing::debug!(routes = self.res.covers.len(), "routes that may cover next hops");
        }
        // Forget the kernel side. A slot that was not ours gets `stale` set, so a route of
        // ours found there now is adopted as stale; ours keep their flag.
        for slot in self.routes.values_mut() {
            let not_ours = !slot.owned(&self.res.states);
            slot.set_own(None, &mut self.res);
            slot.set_flags(&mut self.res, |f| {
                f.stale |= not_ours;
                f.foreign = None;
            });
        }
        self.dirty_other.extend(self.other_own.keys().copied());
        let mut other = HashMap::new();
        let (proto, metric) = (self.cfg.protocol, self.cfg.metric);
        for r in routes {
            if r.metric == metric {
                if r.protocol == proto {
                    // A slot new here was not ours either: stale.
                    let new = self.routes.get(&r.prefix).is_none();
                    let slot = self.routes.slot(r.prefix);
                    slot.set_own(Some(&r.kind), &mut self.res);
                    slot.set_flags(&mut self.res, |f| f.stale |= new);
                } else {
                    let slot = self.routes.slot(r.prefix);
                    slot.set_flags(&mut self.res, |f| f.foreign = Some(r.protocol));
                }
            } else if r.protocol == proto {
                let key = r.key();
                let stale = self.other_own.get(&key).is_none_or(|o| o.stale);
                self.dirty_other.insert(key);
                other.insert(key, OwnRoute { route: r, stale });
            }
        }
        self.other_own = other;
        // Keys in backoff wait for their retry time, so a failing op cannot loop via resyncs.
        let failed = &self.failed;
        for (p, slot) in self.routes.iter_mut() {
            if failed.is_empty() || !failed.contains_key(&RouteKey { prefix: p, metric }) {
                mark(&mut self.dirty, p, slot, &mut self.res);
            }
        }
        self.dirty_other.retain(|k| !failed.contains_key(k));
        bump(&self.stats.resyncs, 1);
        self.recheck_next_hops(None);
        Ok(())
    }
}
