//! Loc-RIB entries: the paths of each prefix.

use std::sync::Arc;

use ipnetwork::IpNetwork;

use crate::messages::PeerId;
use crate::route::RouteAttrs;

/// The paths of one prefix: one inline in its 16 bytes (most prefixes have
/// one), more on the heap. A `SmallVec<[Path; 1]>` took 24 bytes, which made
/// an [`Entry`] 64 (issue 14: S3's Loc-RIB was 6.25 MiB at 100k prefixes).
#[derive(Clone)]
pub(super) enum Paths {
    One(Path),
    /// None (`None`), or two or more: never exactly one. Boxed so that the
    /// list is one thin pointer beside the inline path's niche.
    #[allow(clippy::box_collection)]
    Many(Option<Box<Vec<Path>>>),
}

impl Paths {
    pub(super) fn new() -> Paths {
        Paths::Many(None)
    }

    pub(super) fn push(&mut self, path: Path) {
        *self = match std::mem::replace(self, Paths::Many(None)) {
            Paths::Many(None) => Paths::One(path),
            Paths::One(first) => Paths::Many(Some(Box::new(vec![first, path]))),
            Paths::Many(Some(mut more)) => {
                more.push(path);
                Paths::Many(Some(more))
            }
        };
    }

    /// Keeps the paths `keep` says to keep (it may change them).
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&mut Path) -> bool) {
        match self {
            Paths::One(path) => {
                if !keep(path) {
                    *self = Paths::Many(None);
                }
            }
            Paths::Many(None) => {}
            Paths::Many(Some(more)) => {
                more.retain_mut(keep);
                match more.len() {
                    0 => *self = Paths::Many(None),
                    1 => *self = Paths::One(more.pop().expect("one path")),
                    _ => {}
                }
            }
        }
    }
}

impl std::ops::Deref for Paths {
    type Target = [Path];
    fn deref(&self) -> &[Path] {
        match self {
            Paths::One(path) => std::slice::from_ref(path),
            Paths::Many(Some(more)) => more,
            Paths::Many(None) => &[],
        }
    }
}

impl std::ops::DerefMut for Paths {
    fn deref_mut(&mut self) -> &mut [Path] {
        match self {
            Paths::One(path) => std::slice::from_mut(path),
            Paths::Many(Some(more)) => more,
            Paths::Many(None) => &mut [],
        }
    }
}

/// A Loc-RIB entry: the prefix's paths, and whether the kernel was told to
/// hold a route for it.
/// Its id (the bit in every peer's Adj-RIB-Out) is its slot in [`LocRib`](super::loc::LocRib).
pub(super) struct Entry {
    pub(super) prefix: IpNetwork,
    pub(super) paths: Paths,
    /// When a path of the prefix last changed, seconds since the RIB started
    /// (the route age views show); fits beside `prefix` at no cost.
    pub(super) changed: u32,
    /// Which path was best at the last flush (0: none); unchanged means
    /// nothing to tell the peers.
    pub(super) best: u64,
    /// Changed since the last flush (its id is in the Loc-RIB's dirty list).
    pub(super) dirty: bool,
    /// The kernel was last told to hold a route for the prefix (so one is
    /// owed a removal). What route is fib-sync's to remember: it drops a
    /// `Set` equal to what it holds, so the RIB keeps no digest of its own
    /// (8 bytes per prefix; issue 14, S3).
    pub(super) in_kernel: bool,
}

// One per prefix, a million in a full table: what grows it costs 1 MB per byte.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Entry>() == 48 && std::mem::size_of::<Option<Entry>>() == 48);

impl Entry {
    pub(super) fn new(prefix: IpNetwork) -> Entry {
        Entry {
            prefix,
            paths: Paths::new(),
            changed: 0,
            best: 0,
            dirty: false,
            in_kernel: false,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn path(peer: u32) -> Path {
        Path {
            peer: PeerId(peer),
            path_id: 0,
            attrs: Arc::new(RouteAttrs::local(vec![], vec![])),
        }
    }

    fn peers(paths: &Paths) -> Vec<u32> {
        paths.iter().map(|p| p.peer.0).collect()
    }

    #[test]
    fn paths_go_from_none_to_one_to_many_and_back() {
        let mut paths = Paths::new();
        assert!(paths.is_empty());
        paths.push(path(1));
        assert!(matches!(paths, Paths::One(_)));
        paths.push(path(2));
        paths.push(path(3));
        assert_eq!(peers(&paths), [1, 2, 3]);
        paths[1].path_id = 7;
        paths.retain(|p| p.peer.0 != 1);
        assert_eq!((peers(&paths), paths[0].path_id), (vec![2, 3], 7));
        paths.retain(|p| p.peer.0 == 3);
        assert!(matches!(paths, Paths::One(_)), "one left: inline again");
        assert_eq!(peers(&paths.clone()), [3]);
        paths.retain(|_| false);
        assert!(matches!(paths, Paths::Many(None)) && paths.is_empty());
    }
}
