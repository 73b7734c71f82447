//! UPDATE encoding shared by every peer that is sent the same change set
//! with the same context: encoded once, the bytes shared.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use bgp_proto::attributes::MpNextHop;
use bgp_proto::update::{pack_announcements, pack_withdrawals};
use bgp_proto::{Context, Family, Nlri};
use bytes::Bytes;
use ipnetwork::IpNetwork;
use smallvec::SmallVec;

use super::{family_of, Map, Rib};
use crate::messages::PeerId;
use crate::route::RouteAttrs;

/// Encoded change sets, shared by every peer that is sent the same changes
/// with the same context — the UPDATEs are encoded once for all of them.
/// Keys hash attribute pointers: emptied at every flush and purge.
#[derive(Default)]
pub(super) struct EncodeCache {
    pub(super) entries: Map<u64, Vec<(Context, Encoded)>>,
    /// Keys change sets; per process, so crafted routes cannot aim at a collision.
    keys: ahash::RandomState,
}

/// One attribute set's announcements of a few prefixes as encoded for one
/// context. A reflector sends every client the same small groups (a host's
/// pod blocks), each client at its own time (its table dump, its queue), so
/// these outlive a flush; the purge drops those whose set is otherwise unused.
#[derive(Default)]
pub(super) struct GroupCache {
    entries: Map<u64, Vec<CachedGroup>>,
    len: usize,
    keys: ahash::RandomState,
}

struct CachedGroup {
    /// Held so the set's address (in the key) is not reused meanwhile.
    attrs: Arc<RouteAttrs>,
    family: Family,
    ctx: Context,
    nlri: Box<[Nlri]>,
    bytes: Bytes,
}

/// Groups of at most this many prefixes are cached: a full table's large
/// groups usually go to one peer, and would only cost memory.
const GROUP_CACHE_PREFIXES: usize = 8;

/// Entries the group cache holds at most; it starts over beyond that.
const GROUP_CACHE_ENTRIES: usize = 32_768;

impl GroupCache {
    fn key(&self, attrs: &Arc<RouteAttrs>, family: Family, nlri: &[Nlri]) -> u64 {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut h = self.keys.build_hasher();
        (Arc::as_ptr(attrs) as usize).hash(&mut h);
        family.hash(&mut h);
        h.write_usize(nlri.len());
        for n in nlri {
            hash_prefix(&n.prefix, &mut h);
            h.write_u64(n.path_id.map_or(0, |id| u64::from(id) | 1 << 32));
        }
        h.finish()
    }

    fn get(&self, key: u64, attrs: &Arc<RouteAttrs>, family: Family, ctx: &Context, nlri: &[Nlri]) -> Option<&Bytes> {
        self.entries.get(&key)?.iter().find_map(|g| {
            (Arc::ptr_eq(&g.attrs, attrs) && g.family == family && g.ctx == *ctx && *g.nlri == *nlri)
                .then_some(&g.bytes)
        })
    }

    fn insert(&mut self, key: u64, group: CachedGroup) {
        if self.len >= GROUP_CACHE_ENTRIES {
            self.entries.clear();
            self.len = 0;
        }
        self.entries.entry(key).or_default().push(group);
        self.len += 1;
    }

    /// Drops the groups whose attribute set only the interned set and this
    /// cache still hold (called before the interned sets are purged).
    pub(super) fn retain_used(&mut self) {
        let mut len = 0;
        self.entries.retain(|_, groups| {
            groups.retain(|g| Arc::strong_count(&g.attrs) > 2);
            len += groups.len();
            !groups.is_empty()
        });
        self.len = len;
    }
}

/// Announcements of one attribute set: UPDATEs appended to `out`, from the
/// group cache when small enough. Err: the attributes do not fit.
fn encode_group(
    cache: &mut GroupCache,
    ctx: &Context,
    attrs: &Arc<RouteAttrs>,
    family: Family,
    nlri: &[Nlri],
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    let cacheable = nlri.len() <= GROUP_CACHE_PREFIXES;
    let key = if cacheable { cache.key(attrs, family, nlri) } else { 0 };
    if let Some(bytes) = cacheable.then(|| cache.get(key, attrs, family, ctx, nlri)).flatten() {
        out.extend_from_slice(bytes);
        return Ok(());
    }
    let next_hop = match (attrs.next_hop.ok_or("no next hop")?, attrs.link_local) {
        (IpAddr::V4(a), _) => MpNextHop::V4(a),
        (IpAddr::V6(global), link_local) => MpNextHop::V6 { global, link_local },
    };
    let mut one = Vec::new();
    pack_announcements(ctx, family, next_hop, &attrs.to_path_attributes(ctx), nlri, &mut one)
        .map_err(|_| "the attributes do not fit the peer's messages")?;
    out.extend_from_slice(&one);
    if cacheable {
        let group = CachedGroup {
            attrs: attrs.clone(),
            family,
            ctx: ctx.clone(),
            nlri: nlri.into(),
            bytes: Bytes::from(one),
        };
        cache.insert(key, group);
    }
    Ok(())
}

/// A change set as encoded for one context.
#[derive(Clone)]
pub(super) struct Encoded {
    bytes: Bytes,
    /// Announcements that could not be encoded (attributes too large for the
    /// peer's messages): withdrawn instead, and no longer advertised.
    unsent: Arc<[IpNetwork]>,
}

/// Identifies a change set: its prefixes and attribute sets, in order.
/// Hashed for every peer it goes to, so a fast keyed hash (aHash).
fn changes_key(keys: &ahash::RandomState, changes: &[(IpNetwork, Option<Arc<RouteAttrs>>)]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = keys.build_hasher();
    for (prefix, attrs) in changes {
        hash_prefix(prefix, &mut h);
        h.write_usize(attrs.as_ref().map_or(0, |a| Arc::as_ptr(a) as usize));
    }
    h.finish()
}

/// Feeds a prefix to a hasher whole (address, length, family) in one or two
/// writes: half the time of its derived `Hash`, which writes field by field
/// (issue 14: 4 % of a 10,000-client reflector's CPU hashed change sets).
fn hash_prefix(prefix: &IpNetwork, h: &mut impl std::hash::Hasher) {
    match prefix {
        IpNetwork::V4(n) => h.write_u64(u64::from(u32::from(n.ip())) | u64::from(n.prefix()) << 32 | 1 << 40),
        IpNetwork::V6(n) => {
            h.write_u128(u128::from(n.ip()));
            h.write_u8(n.prefix());
        }
    }
}

/// UPDATEs for a change set: withdrawals, then announcements grouped by
/// attribute set. A group that does not fit the peer's message size is not
/// sent; its prefixes are withdrawn instead (RFC 8654 §4, RFC 4271 §9.2).
fn encode_change_set(
    groups_cache: &mut GroupCache,
    ctx: &Context,
    changes: &[(IpNetwork, Option<Arc<RouteAttrs>>)],
) -> Encoded {
    let mut withdrawn: HashMap<Family, Vec<Nlri>> = HashMap::new();
    // Prefixes of one set mostly come one after another (prefix-id order):
    // the last group is tried before the map, and small groups stay inline.
    let mut groups: Vec<(Arc<RouteAttrs>, Family, SmallVec<[Nlri; 4]>)> = Vec::new();
    let mut group_of: Map<(usize, Family), usize> = Map::default();
    for (prefix, change) in changes {
        let family = family_of(prefix);
        match change {
            None => withdrawn.entry(family).or_default().push(Nlri::new(*prefix)),
            Some(attrs) => {
                let same_as_last = groups
                    .last()
                    .is_some_and(|(a, f, _)| Arc::ptr_eq(a, attrs) && *f == family);
                let g = if same_as_last {
                    groups.len() - 1
                } else {
                    *group_of
                        .entry((Arc::as_ptr(attrs) as usize, family))
                        .or_insert_with(|| {
                            groups.push((attrs.clone(), family, SmallVec::new()));
                            groups.len() - 1
                        })
                };
                groups[g].2.push(Nlri::new(*prefix));
            }
        }
    }
    let mut buf = Vec::with_capacity(changes.len() * 32);
    let mut unsent = Vec::new();
    for (attrs, family, nlri) in groups {
        let encoded = encode_group(groups_cache, ctx, &attrs, family, &nlri, &mut buf);
        match encoded {
            Ok(()) => {}
            Err(why) => {
                tracing::warn!("not sending {} prefixes ({why}): withdrawing them", nlri.len());
                unsent.extend(nlri.iter().map(|n| n.prefix));
                withdrawn.entry(family).or_default().extend(nlri);
            }
        }
    }
    let mut head = Vec::new();
    let mut withdrawn: Vec<_> = withdrawn.into_iter().collect();
    withdrawn.sort_by_key(|(f, _)| *f);
    for (family, nlri) in withdrawn {
        if let Err(e) = pack_withdrawals(ctx, family, &nlri, &mut head) {
            tracing::warn!("cannot encode withdrawals: {e}");
        }
    }
    let mut bytes = if head.is_empty() {
        buf
    } else {
        head.extend_from_slice(&buf);
        head
    };
    // The buffer grew by doubling. Encodings waiting for slow sockets were
    // most of the heap at 10,000 reflector clients: keep only the bytes.
    bytes.shrink_to_fit();
    Encoded {
        bytes: Bytes::from(bytes),
        unsent: unsent.into(),
    }
}

impl Rib {
    /// Queues the UPDATEs for a change set, encoded once per distinct set and
    /// context; what could not be encoded is no longer marked advertised.
    /// Returns the encoding (None: no changes).
    pub(super) fn encode_changes(
        &mut self,
        id: PeerId,
        changes: Vec<(IpNetwork, Option<Arc<RouteAttrs>>)>,
    ) -> Option<Encoded> {
        if changes.is_empty() {
            return None;
        }
        let p = self.peers.get(&id)?;
        let key = changes_key(&self.encode_cache.keys, &changes);
        let slot = self.encode_cache.entries.entry(key).or_default();
        let encoded = match slot.iter().find(|(c, _)| *c == p.info.tx) {
            Some((_, e)) => e.clone(),
            None => {
                let e = encode_change_set(&mut self.group_cache, &p.info.tx, &changes);
                slot.push((p.info.tx.clone(), e.clone()));
                e
            }
        };
        self.queue_encoded(id, &encoded);
        Some(encoded)
    }

    /// Hands an encoding to the peer's backlog; what could not be encoded is
    /// no longer marked advertised.
    pub(super) fn queue_encoded(&mut self, id: PeerId, encoded: &Encoded) {
        let Some(p) = self.peers.get_mut(&id) else { return };
        for prefix in encoded.unsent.iter() {
            if let Some(id) = self.loc.id_of(prefix) {
                p.advertised.set(id, false);
            }
        }
        if !encoded.bytes.is_empty() {
            p.backlog.push_back(encoded.bytes.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use ipnetwork::IpNetwork;

    use super::changes_key;
    use crate::route::RouteAttrs;

    /// The encoding cache trusts the key alone: change sets that differ only
    /// in a prefix length, the family, the attribute set or the order get
    /// different keys.
    #[test]
    fn change_sets_that_differ_anywhere_get_different_keys() {
        let keys = ahash::RandomState::new();
        let a = Arc::new(RouteAttrs::local(vec![], vec![]));
        let b = Arc::new(RouteAttrs::local(vec![], vec![]));
        let p = |s: &str| s.parse::<IpNetwork>().unwrap();
        let sets: Vec<Vec<(IpNetwork, Option<Arc<RouteAttrs>>)>> = vec![
            vec![(p("10.0.0.0/24"), Some(a.clone()))],
            vec![(p("10.0.0.0/25"), Some(a.clone()))],
            vec![(p("10.0.0.0/24"), Some(b.clone()))],
            vec![(p("10.0.0.0/24"), None)],
            vec![(p("::a00:0/24"), Some(a.clone()))],
            vec![(p("::a00:0/120"), Some(a.clone()))],
            vec![(p("::ffff:a00:0/120"), Some(a.clone()))],
            vec![(p("10.0.0.0/24"), Some(a.clone())), (p("10.0.1.0/24"), Some(a.clone()))],
            vec![(p("10.0.1.0/24"), Some(a.clone())), (p("10.0.0.0/24"), Some(a.clone()))],
        ];
        let distinct: HashSet<u64> = sets.iter().map(|s| changes_key(&keys, s)).collect();
        assert_eq!(distinct.len(), sets.len());
        assert_eq!(changes_key(&keys, &sets[0]), changes_key(&keys, &sets[0].clone()));
    }
}
