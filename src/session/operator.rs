//! What an operator asks of one session (`ternctl peer disable|enable|reset|refresh`).

use bgp_proto::fsm::Event;
use bgp_proto::notification::{cease, Notification};
use bgp_proto::route_refresh::RouteRefresh;
use bgp_proto::Message;
use tracing::{info, warn};

use super::task::PeerTask;
use super::PeerSettings;
use crate::messages::{PeerAction, PeerPolicy, RibMsg};

impl PeerTask {
    /// Carries out `action`; an error says why it could not be done.
    pub(super) async fn act_on(&mut self, action: PeerAction) -> Result<(), String> {
        let name = self.settings.name.clone();
        match action {
            PeerAction::Disable(message) => {
                info!(peer = %name, "disabled by the operator");
                self.disabled = true;
                self.status.update(|st| st.disabled = true);
                let message = message.or_else(|| self.settings.shutdown_message.clone());
                self.feed(match message {
                    Some(m) => Event::ManualStopWithMessage(m),
                    None => Event::ManualStop,
                })
                .await;
                let ids: Vec<_> = self.conns.keys().copied().collect();
                for id in ids {
                    self.close(id);
                }
                Ok(())
            }
            PeerAction::Enable => {
                if !self.disabled {
                    return Err(format!("peer {name} is not disabled"));
                }
                info!(peer = %name, "enabled by the operator");
                self.disabled = false;
                self.status.update(|st| st.disabled = false);
                self.feed(Event::ManualStart).await;
                Ok(())
            }
            PeerAction::Reset => {
                if self.disabled {
                    return Err(format!("peer {name} is disabled; enable it instead"));
                }
                info!(peer = %name, "reset by the operator");
                // RFC 4486 §4: Administrative Reset; the FSM connects again after its idle hold time.
                let n = Notification::new(bgp_proto::error::code::CEASE, cease::ADMINISTRATIVE_RESET);
                self.feed(Event::AutomaticStop(n)).await;
                Ok(())
            }
            PeerAction::Refresh { inbound, outbound } => self.refresh(inbound, outbound).await,
        }
    }

    /// BFD saw the path fail (RFC 5882 §4.3): the session goes down now, as
    /// after a hold-timer expiry — Cease (subcode 0, as BIRD sends), the
    /// peer's routes withdrawn, not kept as stale — and connects again
    /// after the FSM's idle hold time.
    pub(super) async fn bfd_down(&mut self, why: String) {
        if self.disabled || self.conns.is_empty() {
            return;
        }
        warn!(peer = %self.settings.name, "BFD session down ({why}): closing the BGP session");
        let n = Notification::new(bgp_proto::error::code::CEASE, 0);
        self.feed(Event::AutomaticStop(n)).await;
        self.status
            .update(|st| st.last_error = Some(format!("BFD session down ({why}), sent Cease")));
    }

    /// ROUTE-REFRESH to the peer for each family of the session (RFC 2918 §3,
    /// only if it announced the capability), and/or our routes sent again.
    async fn refresh(&mut self, inbound: bool, outbound: bool) -> Result<(), String> {
        let name = self.settings.name.clone();
        let (Some(session), Some(negotiated)) = (&self.session, self.fsm.negotiated()) else {
            return Err(format!("peer {name} is not Established"));
        };
        if inbound && !negotiated.route_refresh {
            return Err(format!("peer {name} did not announce route refresh (RFC 2918)"));
        }
        let conn = session.conn;
        let families: Vec<_> = session.families.iter().collect();
        for family in families {
            if inbound {
                self.send(conn, &Message::RouteRefresh(RouteRefresh::request(family)));
            }
            if outbound {
                let _ = self.rib.send(RibMsg::RouteRefresh(self.settings.id, family)).await;
            }
        }
        info!(peer = %name, inbound, outbound, "route refresh by the operator");
        Ok(())
    }

    /// A reload changed only settings a running session takes (soft
    /// reconfiguration, like BIRD's `configure`): the RIB re-evaluates what
    /// the peer is sent; a changed import policy is re-applied to the peer's
    /// routes by asking for them again (ROUTE-REFRESH, RFC 2918). A peer
    /// without route refresh is reset: its routes could not be re-evaluated.
    pub(super) async fn reconfigure(&mut self, new: PeerSettings) {
        let changed = self.settings.differences(&new);
        let import_changed = changed.contains(&"import");
        self.settings = new;
        let (Some(session), Some(negotiated)) = (&self.session, self.fsm.negotiated()) else {
            info!(peer = %self.settings.name, changed = ?changed, "reload: settings changed; they apply when the session comes up");
            return;
        };
        if import_changed && !negotiated.route_refresh {
            info!(peer = %self.settings.name, "reload: import policy changed and the peer has no route refresh: resetting the session");
            let n = Notification::new(bgp_proto::error::code::CEASE, cease::OTHER_CONFIGURATION_CHANGE);
            self.feed(Event::AutomaticStop(n)).await;
            return;
        }
        info!(peer = %self.settings.name, changed = ?changed, "reload: applied without resetting the session");
        let conn = session.conn;
        let families: Vec<_> = session.families.iter().collect();
        let policy = PeerPolicy {
            import: self.settings.import.clone(),
            export: self.settings.export.clone(),
            next_hop: self.settings.next_hop,
            max_prefixes: self.settings.prefix_limit(),
        };
        let _ = self.rib.send(RibMsg::PeerPolicy(self.settings.id, policy)).await;
        if import_changed {
            for family in families {
                self.send(conn, &Message::RouteRefresh(RouteRefresh::request(family)));
            }
        }
    }
}
