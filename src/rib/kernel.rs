//! Best paths to kernel changes: only prefixes inside `allowed_prefixes`,
//! blackholes for originated blocks, nothing sent twice.

use ipnetwork::IpNetwork;

use super::table::Path;
use super::{Rib, KERNEL_CHUNK};
use crate::messages::{Gateways, KernelOp, KernelWork, LOCAL};

impl Rib {
    /// Tells the kernel side about the prefix with id `id` if its route changed.
    pub(super) fn update_kernel(&mut self, id: u32, prefix: &IpNetwork, selected: Option<&(Path, Gateways)>) {
        if !self.cfg.kernel {
            return;
        }
        let allowed = self
            .cfg
            .allowed_prefixes
            .iter()
            .any(|a| a.contains(prefix.ip()) && a.prefix() <= prefix.prefix());
        let want = match selected {
            Some((best, _)) if best.peer == LOCAL => self
                .originated
                .get(prefix)
                .filter(|o| o.blackhole)
                .map(|_| KernelOp::Blackhole(*prefix)),
            Some((_, gateways)) if allowed && !gateways.is_empty() => Some(KernelOp::Via(*prefix, gateways.clone())),
            _ => None,
        };
        let digest = want.as_ref().map(|w| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(w, &mut h);
            std::hash::Hasher::finish(&h) | 1
        });
        let Some(entry) = self.loc.by_id_mut(id) else {
            return;
        };
        match (want, digest) {
            (Some(_), Some(d)) if d == entry.kernel => return,
            (Some(w), Some(d)) => {
                entry.kernel = d;
                self.kernel_ops.push(w);
            }
            _ if entry.kernel != 0 => {
                entry.kernel = 0;
                self.kernel_ops.push(KernelOp::Remove(*prefix));
            }
            _ => return,
        }
        // Hand large bursts over in chunks, so the kernel work starts early
        // and no table-sized list of changes builds up.
        if self.kernel_ops.len() >= KERNEL_CHUNK {
            if let Some(sink) = &self.kernel_sink {
                let _ = sink.send(KernelWork::Ops(std::mem::take(&mut self.kernel_ops)));
            }
        }
    }
}
