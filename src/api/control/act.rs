//! The control socket's commands that change things: `ternctl peer
//! disable|enable|reset|refresh NAME` and `ternctl reload`.

use tokio::sync::oneshot;

use super::proto::{PeerActionReply, PeerRequest};
use crate::messages::{PeerAction, PeerCmd};
use crate::registry::{Registry, ReloadReport, QUERY_TIMEOUT};

/// Carries out `request` on the peer called `name` and says where it stands.
pub async fn peer(registry: &Registry, name: &str, request: PeerRequest) -> Result<PeerActionReply, String> {
    // A disabled dynamic peer has no session task (it ends with its session):
    // enabling it only lets it be admitted again.
    if request == PeerRequest::Enable && registry.peer_named(name).is_none() && registry.disabled(name).is_some() {
        registry.set_disabled(name, None);
        return Ok(PeerActionReply {
            name: name.to_string(),
            state: "Idle".into(),
            disabled: false,
        });
    }
    let handle = registry
        .peer_named(name)
        .ok_or_else(|| format!("no peer named {name:?} (see `ternctl show peers`)"))?;
    let action = match request {
        PeerRequest::Disable { message } => PeerAction::Disable(message),
        PeerRequest::Enable => PeerAction::Enable,
        PeerRequest::Reset => PeerAction::Reset,
        PeerRequest::Refresh { inbound, outbound } => PeerAction::Refresh { inbound, outbound },
    };
    // Disabled stays disabled across reloads, which start new sessions.
    match &action {
        PeerAction::Disable(message) => registry.set_disabled(name, Some(message.clone())),
        PeerAction::Enable => registry.set_disabled(name, None),
        _ => {}
    }
    let enabling_dynamic = handle.settings.dynamic && action == PeerAction::Enable;
    // A dynamic peer's task may end (with its session) as the command goes in:
    // enabling it then means, as above, that it may be admitted again.
    let ended = || {
        if enabling_dynamic {
            Ok(PeerActionReply {
                name: name.to_string(),
                state: "Idle".into(),
                disabled: false,
            })
        } else {
            Err(format!("peer {name} is stopping"))
        }
    };
    let (tx, rx) = oneshot::channel();
    if handle.cmd.send(PeerCmd::Act(action, tx)).await.is_err() {
        return ended();
    }
    match tokio::time::timeout(QUERY_TIMEOUT, rx).await {
        Ok(Ok(done)) => done?,
        Ok(Err(_)) => return ended(),
        Err(_) => {
            return Err(format!(
                "peer {name} did not answer within {} s",
                QUERY_TIMEOUT.as_secs()
            ))
        }
    }
    let status = handle.status();
    Ok(PeerActionReply {
        name: name.to_string(),
        state: status.state.to_string(),
        disabled: status.disabled,
    })
}

/// Re-reads the configuration file; a bad one changes nothing and its
/// `FILE:LINE:COLUMN` errors come back.
pub async fn reload(registry: &Registry) -> Result<ReloadReport, String> {
    registry.reload().await.map_err(|errors| errors.join("\n"))
}
