//! The BFD Control packet (RFC 5880 §4.1): the 24-octet mandatory section,
//! its codec, and the reception checks of §6.8.6 that concern the packet
//! alone (those that need session state live in [`crate::session`]).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! |                       My Discriminator                        |
//! |                      Your Discriminator                       |
//! |                    Desired Min TX Interval                    |
//! |                   Required Min RX Interval                    |
//! |                 Required Min Echo RX Interval                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::fmt;

/// The only protocol version (RFC 5880 §4.1).
pub const VERSION: u8 = 1;

/// Octets in the mandatory section, the whole packet when the A bit is clear.
pub const MANDATORY_LEN: usize = 24;

/// Smallest legal Length when the A bit is set: the mandatory section plus
/// the Auth Type and Auth Len octets (RFC 5880 §6.8.6).
pub const MIN_LEN_WITH_AUTH: usize = 26;

const FLAG_POLL: u8 = 0x20;
const FLAG_FINAL: u8 = 0x10;
const FLAG_CPI: u8 = 0x08;
const FLAG_AUTH: u8 = 0x04;
const FLAG_DEMAND: u8 = 0x02;
const FLAG_MULTIPOINT: u8 = 0x01;

/// Why the local session state last changed (RFC 5880 §4.1, the Diag field).
///
/// Codes 9–31 are reserved; they are kept as [`Diagnostic::Unknown`] so a
/// packet decodes and re-encodes unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Diagnostic {
    /// 0: No Diagnostic.
    None,
    /// 1: Control Detection Time Expired: we stopped hearing the remote.
    ControlDetectionTimeExpired,
    /// 2: Echo Function Failed.
    EchoFunctionFailed,
    /// 3: Neighbor Signaled Session Down: the remote said Down or AdminDown.
    NeighborSignaledSessionDown,
    /// 4: Forwarding Plane Reset.
    ForwardingPlaneReset,
    /// 5: Path Down.
    PathDown,
    /// 6: Concatenated Path Down.
    ConcatenatedPathDown,
    /// 7: Administratively Down.
    AdministrativelyDown,
    /// 8: Reverse Concatenated Path Down.
    ReverseConcatenatedPathDown,
    /// 9–31: reserved; the raw 5-bit value.
    Unknown(u8),
}

impl Diagnostic {
    /// The diagnostic for a 5-bit code (higher bits are ignored).
    pub fn from_code(code: u8) -> Diagnostic {
        match code & 0x1f {
            0 => Diagnostic::None,
            1 => Diagnostic::ControlDetectionTimeExpired,
            2 => Diagnostic::EchoFunctionFailed,
            3 => Diagnostic::NeighborSignaledSessionDown,
            4 => Diagnostic::ForwardingPlaneReset,
            5 => Diagnostic::PathDown,
            6 => Diagnostic::ConcatenatedPathDown,
            7 => Diagnostic::AdministrativelyDown,
            8 => Diagnostic::ReverseConcatenatedPathDown,
            other => Diagnostic::Unknown(other),
        }
    }

    /// The 5-bit wire code ([`Diagnostic::Unknown`] is masked to 5 bits).
    pub fn code(self) -> u8 {
        match self {
            Diagnostic::None => 0,
            Diagnostic::ControlDetectionTimeExpired => 1,
            Diagnostic::EchoFunctionFailed => 2,
            Diagnostic::NeighborSignaledSessionDown => 3,
            Diagnostic::ForwardingPlaneReset => 4,
            Diagnostic::PathDown => 5,
            Diagnostic::ConcatenatedPathDown => 6,
            Diagnostic::AdministrativelyDown => 7,
            Diagnostic::ReverseConcatenatedPathDown => 8,
            Diagnostic::Unknown(code) => code & 0x1f,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Diagnostic::None => "no diagnostic",
            Diagnostic::ControlDetectionTimeExpired => "control detection time expired",
            Diagnostic::EchoFunctionFailed => "echo function failed",
            Diagnostic::NeighborSignaledSessionDown => "neighbor signaled session down",
            Diagnostic::ForwardingPlaneReset => "forwarding plane reset",
            Diagnostic::PathDown => "path down",
            Diagnostic::ConcatenatedPathDown => "concatenated path down",
            Diagnostic::AdministrativelyDown => "administratively down",
            Diagnostic::ReverseConcatenatedPathDown => "reverse concatenated path down",
            Diagnostic::Unknown(code) => return write!(f, "reserved diagnostic {code}"),
        };
        f.write_str(text)
    }
}

/// Session state, as carried in the Sta field (RFC 5880 §4.1) and kept in
/// `bfd.SessionState` (§6.8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// 0: administratively held down; no session comes up.
    AdminDown,
    /// 1: no session, or it just went down.
    Down,
    /// 2: the remote is heard, three-way handshake in progress.
    Init,
    /// 3: the session is up.
    Up,
}

impl State {
    /// The state for a 2-bit code (higher bits are ignored).
    pub fn from_code(code: u8) -> State {
        match code & 0x03 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    /// The 2-bit wire code.
    pub fn code(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        })
    }
}

/// The mandatory section of a BFD Control packet (RFC 5880 §4.1).
///
/// Intervals are in microseconds, as on the wire. The version is always 1
/// and the Length field is derived (24 octets), so neither is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ControlPacket {
    /// Diag: why the sender's state last changed.
    pub diag: Diagnostic,
    /// Sta: the sender's session state.
    pub state: State,
    /// P: the sender asks for a Final (§6.5 Poll Sequence).
    pub poll: bool,
    /// F: answer to a Poll.
    pub final_: bool,
    /// C: the sender's BFD does not share fate with its control plane.
    pub control_plane_independent: bool,
    /// A: an authentication section follows. Never accepted by [`decode`];
    /// kept so a caller can build such a packet for tests.
    pub authentication: bool,
    /// D: the sender wishes to run in Demand mode (§6.6).
    pub demand: bool,
    /// M: reserved for multipoint; must be zero (§4.1).
    pub multipoint: bool,
    /// Detect Mult: the sender's detection time multiplier.
    pub detect_mult: u8,
    /// My Discriminator: the sender's session id, nonzero.
    pub my_discriminator: u32,
    /// Your Discriminator: the receiver's session id as the sender knows it, or 0.
    pub your_discriminator: u32,
    /// Desired Min TX Interval (µs): how fast the sender would like to send.
    pub desired_min_tx: u32,
    /// Required Min RX Interval (µs): how fast the sender can take packets; 0 = none.
    pub required_min_rx: u32,
    /// Required Min Echo RX Interval (µs); 0 = no Echo function.
    pub required_min_echo_rx: u32,
}

/// Why a received packet is discarded by the RFC 5880 §6.8.6 reception checks
/// that concern the packet alone. One variant per check so a caller can count them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer octets than needed to read the header fields at all.
    #[error("truncated packet: {len} octets")]
    Truncated {
        /// Octets received.
        len: usize,
    },
    /// §6.8.6: "If the version number is not correct (1), the packet MUST be discarded."
    #[error("unsupported BFD version {0}")]
    BadVersion(u8),
    /// §6.8.6: Length less than 24 (A clear) or 26 (A set).
    #[error("length field {length} below the minimum {min}")]
    LengthTooSmall {
        /// The Length field.
        length: u8,
        /// 24, or 26 with the A bit.
        min: usize,
    },
    /// §6.8.6: Length greater than the payload of the encapsulating protocol.
    #[error("length field {length} exceeds the {payload}-octet payload")]
    LengthExceedsPayload {
        /// The Length field.
        length: u8,
        /// Octets received.
        payload: usize,
    },
    /// §6.8.6: "If the Detect Mult field is zero, the packet MUST be discarded."
    #[error("detect multiplier is zero")]
    ZeroDetectMult,
    /// §6.8.6: "If the Multipoint (M) bit is nonzero, the packet MUST be discarded."
    #[error("multipoint bit set")]
    Multipoint,
    /// §6.8.6: "If the My Discriminator field is zero, the packet MUST be discarded."
    #[error("my discriminator is zero")]
    ZeroMyDiscriminator,
    /// §6.8.6: Your Discriminator zero while State is neither Down nor AdminDown.
    #[error("your discriminator is zero in state {0}")]
    ZeroYourDiscriminator(State),
    /// §6.8.6: A bit set while no authentication is in use (we support none).
    #[error("authentication present but not supported")]
    AuthenticationNotSupported,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decodes a BFD Control packet from a UDP payload and applies the RFC 5880
/// §6.8.6 checks on the packet itself, in the RFC's order. Octets past the
/// Length field are ignored. Never panics.
pub fn decode(buf: &[u8]) -> Result<ControlPacket, DecodeError> {
    let Some(&first) = buf.first() else {
        return Err(DecodeError::Truncated { len: 0 });
    };
    let version = first >> 5;
    if version != VERSION {
        return Err(DecodeError::BadVersion(version));
    }
    if buf.len() < 4 {
        return Err(DecodeError::Truncated { len: buf.len() });
    }
    let flags = buf[1];
    let authentication = flags & FLAG_AUTH != 0;
    let length = buf[3];
    let min = if authentication {
        MIN_LEN_WITH_AUTH
    } else {
        MANDATORY_LEN
    };
    if usize::from(length) < min {
        return Err(DecodeError::LengthTooSmall { length, min });
    }
    if usize::from(length) > buf.len() {
        return Err(DecodeError::LengthExceedsPayload {
            length,
            payload: buf.len(),
        });
    }
    // From here buf holds at least `length` >= 24 octets.
    let packet = ControlPacket {
        diag: Diagnostic::from_code(first),
        state: State::from_code(flags >> 6),
        poll: flags & FLAG_POLL != 0,
        final_: flags & FLAG_FINAL != 0,
        control_plane_independent: flags & FLAG_CPI != 0,
        authentication,
        demand: flags & FLAG_DEMAND != 0,
        multipoint: flags & FLAG_MULTIPOINT != 0,
        detect_mult: buf[2],
        my_discriminator: be32(buf, 4),
        your_discriminator: be32(buf, 8),
        desired_min_tx: be32(buf, 12),
        required_min_rx: be32(buf, 16),
        required_min_echo_rx: be32(buf, 20),
    };
    check(&packet)?;
    Ok(packet)
}

/// The RFC 5880 §6.8.6 checks on the fields of a packet, in the RFC's order:
/// Detect Mult, M bit, My Discriminator, Your Discriminator against State,
/// and the A bit. [`decode`] runs them; [`crate::Session::receive`] runs them
/// again so a packet built in code cannot skip them.
pub fn check(packet: &ControlPacket) -> Result<(), DecodeError> {
    if packet.detect_mult == 0 {
        return Err(DecodeError::ZeroDetectMult);
    }
    if packet.multipoint {
        return Err(DecodeError::Multipoint);
    }
    if packet.my_discriminator == 0 {
        return Err(DecodeError::ZeroMyDiscriminator);
    }
    if packet.your_discriminator == 0 && !matches!(packet.state, State::Down | State::AdminDown) {
        return Err(DecodeError::ZeroYourDiscriminator(packet.state));
    }
    if packet.authentication {
        return Err(DecodeError::AuthenticationNotSupported);
    }
    Ok(())
}

/// Encodes the mandatory section, Length 24. Every field is written as given
/// (no validation), so a test can build each malformed packet [`decode`] rejects.
pub fn encode(packet: &ControlPacket) -> [u8; MANDATORY_LEN] {
    let mut out = [0u8; MANDATORY_LEN];
    out[0] = (VERSION << 5) | packet.diag.code();
    let mut flags = packet.state.code() << 6;
    for (set, bit) in [
        (packet.poll, FLAG_POLL),
        (packet.final_, FLAG_FINAL),
        (packet.control_plane_independent, FLAG_CPI),
        (packet.authentication, FLAG_AUTH),
        (packet.demand, FLAG_DEMAND),
        (packet.multipoint, FLAG_MULTIPOINT),
    ] {
        if set {
            flags |= bit;
        }
    }
    out[1] = flags;
    out[2] = packet.detect_mult;
    out[3] = MANDATORY_LEN as u8;
    out[4..8].copy_from_slice(&packet.my_discriminator.to_be_bytes());
    out[8..12].copy_from_slice(&packet.your_discriminator.to_be_bytes());
    out[12..16].copy_from_slice(&packet.desired_min_tx.to_be_bytes());
    out[16..20].copy_from_slice(&packet.required_min_rx.to_be_bytes());
    out[20..24].copy_from_slice(&packet.required_min_echo_rx.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ControlPacket {
        ControlPacket {
            diag: Diagnostic::None,
            state: State::Up,
            poll: false,
            final_: false,
            control_plane_independent: false,
            authentication: false,
            demand: false,
            multipoint: false,
            detect_mult: 3,
            my_discriminator: 0x0102_0304,
            your_discriminator: 0x0a0b_0c0d,
            desired_min_tx: 300_000,
            required_min_rx: 250_000,
            required_min_echo_rx: 0,
        }
    }

    #[test]
    fn encodes_the_rfc_layout() {
        let mut p = sample();
        p.diag = Diagnostic::NeighborSignaledSessionDown;
        p.state = State::Init;
        p.poll = true;
        p.demand = true;
        let b = encode(&p);
        assert_eq!(b[0], 0x20 | 3, "version 1 in the top 3 bits, diag 3 below");
        assert_eq!(b[1], (2 << 6) | 0x20 | 0x02, "Init, P and D");
        assert_eq!(b[2], 3);
        assert_eq!(b[3], 24);
        assert_eq!(&b[4..8], &[1, 2, 3, 4]);
        assert_eq!(&b[8..12], &[0x0a, 0x0b, 0x0c, 0x0d]);
        assert_eq!(&b[12..16], &300_000u32.to_be_bytes());
        assert_eq!(&b[16..20], &250_000u32.to_be_bytes());
        assert_eq!(&b[20..24], &[0, 0, 0, 0]);
        assert_eq!(decode(&b), Ok(p));
    }

    #[test]
    fn every_diagnostic_and_state_code_round_trips() {
        for code in 0..32u8 {
            assert_eq!(Diagnostic::from_code(code).code(), code);
        }
        assert_eq!(Diagnostic::from_code(9), Diagnostic::Unknown(9));
        assert_eq!(Diagnostic::from_code(7), Diagnostic::AdministrativelyDown);
        for code in 0..4u8 {
            assert_eq!(State::from_code(code).code(), code);
        }
    }

    #[test]
    fn trailing_octets_past_length_are_ignored() {
        let mut buf = encode(&sample()).to_vec();
        buf.extend_from_slice(&[0xde, 0xad]);
        assert_eq!(decode(&buf), Ok(sample()));
    }
}
