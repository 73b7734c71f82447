//! BGP messages out of packet captures (pcap / pcapng).
//!
//! Used by `ternctl decode --pcap FILE` and by the golden-capture tests: every
//! TCP segment to or from port 179 is collected, each direction of each
//! connection is reassembled in sequence-number order (duplicates and
//! retransmissions dropped, out-of-order segments put back in place) and the
//! resulting byte stream is split into messages with
//! [`bgp_proto::framing::next_message_len`] (RFC 4271 §4.1).
//!
//! File formats: classic pcap (either byte order, micro- or nanosecond
//! timestamps, also the "modified" variant) and pcapng (parsed by
//! `pcap-parser`). Link types: Ethernet (1), Linux cooked SLL (113) and SLL2
//! (276), raw IP (101, 228, 229) and BSD loopback (0); headers below TCP are
//! parsed by `etherparse`. Damage inside a capture (a cut-off file, a missing
//! segment, a stream that ends mid-message, a bad marker) never discards the
//! complete messages: it is reported as a [`CaptureWarning`].
//!
//! Modules: `file` reads the capture formats, `link` slices frames down
//! to TCP segments of port 179, `reassembly` rebuilds the byte streams and
//! cuts them into messages, `warning` names what can go wrong.

mod file;
mod link;
mod reassembly;
mod warning;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::Duration;

use bgp_proto::framing::HEADER_LEN;

pub use warning::{CaptureWarning, PcapError};

/// The BGP TCP port (RFC 4271 §8.2.1).
pub const BGP_PORT: u16 = 179;

/// One BGP message as it was carried on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedMessage {
    /// Sender (address and TCP port).
    pub src: SocketAddr,
    /// Receiver (address and TCP port).
    pub dst: SocketAddr,
    /// Capture time since the Unix epoch at which the last byte of the message
    /// had arrived with everything before it (the moment a receiver could read it).
    pub timestamp: Duration,
    /// The whole message, header included (marker, length, type, body).
    pub bytes: Vec<u8>,
}

impl CapturedMessage {
    /// The message type octet (RFC 4271 §4.1): 1 OPEN, 2 UPDATE, 3 NOTIFICATION,
    /// 4 KEEPALIVE, 5 ROUTE-REFRESH.
    pub fn message_type(&self) -> Option<u8> {
        self.bytes.get(HEADER_LEN - 1).copied()
    }
}

/// Everything [`read_capture`] found: the complete messages in capture order
/// and what could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BgpCapture {
    /// Complete messages of all streams, ordered by [`CapturedMessage::timestamp`]
    /// (ties keep stream order).
    pub messages: Vec<CapturedMessage>,
    /// Damage found along the way; the messages above are still valid.
    pub warnings: Vec<CaptureWarning>,
}

/// Every complete BGP message in a pcap or pcapng file, in capture order.
///
/// Damage inside the capture is tolerated silently here; use [`read_capture`]
/// to see it.
pub fn bgp_messages(pcap_bytes: &[u8]) -> Result<Vec<CapturedMessage>, PcapError> {
    read_capture(pcap_bytes).map(|c| c.messages)
}

/// Every complete BGP message in a pcap or pcapng file plus the list of
/// problems met (cut-off file, missing segments, broken framing).
pub fn read_capture(pcap_bytes: &[u8]) -> Result<BgpCapture, PcapError> {
    let mut warnings = Vec::new();
    let packets = file::read_packets(pcap_bytes, &mut warnings)?;

    let mut streams = reassembly::Streams::default();
    for packet in &packets {
        if let Some(segment) = link::bgp_segment(packet, &mut warnings) {
            streams.add_segment(segment, packet.timestamp);
        }
    }
    let messages = streams.into_messages(&mut warnings);
    Ok(BgpCapture { messages, warnings })
}
