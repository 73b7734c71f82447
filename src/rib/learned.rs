//! Kernel routes of other programs (`[learn]`, BIRD's kernel `learn`):
//! announced like originated prefixes, unless an originated block covers
//! them (Calico's aggregation: a pod /32 inside the host's own block is
//! carried by the block); never installed back into the kernel as ours.

use std::sync::Arc;

use ipnetwork::IpNetwork;

use super::table::Path;
use super::Rib;
use crate::messages::{Learned, KERNEL};
use crate::route::RouteAttrs;

impl Rib {
    /// Kernel routes learned (`Some`) or gone (`None`).
    pub(super) fn learn(&mut self, changes: Vec<(IpNetwork, Option<Learned>)>) {
        for (prefix, learned) in changes {
            match learned {
                Some(l) => {
                    self.learned.insert(prefix, Arc::new(l));
                }
                None => {
                    self.learned.remove(&prefix);
                }
            }
            self.place_learned(prefix);
        }
    }

    /// After the originated blocks changed: learned routes they now cover
    /// leave, those they no longer cover come in.
    pub(super) fn cover_learned(&mut self) {
        let prefixes: Vec<IpNetwork> = self.learned.keys().copied().collect();
        for prefix in prefixes {
            self.place_learned(prefix);
        }
    }

    /// Learned routes that are announced (not covered by an originated block).
    pub(super) fn learned_in_use(&self) -> usize {
        self.learned.keys().filter(|p| !self.covered(p)).count()
    }

    fn covered(&self, prefix: &IpNetwork) -> bool {
        self.originated
            .keys()
            .any(|o| o.is_ipv4() == prefix.is_ipv4() && o.prefix() <= prefix.prefix() && o.contains(prefix.ip()))
    }

    /// The [`KERNEL`] path of `prefix` is there exactly while a learned
    /// route is and no originated block covers it.
    fn place_learned(&mut self, prefix: IpNetwork) {
        let want = self.learned.contains_key(&prefix) && !self.covered(&prefix);
        let has = self
            .loc
            .get(&prefix)
            .is_some_and(|paths| paths.iter().any(|p| p.peer == KERNEL));
        if want == has {
            // The route's details (protocol, devices) are read at view time.
            return;
        }
        if want {
            let attrs = self.intern(RouteAttrs::local(vec![], vec![]));
            let (_, paths) = self.loc.get_or_insert(prefix);
            paths.push(Path {
                peer: KERNEL,
                path_id: 0,
                attrs,
            });
        } else if let Some(paths) = self.loc.get_mut(&prefix) {
            paths.retain(|p| p.peer != KERNEL);
            self.released_since_purge += 1;
        }
        self.loc.mark_dirty(&prefix);
    }
}
