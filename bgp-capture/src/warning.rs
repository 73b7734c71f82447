//! What can go wrong reading a capture: [`PcapError`] when nothing can be
//! read, [`CaptureWarning`] for damage that still leaves complete messages.

use std::net::SocketAddr;

use bgp_proto::framing::FrameError;
use etherparse::err::packet::SliceError;

/// Why a capture cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PcapError {
    /// The input is shorter than a file header.
    #[error("input too short for a pcap or pcapng file header")]
    TruncatedHeader,
    /// Neither the pcap nor the pcapng magic number (or a broken section header).
    #[error("not a pcap or pcapng capture")]
    UnknownFormat,
    /// The whole (classic pcap) file has a link type this reader does not parse.
    #[error("unsupported link type {0} (Ethernet, Linux SLL/SLL2, raw IP and loopback are)")]
    UnsupportedLinkType(i32),
}

/// Damage inside a readable capture. Complete messages are still returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureWarning {
    /// A record or block could not be parsed (typically a file cut off while
    /// tcpdump was writing); nothing after byte `offset` was read.
    #[error("capture unreadable from byte {offset} on, after {packets} packets")]
    TruncatedCapture {
        /// Packets read before the damage.
        packets: usize,
        /// File offset of the unreadable record or block.
        offset: usize,
    },
    /// A pcapng packet names an interface no Interface Description Block defined.
    #[error("packet {packet}: undefined pcapng interface {interface}")]
    UnknownInterface {
        /// Packet number (0-based, in file order).
        packet: usize,
        /// Interface id from the packet block.
        interface: u32,
    },
    /// A pcapng interface has a link type this reader does not parse; its
    /// packets are skipped.
    #[error("pcapng interface {interface}: unsupported link type {linktype}, its packets are skipped")]
    UnsupportedLinkType {
        /// Interface id (order of the Interface Description Blocks in the section).
        interface: u32,
        /// The link type number.
        linktype: i32,
    },
    /// Link, IP or TCP headers could not be parsed; the packet is skipped.
    #[error("packet {packet}: cannot parse headers: {error}")]
    MalformedPacket {
        /// Packet number (0-based, in file order).
        packet: usize,
        /// What etherparse found wrong.
        error: SliceError,
    },
    /// The Linux SLL2 or loopback header is cut short; the packet is skipped.
    #[error("packet {packet}: link-layer header cut short")]
    MalformedLinkHeader {
        /// Packet number (0-based, in file order).
        packet: usize,
    },
    /// A BGP segment (or an unparseable packet) was captured only in part
    /// (snap length); it is skipped, so its stream will show a gap.
    #[error("packet {packet}: only {captured} of {original} bytes captured, skipped")]
    SnappedPacket {
        /// Packet number (0-based, in file order).
        packet: usize,
        /// Bytes in the capture.
        captured: usize,
        /// Bytes on the wire.
        original: u32,
    },
    /// An IP fragment; TCP is not reassembled from fragments.
    #[error("packet {packet}: IP fragment skipped")]
    Fragment {
        /// Packet number (0-based, in file order).
        packet: usize,
    },
    /// Bytes of the stream never appear in the capture; the rest of this
    /// stream is ignored because message boundaries after the hole are unknown.
    #[error("{src} -> {dst}: {missing} bytes missing at stream offset {offset}; rest of the stream ignored")]
    StreamGap {
        /// Sender.
        src: SocketAddr,
        /// Receiver.
        dst: SocketAddr,
        /// Stream offset (bytes after the SYN or the first captured byte) of the hole.
        offset: u64,
        /// Size of the hole in bytes.
        missing: u64,
    },
    /// The stream ends inside a message (capture stopped, connection reset).
    #[error("{src} -> {dst}: stream ends inside a message ({pending} bytes at stream offset {offset})")]
    IncompleteMessage {
        /// Sender.
        src: SocketAddr,
        /// Receiver.
        dst: SocketAddr,
        /// Stream offset at which the incomplete message starts.
        offset: u64,
        /// Bytes of it that were captured.
        pending: usize,
    },
    /// The stream is not valid BGP framing here (RFC 4271 §6.1: bad marker or
    /// length); the rest of the stream is ignored.
    #[error("{src} -> {dst}: framing error at stream offset {offset}: {error}")]
    Framing {
        /// Sender.
        src: SocketAddr,
        /// Receiver.
        dst: SocketAddr,
        /// Stream offset of the bad header.
        offset: u64,
        /// What is wrong with it.
        error: FrameError,
    },
    /// The capture started mid-connection (no SYN): bytes before the first
    /// plausible BGP header were skipped.
    #[error("{src} -> {dst}: capture starts mid-stream, {skipped} bytes before the first BGP header skipped")]
    SkippedLeadingBytes {
        /// Sender.
        src: SocketAddr,
        /// Receiver.
        dst: SocketAddr,
        /// Bytes skipped.
        skipped: u64,
    },
}
