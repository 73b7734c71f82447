//! SIGHUP / reload: re-reads the configuration file and applies what
//! changed — originated prefixes, added, removed and changed peers — leaving
//! untouched sessions alone. A file that does not validate changes nothing.

use std::collections::HashMap;
use std::net::IpAddr;

use config::EffectivePeer;
use tracing::{error, info, warn};

use super::peers::{write, Supervisor};
use super::settings::{compile, dynamic_settings, originated, peer_settings};
use crate::messages::{PeerCmd, RibMsg};
use crate::registry::ReloadReport;
use crate::session::{PeerHandle, SOFT_SETTINGS};

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
            let id = handle.settings.id;
            let want = if handle.settings.dynamic {
                // A configured peer at its address takes over from the range.
                let range = new.dynamic_peers.iter().find(|d| d.range.contains(addr));
                range
                    .filter(|_| !wanted.contains_key(&addr))
                    .map(|d| dynamic_settings(&new, &policies, d, addr, id))
            } else {
                wanted
                    .get(&addr)
                    .filter(|p| p.enabled)
                    .map(|p| peer_settings(&new, &policies, p, id))
            };
            let want = want.map(|mut w| {
                w.hostname = handle.settings.hostname.clone();
                w
            });
            let still_wanted = want.is_some();
            let changed = want.as_ref().map(|w| handle.settings.differences(w));
            match (want, changed) {
                (Some(_), Some(changed)) if changed.is_empty() => continue,
                (Some(want), Some(changed)) if changed.iter().all(|c| SOFT_SETTINGS.contains(c)) => {
                    report.peers_reconfigured.push(handle.settings.name.clone());
                    if let Some(h) = self.registry.peers_mut().get_mut(&addr) {
                        h.settings = want.clone();
                    }
                    let _ = handle.cmd.send(PeerCmd::Reconfigure(Box::new(want))).await;
                    continue;
                }
                (Some(_), Some(changed)) => {
                    let needs_open: Vec<_> = changed.into_iter().filter(|c| !SOFT_SETTINGS.contains(c)).collect();
                    info!(peer = %handle.settings.name, changed = ?needs_open, "reload: a setting of the OPEN or the connection changed, restarting the session");
                }
                _ => info!(peer = %handle.settings.name, "reload: peer removed or disabled, stopping it"),
            }
            match still_wanted {
                true => report.peers_changed.push(handle.settings.name.clone()),
                false => report.peers_removed.push(handle.settings.name.clone()),
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
