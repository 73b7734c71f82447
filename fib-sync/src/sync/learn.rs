//! Reporting the kernel routes of other programs that the daemon announces
//! (see [`crate::learn`]): folded from the same notifications the worker
//! already follows, rebuilt from a dump only at start, on a filter change and
//! on a resync — no periodic scan.

use super::*;
use crate::learn::{LearnChange, LearnFilter, Learned};

/// The learned set and who hears about its changes.
#[derive(Default)]
pub(super) struct Learning {
    learned: Learned,
    subscriber: Option<mpsc::UnboundedSender<Vec<LearnChange>>>,
    /// Changes not yet reported: a burst of notifications leaves as one report.
    pending: Vec<LearnChange>,
}

impl<F: Fib> Worker<F> {
    /// A new filter (and subscriber, if given): the learned set is rebuilt
    /// from a dump of the table and the differences reported.
    pub(super) async fn set_learn(
        &mut self,
        filter: LearnFilter,
        subscriber: Option<mpsc::UnboundedSender<Vec<LearnChange>>>,
    ) -> Result<(), FibError> {
        if subscriber.is_some() {
            self.learning.subscriber = subscriber;
        }
        self.learning.learned.filter = filter;
        let table = if self.learning.learned.filter.is_empty() {
            Vec::new()
        } else {
            self.fib.dump_routes(self.cfg.table).await?
        };
        self.relearn(&table);
        Ok(())
    }

    /// After a dump of the table (filter change, resync): report what differs.
    pub(super) fn relearn(&mut self, table: &[KernelRoute]) {
        let changes = self.learning.learned.rebuild(table, &self.res.links);
        self.report_learned(changes);
    }

    /// One kernel notification, before the worker folds it in (a link going
    /// down is seen while the link table still says it was up).
    pub(super) fn learn_event(&mut self, e: &FibEvent) {
        let table = self.cfg.table;
        let learned = &mut self.learning.learned;
        let changes = match e {
            FibEvent::RouteAdded(r) if r.table == table => learned.added(r, &self.res.links).into_iter().collect(),
            FibEvent::RouteDeleted(r) if r.table == table => learned.deleted(r).into_iter().collect(),
            FibEvent::LinkDeleted { ifindex } => learned.link_gone(*ifindex, false),
            // IPv4 routes out of a link that goes down are flushed silently;
            // IPv6 ones are reported deleted.
            FibEvent::LinkChanged { ifindex, up: false, .. } if self.res.links.get(*ifindex).is_some_and(|l| l.up) => {
                learned.link_gone(*ifindex, true)
            }
            _ => Vec::new(),
        };
        self.learning.pending.extend(changes);
    }

    fn report_learned(&mut self, changes: Vec<LearnChange>) {
        self.learning.pending.extend(changes);
        self.flush_learned();
    }

    /// Reports what piled up (called once the queued notifications are folded in).
    pub(super) fn flush_learned(&mut self) {
        if self.learning.pending.is_empty() {
            return;
        }
        let changes = std::mem::take(&mut self.learning.pending);
        if let Some(s) = &self.learning.subscriber {
            if s.send(changes).is_err() {
                self.learning.subscriber = None;
            }
        }
    }
}
