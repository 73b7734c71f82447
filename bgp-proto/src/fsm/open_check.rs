//! What the FSM checks in the peer's OPEN beyond what `Open::decode` does
//! (RFC 4271 §6.2, RFC 6793, RFC 6286, RFC 9234), and the keepalive interval
//! it settles on for the negotiated hold time.

use super::config::FsmConfig;
use super::reason::OpenError;
use crate::capability::Capability;
use crate::open::{Open, AS_TRANS};

/// RFC 4271 §6.2 OPEN checks beyond what `Open::decode` does.
pub(super) fn check_open(cfg: &FsmConfig, open: &Open) -> Result<(), OpenError> {
    if open.version != 4 {
        return Err(OpenError::Version(open.version));
    }
    let asn = open.asn();
    if asn != cfg.peer_asn {
        return Err(OpenError::BadPeerAs {
            expected: cfg.peer_asn,
            got: asn,
        });
    }
    // RFC 6793 §4.1: a 4-octet-capable speaker puts its AS in the 2-octet
    // field if it fits, AS_TRANS otherwise.
    if open.capabilities().any(|c| matches!(c, Capability::FourOctetAs(_))) {
        let expected = u16::try_from(asn).unwrap_or(AS_TRANS);
        if open.my_as != expected {
            return Err(OpenError::InconsistentAs { asn, my_as: open.my_as });
        }
    }
    // RFC 4271 §6.2: hold times of one or two seconds are unacceptable.
    if open.hold_time == 1 || open.hold_time == 2 {
        return Err(OpenError::HoldTime(open.hold_time));
    }
    // RFC 6286 §2.2: non-zero, and unique within an AS.
    if open.bgp_id.is_unspecified() {
        return Err(OpenError::InvalidBgpId(open.bgp_id));
    }
    if cfg.local_asn == cfg.peer_asn && open.bgp_id == cfg.local_id {
        return Err(OpenError::SameBgpId(open.bgp_id));
    }
    // RFC 9234 §4.2: roles must pair; a peer sending different roles is refused.
    let mut roles = open.capabilities().filter_map(|c| match c {
        Capability::Role(r) => Some(*r),
        _ => None,
    });
    let peer = roles.next();
    if roles.any(|r| Some(r) != peer) {
        return Err(OpenError::ConflictingRoles);
    }
    if let Some(local) = cfg.role {
        let ok = match peer {
            Some(p) => p == local.expected_peer_role(),
            None => !cfg.strict_role,
        };
        if !ok {
            return Err(OpenError::RoleMismatch { local, peer });
        }
    }
    Ok(())
}

/// Keepalive interval for a negotiated hold time: the configured one scaled
/// down in proportion to the hold time, else a third of it (RFC 4271 §10).
pub(super) fn keepalive_for(cfg: &FsmConfig, hold: u16) -> u16 {
    if hold == 0 {
        return 0;
    }
    let ours = cfg.hold_time;
    match cfg.keepalive_time {
        Some(k) if k > 0 && k < ours => {
            let scaled = u32::from(k) * u32::from(hold) / u32::from(ours);
            u16::try_from(scaled).unwrap_or(hold / 3).max(1)
        }
        _ => (hold / 3).max(1),
    }
}
