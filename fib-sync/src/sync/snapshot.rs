//! What the daemon sees of every route: desired, installed, state, devices.

use super::*;

impl<F: Fib> Worker<F> {
    pub(super) fn snapshot(&mut self) -> Vec<RouteStatus> {
        let metric = self.cfg.metric;
        let mut out = Vec::with_capacity(self.routes.len() + self.other_own.len());
        for (p, slot) in self.routes.iter() {
            let desired = slot.desired(&self.res.states);
            let own = slot.own_kind(&self.res.states).map(|k| route(p, k, &self.params));
            if desired.is_none() && own.is_none() {
                continue;
            }
            let flags = slot.flags(&self.res.states);
            let stale = flags.stale;
            let key = RouteKey { prefix: p, metric };
            let want = self.res.want(p, slot, &self.params, &self.cfg.tunnel_device);
            let blocked = match (flags.block, &desired, &want) {
                (Block::Conflict, Some(_), _) => flags.foreign.map(|protocol| RouteState::Conflict { protocol }),
                (Block::Unresolved, Some(_), Some(Err(u))) => Some(RouteState::Unresolved(u.clone())),
                _ => None,
            };
            let state = if let Some(b) = blocked {
                b
            } else if let Some(f) = self.failed.get(&key) {
                RouteState::Failed {
                    error: f.error,
                    attempts: f.attempts,
                }
            } else if desired.is_some() {
                match (&own, want) {
                    (Some(o), Some(Ok(w))) if *o == w => RouteState::Installed,
                    _ => RouteState::Queued,
                }
            } else if own.is_some() && stale {
                RouteState::Stale
            } else {
                RouteState::Queued
            };
            let devices = self.device_names(own.as_ref());
            out.push(RouteStatus {
                prefix: p,
                desired,
                installed: own,
                state,
                devices,
            });
        }
        for (k, o) in &self.other_own {
            let state = if let Some(f) = self.failed.get(k) {
                RouteState::Failed {
                    error: f.error,
                    attempts: f.attempts,
                }
            } else if o.stale {
                RouteState::Stale
            } else {
                RouteState::Queued
            };
            out.push(RouteStatus {
                prefix: k.prefix,
                desired: None,
                installed: Some(o.route.clone()),
                state,
                devices: self.device_names(Some(&o.route)),
            });
        }
        out.sort_by_key(|s| (s.prefix, s.installed.as_ref().map_or(metric, |r| r.metric)));
        out
    }

    /// The device name of each hop of `route`, from the link table.
    pub(super) fn device_names(&self, route: Option<&KernelRoute>) -> Vec<String> {
        let Some(KernelRoute {
            kind: RouteKind::Unicast(hops),
            ..
        }) = route
        else {
            return Vec::new();
        };
        hops.iter()
            .map(|h| {
                self.res
                    .links
                    .get(h.ifindex)
                    .map_or_else(String::new, |l| l.name.clone())
            })
            .collect()
    }
}
