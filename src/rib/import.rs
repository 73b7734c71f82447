//! Import: sessions coming and going, announcements through the RFC 4271
//! §9.1.2 / RFC 4456 §8 loop checks, import policy and the prefix limit,
//! withdrawals, End-of-RIB, and the originated prefixes.

use std::collections::VecDeque;

use std::sync::Arc;

use bgp_proto::attributes::SegmentType;
use bgp_proto::{Family, FamilySet, Nlri};
use ipnetwork::IpNetwork;

use super::adj_out::PeerState;
use super::bits::Bits;
use super::export::export_class;
use super::table::Path;
use super::{family_of, Map, Rib, FORCE_PURGE};
use crate::messages::{Originated, PeerId, PeerInfo, PeerOut, PeerSignal, LOCAL};
use crate::route::policy::RouteContext;
use crate::route::RouteAttrs;

impl Rib {
    pub(super) fn peer_up(&mut self, info: PeerInfo, out: PeerOut) {
        let id = info.id;
        self.stale_peer_back(&info);
        let export_class = export_class(&info);
        let families = info.families.clone();
        self.eor_owed += families.iter().count();
        let replaced = self.peers.insert(
            id,
            Box::new(PeerState {
                info,
                out,
                export_class,
                advertised: Bits::default(),
                queued: Bits::default(),
                queued_from: 0,
                withdraw: Vec::new(),
                dump_next: Some(0),
                resend: FamilySet::new(),
                backlog: VecDeque::new(),
                eor_due: families,
                eor_received: FamilySet::new(),
                received: 0,
                limit_tripped: false,
                limit_warned: false,
                filtered: Vec::new(),
            }),
        );
        if let Some(old) = replaced {
            self.eor_owed -= old.eor_owed();
        }
        // The initial table goes out lazily as the queue drains (send_pending).
        self.converged = false;
        self.check_deferral(std::time::Instant::now());
    }

    pub(super) fn peer_down(&mut self, id: PeerId) {
        let Some(gone) = self.peers.remove(&id) else {
            return;
        };
        self.eor_owed -= gone.eor_owed();
        self.forget_exports_of(id);
        self.loc.change_each(|entry| {
            let before = entry.len();
            entry.retain(|p| p.peer != id);
            entry.len() != before
        });
        self.check_converged();
        self.released_since_purge += FORCE_PURGE;
    }

    /// RFC 4271 §9.1.2 import: loop checks, then into the peer's Adj-RIB-In.
    pub(super) fn announce(&mut self, peer: PeerId, family: Family, attrs: RouteAttrs, nlri: &[Nlri]) {
        let Some(state) = self.peers.get(&peer) else {
            return;
        };
        let info = &state.info;
        let looped = if info.ibgp() {
            // RFC 4456 §8: our own ORIGINATOR_ID or CLUSTER_ID means a loop.
            attrs.originator_id == Some(self.cfg.router_id)
                || self.cfg.cluster_id.is_some_and(|c| attrs.cluster_list.contains(&c))
        } else {
            // RFC 4271 §9.1.2: a path holding our own AS is a loop (allowas-in
            // relaxes it); our AS is the session's and `[bgp] asn` (finding 23).
            let own = attrs
                .as_path
                .segments
                .iter()
                .flat_map(|s| &s.asns)
                .filter(|&&a| a == info.local_asn || a == self.cfg.local_asn)
                .count();
            own > info.allowas_in as usize || self.bad_ebgp_path(info, &attrs)
        };
        if looped || family_of_nlri_mismatch(family, nlri) {
            // A looped route replaces (withdraws) any earlier path for the same NLRI.
            self.withdraw(peer, nlri);
            return;
        }
        if state.limit_tripped {
            return;
        }
        let import = info.import.clone();
        let ctx = RouteContext {
            neighbor: info.address,
            local_asn: info.local_asn,
        };
        self.note_next_hop(super::nexthop::gateway_of(&attrs, info.address));
        let base = self.intern(attrs);
        let mut added = 0usize;
        let mut replaced = 0usize;
        let mut rejected = Vec::new();
        // A chain that does not look at the prefix gives every NLRI of the
        // UPDATE the same answer: run it once (a full table's UPDATEs carry
        // 100 prefixes each).
        let per_prefix = import.looks_at_prefix();
        let mut shared: Option<Option<Arc<RouteAttrs>>> = None;
        for n in nlri {
            let result = match &shared {
                Some(result) if !per_prefix => result.clone(),
                _ => {
                    let result = match import.run(&n.prefix, &base, &ctx) {
                        None => None,
                        Some(None) => Some(base.clone()),
                        Some(Some(changed)) => Some(self.intern(changed)),
                    };
                    shared = Some(result.clone());
                    result
                }
            };
            let Some(attrs) = result else {
                rejected.push(*n);
                continue;
            };
            let path_id = n.path_id.unwrap_or(0);
            let (id, paths) = self.loc.get_or_insert(n.prefix);
            match paths.iter_mut().find(|p| p.peer == peer && p.path_id == path_id) {
                Some(p) => {
                    // The replaced set may now be unused: count it for the purge (finding 9).
                    if !Arc::ptr_eq(&p.attrs, &attrs) {
                        replaced += 1;
                    }
                    p.attrs = attrs;
                }
                None => {
                    paths.push(Path { peer, path_id, attrs });
                    added += 1;
                }
            }
            self.loc.mark_id(id);
        }
        self.released_since_purge += replaced;
        // A rejected route replaces whatever the peer sent for it before.
        if !rejected.is_empty() {
            if let Some(s) = self.peers.get_mut(&peer) {
                match s.filtered.iter_mut().find(|(f, _)| *f == family) {
                    Some((_, n)) => *n += rejected.len() as u64,
                    None => s.filtered.push((family, rejected.len() as u64)),
                }
            }
            self.withdraw(peer, &rejected);
        }
        if let Some(s) = self.peers.get_mut(&peer) {
            s.received += added;
            if let Some(limit) = s.info.max_prefixes {
                let received = s.received as u64;
                if received > limit.limit as u64 && !s.limit_tripped {
                    s.limit_tripped = true;
                    tracing::warn!(peer = %s.info.name, "{received} prefixes: over the limit of {}", limit.limit);
                    let _ = s.out.signals.send(PeerSignal::MaxPrefixes {
                        limit: limit.limit,
                        family,
                    });
                } else if received >= limit.warning as u64 && !s.limit_warned {
                    s.limit_warned = true;
                    tracing::warn!(peer = %s.info.name, "{received} prefixes: {}% of the limit of {}", received * 100 / limit.limit.max(1) as u64, limit.limit);
                }
            }
        }
    }

    /// RFC 4271 §6.3 and RFC 5065 §5 for a path from an eBGP peer: empty,
    /// holding confederation segments, or (with `enforce_first_as`) not
    /// starting with the peer's AS is malformed, and RFC 7606 §7.2 makes that
    /// treat-as-withdraw (review finding 4).
    fn bad_ebgp_path(&self, info: &PeerInfo, attrs: &RouteAttrs) -> bool {
        let path = &attrs.as_path;
        let confed = path
            .segments
            .iter()
            .any(|s| matches!(s.kind, SegmentType::ConfedSequence | SegmentType::ConfedSet));
        let bad =
            path.segments.is_empty() || confed || (self.cfg.enforce_first_as && path.first_as() != Some(info.asn));
        if bad {
            tracing::warn!(peer = %info.name, "AS_PATH \"{path}\" from an external peer: treated as withdraw");
        }
        bad
    }

    pub(super) fn withdraw(&mut self, peer: PeerId, nlri: &[Nlri]) {
        let mut removed = 0usize;
        for n in nlri {
            let path_id = n.path_id.unwrap_or(0);
            let Some(id) = self.loc.id_of(&n.prefix) else { continue };
            if let Some(paths) = self.loc.by_id_mut(id) {
                let before = paths.len();
                paths.retain(|p| !(p.peer == peer && p.path_id == path_id));
                if paths.len() != before {
                    removed += 1;
                    self.loc.mark_id(id);
                }
            }
        }
        if let Some(s) = self.peers.get_mut(&peer) {
            s.received = s.received.saturating_sub(removed);
        }
        self.released_since_purge += removed;
    }

    pub(super) fn end_of_rib(&mut self, peer: PeerId, family: Family) {
        if let Some(s) = self.peers.get_mut(&peer) {
            if s.info.families.contains(family) && !s.eor_received.contains(family) {
                self.eor_owed -= 1;
            }
            s.eor_received.insert(family);
        }
        self.end_stale_family(peer, family);
        self.check_converged();
    }

    /// Converged once every established peer sent End-of-RIB for each of its families.
    pub(super) fn check_converged(&mut self) {
        self.check_deferral(std::time::Instant::now());
        debug_assert_eq!(self.eor_owed, self.peers.values().map(|p| p.eor_owed()).sum::<usize>());
        self.converged = self.eor_owed == 0;
    }

    pub(super) fn set_originated(&mut self, list: Vec<Originated>) {
        let new: Map<IpNetwork, Originated> = list.into_iter().map(|o| (o.prefix, o)).collect();
        let old = std::mem::take(&mut self.originated);
        for prefix in old.keys().filter(|p| !new.contains_key(p)) {
            if let Some(paths) = self.loc.get_mut(prefix) {
                paths.retain(|p| p.peer != LOCAL);
            }
            self.loc.mark_dirty(prefix);
        }
        for (prefix, o) in &new {
            if old.get(prefix) == Some(o) {
                continue;
            }
            let attrs = self.intern(RouteAttrs::local(o.communities.clone(), o.large_communities.clone()));
            let (_, paths) = self.loc.get_or_insert(*prefix);
            paths.retain(|p| p.peer != LOCAL);
            paths.push(Path {
                peer: LOCAL,
                path_id: 0,
                attrs,
            });
            self.loc.mark_dirty(prefix);
        }
        self.originated = new;
        self.cover_learned();
    }
}

fn family_of_nlri_mismatch(family: Family, nlri: &[Nlri]) -> bool {
    nlri.iter().any(|n| family_of(&n.prefix) != family)
}
