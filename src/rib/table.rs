//! Loc-RIB entries: the paths of each prefix.

use std::sync::Arc;

use ipnetwork::IpNetwork;

use crate::messages::PeerId;
use crate::route::RouteAttrs;

/// The paths of one prefix; one fits without a heap allocation.
pub(super) type Paths = smallvec::SmallVec<[Path; 1]>;

/// A Loc-RIB entry: the prefix's paths, and a digest of what the kernel was
/// last told for it (0: nothing) — kept here rather than in a second map.
/// Its id (the bit in every peer's Adj-RIB-Out) is its slot in [`LocRib`](super::loc::LocRib).
pub(super) struct Entry {
    pub(super) prefix: IpNetwork,
    pub(super) paths: Paths,
    pub(super) kernel: u64,
    /// When a path of the prefix last changed, seconds since the RIB started
    /// (the route age views show); fits beside `prefix` at no cost.
    pub(super) changed: u32,
    /// Which path was best at the last flush (0: none); unchanged means
    /// nothing to tell the peers.
    pub(super) best: u64,
    /// Changed since the last flush (its id is in the Loc-RIB's dirty list).
    pub(super) dirty: bool,
}

// One per prefix, a million in a full table: what grows it costs 1 MB per byte.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Entry>() == 64 && std::mem::size_of::<Option<Entry>>() == 64);

impl Entry {
    pub(super) fn new(prefix: IpNetwork) -> Entry {
        Entry {
            prefix,
            paths: Paths::new(),
            kernel: 0,
            changed: 0,
            best: 0,
            dirty: false,
        }
    }
}

impl std::ops::Deref for Entry {
    type Target = Paths;
    fn deref(&self) -> &Paths {
        &self.paths
    }
}

impl std::ops::DerefMut for Entry {
    fn deref_mut(&mut self) -> &mut Paths {
        &mut self.paths
    }
}

#[derive(Clone, Debug)]
pub(super) struct Path {
    pub(super) peer: PeerId,
    pub(super) path_id: u32,
    pub(super) attrs: Arc<RouteAttrs>,
}
