//! SIGHUP / reload: re-reads the configuration file and applies what
//! changed — originated prefixes, added, removed and changed peers — leaving
//! untouched sessions alone. A file that does not validate changes nothing.

use std::collections::HashMap;
use std::net::IpAddr;

use config::EffectivePeer;
use tracing::{error, info, warn};

use super::peers::{write, Supervisor};
use super::settings::{compile, originated, peer_settings};
use crate::messages::{PeerCmd, RibMsg};
use crate::registry::ReloadReport;
use crate::session::PeerHandle;

impl Supervisor {
    /// Re-reads the configuration and applies what changed. On a file that
    /// does not validate, returns its errors and keeps everything as it is.
    pub(crate) async fn reload(&self) -> Result<ReloadReport, config::ConfigErrors> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let new = match config::load(&self.registry.config_path) {
            Ok(c) => c,
            Err(e) => {
                // One event per error: each is one line (and journal entry).
                for err in e.errors() {
                    error!("reload failed, keeping the running configuration: {err}");
                }
                return Err(e);
            }
        };
        let old = self.registry.config();
        let mut report = ReloadReport::default();
        for (changed, section) in [
            (old.bgp != new.bgp, "[bgp]"),
            (old.kernel != new.kernel, "[kernel]"),
            (old.control != new.control, "[control]"),
        ] {
            if changed {
                warn!("changes to {section} take effect at the next restart");
                report.restart_needed.push(section.to_string());
            }
        }
        report.learn_changed = old.learn != new.learn;
        report.originated_changed = old.originate != new.originate;
        report.policies_changed = old.policies != new.policies;
        if old.learn != new.learn {
            info!("reload: [learn] changed");
            if let Some(fib) = &self.registry.fib {
                let _ = fib.set_learn_filter(super::settings::learn_filter(&new.learn));
            }
        }
        if old.originate != new.originate {
            info!("reload: originated prefixes changed");
            let _ = self.registry.rib.send(RibMsg::Originate(originated(&new))).await;
        }
        let policies = compile(&new.policies);
        let wanted: HashMap<IpAddr, EffectivePeer> =
            new.effective_peers().into_iter().map(|p| (p.address, p)).collect();
        let running: Vec<(IpAddr, PeerHandle)> = self
            .registry
            .peers()
            .into_iter()
            .map(|h| (h.settings.address, h))
            .collect();
        for (addr, handle) in running {
            let keep = wanted.get(&addr).is_some_and(|p| {
                let mut want = peer_settings(&new, &policies, p, handle.settings.id);
                want.hostname = handle.settings.hostname.clone();
                p.enabled && want == handle.settings
            });
            if keep || handle.settings.dynamic {
                continue;
            }
            info!(peer = %handle.settings.name, "reload: peer removed or changed, stopping it");
            match wanted.get(&addr).filter(|p| p.enabled) {
                Some(_) => report.peers_changed.push(handle.settings.name.clone()),
                None => report.peers_removed.push(handle.settings.name.clone()),
            }
            self.registry.peers_mut().remove(&addr);
            if handle.settings.password.is_some() {
                self.set_listener_key(addr, None, None);
            }
            // RFC 8203: the new configuration's shutdown text, if it has one for this peer.
            let message = wanted
                .get(&addr)
                .and_then(|p| p.shutdown_message.clone())
                .or_else(|| handle.settings.shutdown_message.clone());
            let _ = handle.cmd.send(PeerCmd::Stop(message)).await;
        }
        *write(&self.policies) = policies;
        for (addr, p) in &wanted {
            if self.registry.peer(*addr).is_none() && p.enabled {
                info!(peer = %p.name, "reload: starting peer");
                if !report.peers_changed.contains(&p.name) {
                    report.peers_added.push(p.name.clone());
                }
                self.start_peer(&new, p);
            }
        }
        report.bfd_changed = self.reload_bfd(&old, &new);
        self.set_listener_min_ttl(&new);
        self.registry.set_config(new);
        Ok(report)
    }
}
