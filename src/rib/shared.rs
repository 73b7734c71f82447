//! Hand-overs shared by peers in the same state: a reflector's clients are
//! mostly sent the same slice of changes with the same Adj-RIB-Out bits,
//! so one evaluation and encoding serves all of them (per flush, and until
//! the next message that may change the RIB).

use bgp_proto::Context;

use super::encode::Encoded;
use super::{Map, Rib};
use crate::messages::PeerId;

/// Shared hand-overs held at most; beyond it no more are kept.
const SHARED_MAX: usize = 256;

#[derive(Default)]
pub(super) struct SharedSlices {
    entries: Map<u64, Vec<SharedSlice>>,
    len: usize,
    keys: ahash::RandomState,
}

/// One peer's evaluated and encoded slice, and what makes it fit another.
struct SharedSlice {
    export_class: u64,
    skip_advertised: bool,
    ctx: Context,
    ids: Vec<u32>,
    /// The peer's bits for `ids` before, packed.
    had: Vec<u64>,
    /// Whose paths were best: a peer among them gets its own evaluation.
    owners: Vec<PeerId>,
    now_advertised: Vec<(u32, bool)>,
    encoded: Option<Encoded>,
}

impl SharedSlices {
    pub(super) fn clear(&mut self) {
        if self.len > 0 {
            self.entries.clear();
            self.len = 0;
        }
    }
}

impl Rib {
    /// Evaluates and encodes `ids` for peer `id` (see [`Rib::evaluate`]),
    /// or hands it what a peer in the same state got: same export class and
    /// context, same slice, same bits, and none of the routes its own.
    pub(super) fn hand_over(&mut self, id: PeerId, ids: &[u32], skip_advertised: bool) {
        let Some(p) = self.peers.get(&id) else { return };
        // Exports that look at the prefix (class 0) or at the receiving peer
        // (a restarting peer's stale routes) are never shared.
        if p.export_class == 0 || !self.stale_peers.is_empty() {
            let changes = self.evaluate(id, ids, skip_advertised);
            self.encode_changes(id, changes);
            return;
        }
        let class = p.export_class;
        let mut had = vec![0u64; ids.len().div_ceil(64)];
        for (k, &i) in ids.iter().enumerate() {
            if p.advertised.get(i) {
                had[k / 64] |= 1 << (k % 64);
            }
        }
        let key = self.shared.keys.hash_one((class, skip_advertised, ids, &had));
        let hit = self.shared.entries.get(&key).and_then(|slices| {
            slices.iter().find(|s| {
                s.export_class == class
                    && s.skip_advertised == skip_advertised
                    && s.ctx == p.info.tx
                    && s.ids == ids
                    && s.had == had
                    && !s.owners.contains(&id)
            })
        });
        if let Some(s) = hit {
            let (now_advertised, encoded) = (s.now_advertised.clone(), s.encoded.clone());
            self.mark_advertised(id, &now_advertised);
            if let Some(encoded) = encoded {
                self.queue_encoded(id, &encoded);
            }
            return;
        }
        let ctx = p.info.tx.clone();
        let evaluated = self.evaluate_only(id, ids, skip_advertised);
        self.mark_advertised(id, &evaluated.now_advertised);
        let encoded = self.encode_changes(id, evaluated.changes);
        if self.shared.len < SHARED_MAX && !evaluated.owners.contains(&id) {
            self.shared.len += 1;
            self.shared.entries.entry(key).or_default().push(SharedSlice {
                export_class: class,
                skip_advertised,
                ctx,
                ids: ids.to_vec(),
                had,
                owners: evaluated.owners,
                now_advertised: evaluated.now_advertised,
                encoded,
            });
        }
    }
}
