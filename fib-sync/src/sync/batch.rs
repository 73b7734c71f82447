//! One batch: reconcile the dirty prefixes into ops, send them, fold the results.

use super::*;

impl<F: Fib> Worker<F> {
    pub(super) async fn process_batch(&mut self) -> Result<(), FibError> {
        let n = self.cfg.batch_size.max(1) * 16;
        self.dirty.spread(n);
        let mut ops = Vec::with_capacity(n.min(self.dirty.len() + self.dirty_other.len()));
        for _ in 0..n {
            if let Some(p) = self.dirty.pop() {
                self.reconcile_prefix(p, &mut ops);
            } else if let Some(k) = self.dirty_other.iter().next().copied() {
                self.dirty_other.remove(&k);
                self.reconcile_other(k, &mut ops);
            } else {
                break;
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        match self.fib.apply(&ops).await {
            Ok(results) => self.handle_results(&ops, results),
            Err(e) => {
                tracing::error!("netlink request socket failed: {e}; resyncing");
                bump(&self.stats.errors, 1);
                self.resync_needed = true;
            }
        }
        Ok(())
    }

    /// Decide one prefix at our metric (see [`decide`]) and record what blocks it.
    pub(super) fn reconcile_prefix(&mut self, p: IpNetwork, ops: &mut Vec<Op>) {
        let key = RouteKey {
            prefix: p,
            metric: self.cfg.metric,
        };
        let Some(slot) = self.routes.get_mut(&p) else {
            return;
        };
        slot.set_flags(&mut self.res, |f| f.dirty = false);
        let want = self.res.want(p, slot, &self.params, &self.cfg.tunnel_device);
        let flags = slot.flags(&self.res.states);
        let own = slot.own_kind(&self.res.states).map(|kind| OwnRoute {
            route: route(p, kind, &self.params),
            stale: flags.stale,
        });
        let d = decide(want.as_ref(), own.as_ref(), flags.foreign);
        match d.blocked {
            Some(b) => {
                let code = match &b {
                    Blocked::Conflict(_) => Block::Conflict,
                    Blocked::Unresolved(_) => Block::Unresolved,
                };
                if flags.block != code {
                    match &b {
                        Blocked::Conflict(pr) => {
                            tracing::warn!(prefix = %p, protocol = pr, "route held by another protocol; not overwriting");
                            bump(&self.stats.conflicts, 1);
                        }
                        Blocked::Unresolved(u) => {
                            tracing::warn!(prefix = %p, "route not installable: {u}");
                        }
                    }
                    if flags.block == Block::No {
                        self.blocked += 1;
                    }
                    slot.set_flags(&mut self.res, |f| f.block = code);
                }
                if !self.failed.is_empty() {
                    self.failed.remove(&key);
                }
            }
            None => {
                if flags.block != Block::No {
                    slot.set_flags(&mut self.res, |f| f.block = Block::No);
                    self.blocked -= 1;
                }
                if d.op.is_none() && !self.failed.is_empty() {
                    self.failed.remove(&key);
                }
            }
        }
        if slot.is_empty(&self.res.states) {
            self.routes.remove(&p);
        }
        ops.extend(d.op);
    }

    /// Our route at another metric is never desired: delete it unless stale.
    pub(super) fn reconcile_other(&mut self, k: RouteKey, ops: &mut Vec<Op>) {
        let d = decide(None, self.other_own.get(&k), None);
        if d.op.is_none() {
            self.failed.remove(&k);
        }
        ops.extend(d.op);
    }

    pub(super) fn handle_results(&mut self, ops: &[Op], results: Vec<OpResult>) {
        let now = Instant::now();
        let metric = self.cfg.metric;
        for (op, res) in ops.iter().zip(results) {
            let key = op.route().key();
            match (op, res) {
                (Op::Add(r) | Op::Replace(r), Ok(())) => {
                    bump(&self.stats.installs, 1);
                    if !self.failed.is_empty() {
                        self.failed.remove(&key);
                    }
                    if key.metric == metric {
                        let slot = self.routes.slot(key.prefix);
                        slot.set_own(Some(&r.kind), &mut self.res);
                        slot.set_flags(&mut self.res, |f| (f.stale, f.foreign) = (false, None));
                    } else {
                        self.other_own.insert(
                            key,
                            OwnRoute {
                                route: r.clone(),
                                stale: false,
                            },
                        );
                    }
                }
                (Op::Delete(_), Ok(())) | (Op::Delete(_), Err(Errno(libc::ESRCH))) => {
                    bump(&self.stats.deletes, 1);
                    if !self.failed.is_empty() {
                        self.failed.remove(&key);
                    }
                    if key.metric == metric {
                        if let Some(slot) = self.routes.get_mut(&key.prefix) {
                            slot.set_own(None, &mut self.res);
                            if slot.is_empty(&self.res.states) {
                                self.routes.remove(&key.prefix);
                            }
                        }
                    } else {
                        self.other_own.remove(&key);
                    }
                }
                (_, Err(e)) => {
                    bump(&self.stats.errors, 1);
                    if e.0 == libc::EEXIST || e.0 == libc::ENOBUFS {
                        // Someone holds a key we thought free, or acks were lost: re-learn.
                        self.resync_needed = true;
                    }
                    let attempts = self.failed.get(&key).map_or(0, |f| f.attempts) + 1;
                    tracing::warn!(prefix = %key.prefix, error = %e, attempts, "route op failed: {op}");
                    self.failed.insert(key, Failure { error: e, attempts });
                    let exp = self
                        .cfg
                        .retry_base
                        .saturating_mul(1u32 << attempts.saturating_sub(1).min(16));
                    self.retries.push(Reverse((now + exp.min(self.cfg.retry_max), key)));
                }
            }
        }
        self.update_pending();
    }
}
