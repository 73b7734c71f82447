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

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bgp_proto::framing::{next_message_len, FrameError, HEADER_LEN, MAX_EXTENDED_MESSAGE_LEN};
use etherparse::err::packet::SliceError;
use etherparse::{EtherType, NetSlice, SlicedPacket, TransportSlice};
use pcap_parser::data::{get_packetdata_linux_sll2, get_packetdata_null, PacketData};
use pcap_parser::pcapng::{Block, PcapNGSlice};
use pcap_parser::{
    parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified, parse_pcap_header, LegacyPcapBlock, Linktype,
    PcapBlockOwned,
};

/// The BGP TCP port (RFC 4271 §8.2.1).
pub const BGP_PORT: u16 = 179;

/// First four bytes of a pcapng file (Section Header Block type).
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

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
    let packets = if pcap_bytes.starts_with(&PCAPNG_MAGIC) {
        read_pcapng(pcap_bytes, &mut warnings)?
    } else {
        read_legacy(pcap_bytes, &mut warnings)?
    };

    let mut streams = Streams::default();
    for packet in &packets {
        streams.add_packet(packet, &mut warnings);
    }

    let mut messages = Vec::new();
    for stream in streams.streams {
        stream.assemble(&mut messages, &mut warnings);
    }
    // Stable: messages of one stream keep their order when timestamps tie.
    messages.sort_by_key(|m| m.timestamp);
    Ok(BgpCapture { messages, warnings })
}

/// One captured frame, still with its link-layer header.
struct RawPacket<'a> {
    /// Packet record number in the file (0-based), for warnings.
    number: usize,
    linktype: Linktype,
    timestamp: Duration,
    data: &'a [u8],
    original_len: u32,
}

fn supported_linktype(linktype: Linktype) -> bool {
    matches!(
        linktype,
        Linktype::NULL
            | Linktype::ETHERNET
            | Linktype::RAW
            | Linktype::LINUX_SLL
            | Linktype::LINUX_SLL2
            | Linktype::IPV4
            | Linktype::IPV6
    )
}

/// Classic pcap: a file header, then records (byte order from the magic number).
fn read_legacy<'a>(input: &'a [u8], warnings: &mut Vec<CaptureWarning>) -> Result<Vec<RawPacket<'a>>, PcapError> {
    let (mut rest, header) = match parse_pcap_header(input) {
        Ok(v) => v,
        Err(pcap_parser::nom::Err::Incomplete(_)) => return Err(PcapError::TruncatedHeader),
        Err(_) => return Err(PcapError::UnknownFormat),
    };
    if !supported_linktype(header.network) {
        return Err(PcapError::UnsupportedLinkType(header.network.0));
    }
    let nanos = header.is_nanosecond_precision();
    let mut packets = Vec::new();
    while !rest.is_empty() {
        let parsed = if header.is_modified_format() {
            parse_pcap_frame_modified(rest)
        } else if header.is_bigendian() {
            parse_pcap_frame_be(rest)
        } else {
            parse_pcap_frame(rest)
        };
        let (next, block): (&[u8], LegacyPcapBlock<'a>) = match parsed {
            Ok(v) => v,
            Err(_) => {
                warnings.push(CaptureWarning::TruncatedCapture {
                    packets: packets.len(),
                    offset: input.len() - rest.len(),
                });
                break;
            }
        };
        let frac_nanos = if nanos {
            u64::from(block.ts_usec)
        } else {
            u64::from(block.ts_usec) * 1_000
        };
        let timestamp = Duration::from_secs(u64::from(block.ts_sec)) + Duration::from_nanos(frac_nanos);
        packets.push(RawPacket {
            number: packets.len(),
            linktype: header.network,
            timestamp,
            data: block.data,
            original_len: block.origlen,
        });
        rest = next;
    }
    Ok(packets)
}

/// A pcapng interface: link type and timestamp encoding of its packets.
struct Interface {
    linktype: Linktype,
    /// Timestamp units per second (`if_tsresol`), `None` when the option is invalid.
    units_per_sec: Option<u64>,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset_secs: i64,
    /// Snap length; 0 means unlimited.
    snaplen: u32,
}

/// pcapng: sections of blocks; interfaces are defined per section.
fn read_pcapng<'a>(input: &'a [u8], warnings: &mut Vec<CaptureWarning>) -> Result<Vec<RawPacket<'a>>, PcapError> {
    let blocks = match PcapNGSlice::from_slice(input) {
        Ok(s) => s,
        Err(pcap_parser::nom::Err::Incomplete(_)) => return Err(PcapError::TruncatedHeader),
        Err(_) => return Err(PcapError::UnknownFormat),
    };
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut packets = Vec::new();
    let mut packet_no = 0usize;
    let mut consumed = 0usize;
    for block in blocks {
        let block = match block {
            Ok(PcapBlockOwned::NG(b)) => {
                consumed = consumed.saturating_add(block_len(&b));
                b
            }
            // PcapNGSlice yields only NG blocks; anything else is not ours to read.
            Ok(_) => continue,
            Err(_) => {
                warnings.push(CaptureWarning::TruncatedCapture {
                    packets: packet_no,
                    offset: consumed,
                });
                break;
            }
        };
        match &block {
            Block::SectionHeader(_) => {
                interfaces.clear();
            }
            Block::InterfaceDescription(idb) => {
                let id = interfaces.len() as u32;
                if !supported_linktype(idb.linktype) {
                    warnings.push(CaptureWarning::UnsupportedLinkType {
                        interface: id,
                        linktype: idb.linktype.0,
                    });
                }
                interfaces.push(Interface {
                    linktype: idb.linktype,
                    units_per_sec: idb.ts_resolution(),
                    offset_secs: idb.ts_offset(),
                    snaplen: idb.snaplen,
                });
            }
            Block::EnhancedPacket(epb) => {
                let packet = packet_no;
                packet_no += 1;
                let Some(iface) = interfaces.get(epb.if_id as usize) else {
                    warnings.push(CaptureWarning::UnknownInterface {
                        packet,
                        interface: epb.if_id,
                    });
                    continue;
                };
                if !supported_linktype(iface.linktype) {
                    continue;
                }
                let ticks = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                packets.push(RawPacket {
                    number: packet,
                    linktype: iface.linktype,
                    timestamp: pcapng_timestamp(ticks, iface),
                    // `data` is padded to 32 bits; the captured length is `caplen`.
                    data: epb.data.get(..epb.caplen as usize).unwrap_or(epb.data),
                    original_len: epb.origlen,
                });
            }
            Block::SimplePacket(spb) => {
                let packet = packet_no;
                packet_no += 1;
                // RFC draft pcapng §4.4: an SPB belongs to the first interface
                // and carries no timestamp.
                let Some(iface) = interfaces.first() else {
                    warnings.push(CaptureWarning::UnknownInterface { packet, interface: 0 });
                    continue;
                };
                if !supported_linktype(iface.linktype) {
                    continue;
                }
                // `data` is padded to 32 bits; what was captured is the
                // original length cut to the interface's snap length.
                let mut captured = spb.data.len().min(spb.origlen as usize);
                if iface.snaplen != 0 {
                    captured = captured.min(iface.snaplen as usize);
                }
                packets.push(RawPacket {
                    number: packet,
                    linktype: iface.linktype,
                    timestamp: Duration::ZERO,
                    data: spb.data.get(..captured).unwrap_or(spb.data),
                    original_len: spb.origlen,
                });
            }
            _ => {}
        }
    }
    Ok(packets)
}

fn block_len(block: &Block<'_>) -> usize {
    let len = match block {
        Block::SectionHeader(b) => b.block_len1,
        Block::InterfaceDescription(b) => b.block_len1,
        Block::EnhancedPacket(b) => b.block_len1,
        Block::SimplePacket(b) => b.block_len1,
        Block::NameResolution(b) => b.block_len1,
        Block::InterfaceStatistics(b) => b.block_len1,
        Block::SystemdJournalExport(b) => b.block_len1,
        Block::DecryptionSecrets(b) => b.block_len1,
        Block::ProcessInformation(b) => b.block_len1,
        Block::Custom(b) => b.block_len1,
        Block::Unknown(b) => b.block_len1,
    };
    len as usize
}

/// pcapng timestamp ticks -> time since the epoch, without overflow on hostile input.
fn pcapng_timestamp(ticks: u64, iface: &Interface) -> Duration {
    // 10^6 (microseconds) is the pcapng default resolution.
    let units = iface.units_per_sec.filter(|&u| u > 0).unwrap_or(1_000_000);
    let secs = ticks / units;
    let frac = ticks % units;
    let nanos = (u128::from(frac) * 1_000_000_000 / u128::from(units)) as u32;
    let secs = (i128::from(secs) + i128::from(iface.offset_secs)).clamp(0, i128::from(u64::MAX));
    Duration::new(secs as u64, nanos)
}

/// Link layer -> etherparse slices; `None` when the link header itself is broken.
fn slice_frame(linktype: Linktype, data: &[u8]) -> Option<Result<SlicedPacket<'_>, SliceError>> {
    match linktype {
        Linktype::ETHERNET => Some(SlicedPacket::from_ethernet(data)),
        Linktype::LINUX_SLL => Some(SlicedPacket::from_linux_sll(data)),
        Linktype::RAW | Linktype::IPV4 | Linktype::IPV6 => Some(SlicedPacket::from_ip(data)),
        Linktype::LINUX_SLL2 | Linktype::NULL => {
            let inner = if linktype == Linktype::NULL {
                get_packetdata_null(data, data.len())
            } else {
                get_packetdata_linux_sll2(data, data.len())
            };
            match inner? {
                PacketData::L3(ether_type, payload) => {
                    Some(SlicedPacket::from_ether_type(EtherType(ether_type), payload))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// The TCP facts of one BGP segment.
struct TcpSegment<'a> {
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    syn: bool,
    payload: &'a [u8],
}

enum Sliced<'a> {
    Bgp(TcpSegment<'a>),
    NotBgp,
    Fragment,
}

fn classify<'a>(packet: &SlicedPacket<'a>) -> Sliced<'a> {
    let (src_ip, dst_ip, fragmented) = match &packet.net {
        Some(NetSlice::Ipv4(ip)) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
            ip.is_payload_fragmented(),
        ),
        Some(NetSlice::Ipv6(ip)) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
            ip.is_payload_fragmented(),
        ),
        _ => return Sliced::NotBgp,
    };
    let tcp = match &packet.transport {
        Some(TransportSlice::Tcp(tcp)) => tcp,
        _ if fragmented => return Sliced::Fragment,
        _ => return Sliced::NotBgp,
    };
    if tcp.source_port() != BGP_PORT && tcp.destination_port() != BGP_PORT {
        return Sliced::NotBgp;
    }
    Sliced::Bgp(TcpSegment {
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        syn: tcp.syn(),
        payload: tcp.payload(),
    })
}

/// Turns 32-bit sequence numbers into a 64-bit stream position, so streams
/// longer than 4 GiB and wrap-around work (RFC 9293 §3.4: comparisons are modulo 2^32).
struct SeqUnwrapper {
    last_raw: u32,
    last: i64,
}

impl SeqUnwrapper {
    fn new(anchor: u32) -> Self {
        SeqUnwrapper {
            last_raw: anchor,
            last: 0,
        }
    }

    fn unwrap(&mut self, seq: u32) -> i64 {
        let delta = i64::from(seq.wrapping_sub(self.last_raw) as i32);
        self.last += delta;
        self.last_raw = seq;
        self.last
    }
}

struct Segment<'a> {
    /// Unwrapped sequence number of the first payload byte.
    position: i64,
    payload: &'a [u8],
    timestamp: Duration,
}

/// One direction of one TCP connection.
struct Stream<'a> {
    src: SocketAddr,
    dst: SocketAddr,
    seq: SeqUnwrapper,
    /// Raw and unwrapped sequence number of the SYN, when it was captured.
    syn: Option<(u32, i64)>,
    segments: Vec<Segment<'a>>,
}

#[derive(Default)]
struct Streams<'a> {
    streams: Vec<Stream<'a>>,
    current: HashMap<(SocketAddr, SocketAddr), usize>,
}

impl<'a> Streams<'a> {
    fn add_packet(&mut self, raw: &RawPacket<'a>, warnings: &mut Vec<CaptureWarning>) {
        let packet = raw.number;
        let snapped = (raw.data.len() as u64) < u64::from(raw.original_len);
        let snapped_warning = CaptureWarning::SnappedPacket {
            packet,
            captured: raw.data.len(),
            original: raw.original_len,
        };
        let sliced = match slice_frame(raw.linktype, raw.data) {
            Some(Ok(s)) => s,
            Some(Err(error)) => {
                warnings.push(if snapped {
                    snapped_warning
                } else {
                    CaptureWarning::MalformedPacket { packet, error }
                });
                return;
            }
            None => {
                warnings.push(CaptureWarning::MalformedLinkHeader { packet });
                return;
            }
        };
        let segment = match classify(&sliced) {
            Sliced::Bgp(s) => s,
            Sliced::NotBgp => return,
            Sliced::Fragment => {
                warnings.push(CaptureWarning::Fragment { packet });
                return;
            }
        };
        if snapped {
            warnings.push(snapped_warning);
            return;
        }
        self.add_segment(segment, raw.timestamp);
    }

    fn add_segment(&mut self, seg: TcpSegment<'a>, timestamp: Duration) {
        let key = (seg.src, seg.dst);
        let existing = self.current.get(&key).copied();
        let index = match existing {
            Some(i) if !seg.syn => i,
            Some(i)
                if self.streams[i].segments.is_empty()
                    && !matches!(self.streams[i].syn, Some((raw, _)) if raw != seg.seq) =>
            {
                // Retransmitted SYN, or a SYN for a stream with no data yet.
                i
            }
            _ => {
                // First sight of this direction, or a new connection (SYN)
                // reusing the address/port pair.
                self.streams.push(Stream {
                    src: seg.src,
                    dst: seg.dst,
                    seq: SeqUnwrapper::new(seg.seq),
                    syn: None,
                    segments: Vec::new(),
                });
                let i = self.streams.len() - 1;
                self.current.insert(key, i);
                i
            }
        };
        let stream = &mut self.streams[index];
        let mut position = stream.seq.unwrap(seg.seq);
        if seg.syn {
            stream.syn = Some((seg.seq, position));
            // The SYN occupies one sequence number (RFC 9293 §3.4).
            position += 1;
        }
        if !seg.payload.is_empty() {
            stream.segments.push(Segment {
                position,
                payload: seg.payload,
                timestamp,
            });
        }
    }
}

impl Stream<'_> {
    /// Reassembles the byte stream and splits it into messages.
    fn assemble(mut self, messages: &mut Vec<CapturedMessage>, warnings: &mut Vec<CaptureWarning>) {
        if self.segments.is_empty() {
            return;
        }
        // Stable sort: of two segments starting at the same place, the one
        // captured first wins and the retransmission is dropped.
        self.segments.sort_by_key(|s| s.position);
        let start = match self.syn {
            Some((_, syn)) => syn + 1,
            None => self.segments[0].position,
        };

        let mut bytes: Vec<u8> = Vec::new();
        // (end of the contiguous bytes, time they were all there)
        let mut arrivals: Vec<(usize, Duration)> = Vec::new();
        let mut cursor = start;
        let mut latest = Duration::ZERO;
        let mut gap = false;
        for seg in &self.segments {
            let end = seg.position + seg.payload.len() as i64;
            if end <= cursor {
                continue; // duplicate or retransmission of bytes we have
            }
            if seg.position > cursor {
                warnings.push(CaptureWarning::StreamGap {
                    src: self.src,
                    dst: self.dst,
                    offset: (cursor - start) as u64,
                    missing: (seg.position - cursor) as u64,
                });
                gap = true;
                break;
            }
            let skip = (cursor - seg.position) as usize;
            bytes.extend_from_slice(seg.payload.get(skip..).unwrap_or_default());
            latest = latest.max(seg.timestamp);
            arrivals.push((bytes.len(), latest));
            cursor = end;
        }

        let mut pos = 0usize;
        if self.syn.is_none() {
            // Mid-connection capture: the first bytes may be the tail of a message.
            let first = first_header(&bytes);
            if first > 0 {
                warnings.push(CaptureWarning::SkippedLeadingBytes {
                    src: self.src,
                    dst: self.dst,
                    skipped: first as u64,
                });
            }
            pos = first;
        }
        loop {
            let rest = bytes.get(pos..).unwrap_or_default();
            match next_message_len(rest, MAX_EXTENDED_MESSAGE_LEN) {
                Ok(Some(len)) => {
                    let end = pos + len;
                    let idx = arrivals.partition_point(|&(e, _)| e < end);
                    let timestamp = arrivals.get(idx).map_or(latest, |&(_, t)| t);
                    messages.push(CapturedMessage {
                        src: self.src,
                        dst: self.dst,
                        timestamp,
                        bytes: rest[..len].to_vec(),
                    });
                    pos = end;
                }
                Ok(None) => {
                    if !rest.is_empty() && !gap {
                        warnings.push(CaptureWarning::IncompleteMessage {
                            src: self.src,
                            dst: self.dst,
                            offset: pos as u64,
                            pending: rest.len(),
                        });
                    }
                    break;
                }
                Err(error) => {
                    warnings.push(CaptureWarning::Framing {
                        src: self.src,
                        dst: self.dst,
                        offset: pos as u64,
                        error,
                    });
                    break;
                }
            }
        }
    }
}

/// Offset of the first plausible BGP header (16 x 0xff, then a length whose
/// high byte is not 0xff, so a longer run of 0xff is skipped to its end), or
/// the buffer length when there is none.
fn first_header(bytes: &[u8]) -> usize {
    if bytes.len() < HEADER_LEN {
        return if bytes.iter().all(|&b| b == 0xff) {
            0
        } else {
            bytes.len()
        };
    }
    (0..=bytes.len() - HEADER_LEN)
        .find(|&i| {
            bytes[i..i + 16].iter().all(|&b| b == 0xff)
                && bytes[i + 16] != 0xff
                && usize::from(u16::from_be_bytes([bytes[i + 16], bytes[i + 17]])) >= HEADER_LEN
        })
        .unwrap_or(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const CLIENT4: [u8; 4] = [10, 0, 0, 1];
    const SERVER4: [u8; 4] = [10, 0, 0, 2];
    const CLIENT6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const SERVER6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const CLIENT_PORT: u16 = 40000;

    const LINKTYPE_ETHERNET: u32 = 1;
    const LINKTYPE_RAW: u32 = 101;
    const LINKTYPE_SLL: u32 = 113;
    const LINKTYPE_SLL2: u32 = 276;

    /// A BGP message of `ty` with a `body_len`-byte body whose bytes count up
    /// from `seed`, so different messages differ.
    fn bgp(ty: u8, body_len: usize, seed: u8) -> Vec<u8> {
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&((19 + body_len) as u16).to_be_bytes());
        m.push(ty);
        m.extend((0..body_len).map(|i| seed.wrapping_add(i as u8)));
        m
    }

    /// One TCP segment of the test connection (client 40000 -> server 179 by default).
    #[derive(Clone)]
    struct Seg {
        v6: bool,
        from_server: bool,
        seq: u32,
        syn: bool,
        payload: Vec<u8>,
        ts: Duration,
    }

    fn seg(seq: u32, payload: &[u8], ts_ms: u64) -> Seg {
        Seg {
            v6: false,
            from_server: false,
            seq,
            syn: false,
            payload: payload.to_vec(),
            ts: Duration::from_millis(1_700_000_000_000 + ts_ms),
        }
    }

    fn syn(seq: u32, ts_ms: u64) -> Seg {
        Seg {
            syn: true,
            ..seg(seq, &[], ts_ms)
        }
    }

    fn client() -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::from(CLIENT4)), CLIENT_PORT)
    }

    fn server() -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::from(SERVER4)), BGP_PORT)
    }

    /// IP + TCP bytes of a segment (etherparse builds and checksums them).
    fn ip_packet(s: &Seg) -> Vec<u8> {
        let (sport, dport) = if s.from_server {
            (BGP_PORT, CLIENT_PORT)
        } else {
            (CLIENT_PORT, BGP_PORT)
        };
        let builder = if s.v6 {
            let (a, b) = if s.from_server {
                (SERVER6, CLIENT6)
            } else {
                (CLIENT6, SERVER6)
            };
            PacketBuilder::ipv6(a, b, 64).tcp(sport, dport, s.seq, 64000)
        } else {
            let (a, b) = if s.from_server {
                (SERVER4, CLIENT4)
            } else {
                (CLIENT4, SERVER4)
            };
            PacketBuilder::ipv4(a, b, 64).tcp(sport, dport, s.seq, 64000)
        };
        let builder = if s.syn { builder.syn() } else { builder.ack(1) };
        let mut out = Vec::with_capacity(builder.size(s.payload.len()));
        builder.write(&mut out, &s.payload).expect("build packet");
        out
    }

    fn ether_type(s: &Seg) -> [u8; 2] {
        if s.v6 {
            [0x86, 0xdd]
        } else {
            [0x08, 0x00]
        }
    }

    /// The segment framed for `linktype`.
    fn frame(linktype: u32, s: &Seg) -> Vec<u8> {
        let ip = ip_packet(s);
        let mut f = Vec::new();
        match linktype {
            LINKTYPE_ETHERNET => {
                f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
                f.extend_from_slice(&ether_type(s));
            }
            LINKTYPE_SLL => {
                // packet type, ARPHRD_ETHER, address length, address (8), protocol
                f.extend_from_slice(&[0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
                f.extend_from_slice(&ether_type(s));
            }
            LINKTYPE_SLL2 => {
                // protocol, reserved, ifindex, ARPHRD_ETHER, packet type, address length, address (8)
                f.extend_from_slice(&ether_type(s));
                f.extend_from_slice(&[0, 0, 0, 0, 0, 3, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
            }
            LINKTYPE_RAW => {}
            other => panic!("test frame for link type {other}"),
        }
        f.extend_from_slice(&ip);
        f
    }

    /// Classic pcap bytes; `snap` cuts every record to that many bytes.
    fn legacy_pcap(big_endian: bool, nanos: bool, linktype: u32, segs: &[Seg], snap: Option<usize>) -> Vec<u8> {
        let mut out = Vec::new();
        let w32 = |out: &mut Vec<u8>, v: u32| {
            out.extend_from_slice(&if big_endian { v.to_be_bytes() } else { v.to_le_bytes() })
        };
        let w16 = |out: &mut Vec<u8>, v: u16| {
            out.extend_from_slice(&if big_endian { v.to_be_bytes() } else { v.to_le_bytes() })
        };
        w32(&mut out, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
        w16(&mut out, 2);
        w16(&mut out, 4);
        w32(&mut out, 0);
        w32(&mut out, 0);
        w32(&mut out, 65535);
        w32(&mut out, linktype);
        for s in segs {
            let f = frame(linktype, s);
            let cap = snap.map_or(f.len(), |n| n.min(f.len()));
            w32(&mut out, s.ts.as_secs() as u32);
            w32(
                &mut out,
                if nanos {
                    s.ts.subsec_nanos()
                } else {
                    s.ts.subsec_micros()
                },
            );
            w32(&mut out, cap as u32);
            w32(&mut out, f.len() as u32);
            out.extend_from_slice(&f[..cap]);
        }
        out
    }

    /// pcapng bytes: one section, one interface with nanosecond timestamps.
    fn pcapng(big_endian: bool, linktype: u32, segs: &[Seg]) -> Vec<u8> {
        let w32 = |out: &mut Vec<u8>, v: u32| {
            out.extend_from_slice(&if big_endian { v.to_be_bytes() } else { v.to_le_bytes() })
        };
        let w16 = |out: &mut Vec<u8>, v: u16| {
            out.extend_from_slice(&if big_endian { v.to_be_bytes() } else { v.to_le_bytes() })
        };
        let mut out = Vec::new();
        // Section Header Block
        w32(&mut out, 0x0a0d_0d0a);
        w32(&mut out, 28);
        w32(&mut out, 0x1a2b_3c4d);
        w16(&mut out, 1);
        w16(&mut out, 0);
        w32(&mut out, 0xffff_ffff);
        w32(&mut out, 0xffff_ffff);
        w32(&mut out, 28);
        // Interface Description Block with if_tsresol = 9 (nanoseconds)
        w32(&mut out, 1);
        w32(&mut out, 32);
        w16(&mut out, linktype as u16);
        w16(&mut out, 0);
        w32(&mut out, 0);
        w16(&mut out, 9);
        w16(&mut out, 1);
        out.extend_from_slice(&[9, 0, 0, 0]);
        w32(&mut out, 0);
        w32(&mut out, 32);
        // Enhanced Packet Blocks
        for s in segs {
            let f = frame(linktype, s);
            let padded = f.len().div_ceil(4) * 4;
            let ticks = s.ts.as_nanos() as u64;
            w32(&mut out, 6);
            w32(&mut out, (32 + padded) as u32);
            w32(&mut out, 0);
            w32(&mut out, (ticks >> 32) as u32);
            w32(&mut out, ticks as u32);
            w32(&mut out, f.len() as u32);
            w32(&mut out, f.len() as u32);
            out.extend_from_slice(&f);
            out.resize(out.len() + padded - f.len(), 0);
            w32(&mut out, (32 + padded) as u32);
        }
        out
    }

    fn read(segs: &[Seg]) -> BgpCapture {
        read_capture(&legacy_pcap(false, false, LINKTYPE_ETHERNET, segs, None)).expect("readable capture")
    }

    fn bytes_of(c: &BgpCapture) -> Vec<Vec<u8>> {
        c.messages.iter().map(|m| m.bytes.clone()).collect()
    }

    #[test]
    fn message_split_across_two_segments() {
        let open = bgp(1, 40, 0x10);
        let c = read(&[syn(1000, 0), seg(1001, &open[..10], 5), seg(1011, &open[10..], 7)]);
        assert_eq!(c.warnings, vec![]);
        assert_eq!(bytes_of(&c), vec![open]);
        let m = &c.messages[0];
        assert_eq!((m.src, m.dst), (client(), server()));
        // Complete only once the second segment was there.
        assert_eq!(m.timestamp, Duration::from_millis(1_700_000_000_007));
        assert_eq!(m.message_type(), Some(1));
    }

    #[test]
    fn two_messages_in_one_segment() {
        let ka = bgp(4, 0, 0);
        let upd = bgp(2, 30, 0x40);
        let both = [ka.clone(), upd.clone()].concat();
        let c = read(&[syn(5, 0), seg(6, &both, 1)]);
        assert_eq!(c.warnings, vec![]);
        assert_eq!(bytes_of(&c), vec![ka, upd]);
    }

    #[test]
    fn message_header_split_inside_the_marker() {
        let upd = bgp(2, 25, 1);
        let ka = bgp(4, 0, 0);
        let stream = [upd.clone(), ka.clone()].concat();
        // Second segment starts 3 bytes into the KEEPALIVE's marker.
        let cut = upd.len() + 3;
        let c = read(&[
            syn(0, 0),
            seg(1, &stream[..cut], 1),
            seg(1 + cut as u32, &stream[cut..], 2),
        ]);
        assert_eq!(c.warnings, vec![]);
        assert_eq!(bytes_of(&c), vec![upd, ka]);
    }

    #[test]
    fn out_of_order_segment_is_put_back_in_place() {
        let m1 = bgp(1, 20, 1);
        let m2 = bgp(2, 30, 2);
        let m3 = bgp(2, 10, 3);
        let p2 = 101 + m1.len() as u32;
        let p3 = p2 + m2.len() as u32;
        // Captured order: m1, m3, m2.
        let c = read(&[syn(100, 0), seg(101, &m1, 1), seg(p3, &m3, 2), seg(p2, &m2, 3)]);
        assert_eq!(c.warnings, vec![]);
        assert_eq!(bytes_of(&c), vec![m1, m2, m3]);
        // m3 became readable only when m2 arrived.
        let t: Vec<_> = c.messages.iter().map(|m| m.timestamp.as_millis() % 1000).collect();
        assert_eq!(t, vec![1, 3, 3]);
    }

    #[test]
    fn retransmitted_and_overlapping_bytes_are_dropped() {
        let m1 = bgp(2, 20, 1);
        let m2 = bgp(2, 20, 2);
        let p2 = 1 + m1.len() as u32;
        // Retransmission of m1, a resent piece inside m1, then a segment
        // that resends m1's tail with m2, then m2 again.
        let overlap = [&m1[30..], &m2[..]].concat();
        let c = read(&[
            syn(0, 0),
            seg(1, &m1, 1),
            seg(1, &m1, 2),
            seg(5, &m1[4..10], 3),
            seg(31, &overlap, 4),
            seg(p2, &m2, 5),
        ]);
        assert_eq!(c.warnings, vec![]);
        assert_eq!(bytes_of(&c), vec![m1, m2]);
    }

    #[test]
    fn sequence_numbers_wrap_around() {
        let m1 = bgp(2, 40, 1);
        let m2 = bgp(4, 0, 0);
        let isn = u32::MAX - 20;
        let p2 = isn.wrapping_add(1 + m1.len() as u32);
        let c = read(&[syn(isn, 0), seg(isn + 1, &m1, 1), seg(p2, &m2, 2)]);
        assert_eq!(c.warnings, vec![]);
        assert_eq!(bytes_of(&c), vec![m1, m2]);
    }

    #[test]
    fn both_directions_and_ipv6_are_separate_streams() {
        let open_c = bgp(1, 10, 1);
        let open_s = bgp(1, 12, 2);
        let ka = bgp(4, 0, 0);
        let mut segs = vec![
            syn(10, 0),
            Seg {
                from_server: true,
                ..syn(500, 1)
            },
            seg(11, &open_c, 2),
            Seg {
                from_server: true,
                ..seg(501, &open_s, 3)
            },
            seg(11 + open_c.len() as u32, &ka, 4),
        ];
        let v6: Vec<Seg> = segs
            .iter()
            .map(|s| Seg {
                v6: true,
                ts: s.ts + Duration::from_secs(1),
                ..s.clone()
            })
            .collect();
        segs.extend(v6);
        let c = read(&segs);
        assert_eq!(c.warnings, vec![]);
        assert_eq!(c.messages.len(), 6);
        assert_eq!(bytes_of(&c)[..3], [open_c.clone(), open_s.clone(), ka.clone()]);
        let s6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::from(SERVER6)), 179);
        let c6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::from(CLIENT6)), CLIENT_PORT);
        assert_eq!((c.messages[1].src, c.messages[1].dst), (server(), client()));
        assert_eq!((c.messages[4].src, c.messages[4].dst), (s6, c6));
        assert_eq!(c.messages[4].bytes, open_s);
    }

    #[test]
    fn new_connection_on_same_ports_is_a_new_stream() {
        let m1 = bgp(1, 10, 1);
        let partial = &bgp(2, 50, 2)[..30];
        let m2 = bgp(1, 10, 3);
        // First connection dies mid-message; the reconnect reuses the ports.
        let c = read(&[
            syn(100, 0),
            seg(101, &m1, 1),
            seg(101 + m1.len() as u32, partial, 2),
            syn(9000, 3),
            seg(9001, &m2, 4),
        ]);
        assert_eq!(bytes_of(&c), vec![m1, m2]);
        assert_eq!(
            c.warnings,
            vec![CaptureWarning::IncompleteMessage {
                src: client(),
                dst: server(),
                offset: 29,
                pending: 30,
            }]
        );
    }

    #[test]
    fn every_file_format_and_link_type_gives_the_same_messages() {
        let open = bgp(1, 40, 0x10);
        let ka = bgp(4, 0, 0);
        let segs = vec![
            syn(77, 0),
            seg(78, &open[..25], 1),
            seg(78 + 25, &[&open[25..], &ka[..]].concat(), 2),
            Seg { v6: true, ..syn(1, 3) },
            Seg {
                v6: true,
                ..seg(2, &ka, 4)
            },
        ];
        let reference = read(&segs);
        assert_eq!(reference.messages.len(), 3);
        assert_eq!(reference.warnings, vec![]);
        for linktype in [LINKTYPE_ETHERNET, LINKTYPE_SLL, LINKTYPE_SLL2, LINKTYPE_RAW] {
            let mut files = Vec::new();
            for be in [false, true] {
                for nanos in [false, true] {
                    files.push((
                        format!("pcap be={be} ns={nanos}"),
                        legacy_pcap(be, nanos, linktype, &segs, None),
                    ));
                }
                files.push((format!("pcapng be={be}"), pcapng(be, linktype, &segs)));
            }
            for (what, file) in files {
                let got = read_capture(&file).unwrap_or_else(|e| panic!("{what} link {linktype}: {e}"));
                assert_eq!(got, reference, "{what} link type {linktype}");
            }
        }
    }

    #[test]
    fn nanosecond_timestamps_are_kept() {
        let ka = bgp(4, 0, 0);
        let mut s = seg(1, &ka, 0);
        s.ts = Duration::new(1_700_000_000, 123_456_789);
        let segs = [Seg { ts: s.ts, ..syn(0, 0) }, s];
        let ns = bgp_messages(&legacy_pcap(false, true, LINKTYPE_ETHERNET, &segs, None)).unwrap();
        assert_eq!(ns[0].timestamp, Duration::new(1_700_000_000, 123_456_789));
        let ng = bgp_messages(&pcapng(false, LINKTYPE_ETHERNET, &segs)).unwrap();
        assert_eq!(ng[0].timestamp, Duration::new(1_700_000_000, 123_456_789));
        let us = bgp_messages(&legacy_pcap(true, false, LINKTYPE_ETHERNET, &segs, None)).unwrap();
        assert_eq!(us[0].timestamp, Duration::new(1_700_000_000, 123_456_000));
    }

    #[test]
    fn capture_started_mid_stream_resynchronises() {
        let m1 = bgp(2, 30, 1);
        let m2 = bgp(2, 20, 0xff);
        let m3 = bgp(4, 0, 0);
        // No SYN; the first captured bytes are the last 12 of m1.
        let data = [&m1[m1.len() - 12..], &m2[..], &m3[..]].concat();
        let c = read(&[seg(5000, &data, 0)]);
        assert_eq!(bytes_of(&c), vec![m2, m3]);
        assert_eq!(
            c.warnings,
            vec![CaptureWarning::SkippedLeadingBytes {
                src: client(),
                dst: server(),
                skipped: 12
            }]
        );
    }

    #[test]
    fn stream_ending_mid_message_keeps_complete_ones() {
        let m1 = bgp(1, 20, 1);
        let m2 = bgp(2, 60, 2);
        let data = [&m1[..], &m2[..33]].concat();
        let c = read(&[syn(0, 0), seg(1, &data, 1)]);
        assert_eq!(bytes_of(&c), vec![m1.clone()]);
        assert_eq!(
            c.warnings,
            vec![CaptureWarning::IncompleteMessage {
                src: client(),
                dst: server(),
                offset: m1.len() as u64,
                pending: 33,
            }]
        );
    }

    #[test]
    fn bad_marker_is_reported_with_its_offset() {
        let m1 = bgp(4, 0, 0);
        let mut bad = bgp(2, 10, 1);
        bad[3] = 0;
        let data = [&m1[..], &bad[..], &m1[..]].concat();
        let c = read(&[syn(0, 0), seg(1, &data, 1)]);
        assert_eq!(bytes_of(&c), vec![m1]);
        assert_eq!(
            c.warnings,
            vec![CaptureWarning::Framing {
                src: client(),
                dst: server(),
                offset: 19,
                error: FrameError::BadMarker,
            }]
        );
    }

    #[test]
    fn missing_segment_is_a_gap() {
        let m1 = bgp(2, 10, 1);
        let m2 = bgp(2, 10, 2);
        let m3 = bgp(2, 10, 3);
        let p3 = 1 + (m1.len() + m2.len()) as u32;
        let c = read(&[syn(0, 0), seg(1, &m1, 1), seg(p3, &m3, 2)]);
        assert_eq!(bytes_of(&c), vec![m1.clone()]);
        assert_eq!(
            c.warnings,
            vec![CaptureWarning::StreamGap {
                src: client(),
                dst: server(),
                offset: m1.len() as u64,
                missing: m2.len() as u64,
            }]
        );
    }

    #[test]
    fn snapped_packets_are_reported() {
        let m1 = bgp(2, 100, 1);
        let file = legacy_pcap(false, false, LINKTYPE_ETHERNET, &[syn(0, 0), seg(1, &m1, 1)], Some(96));
        let c = read_capture(&file).unwrap();
        assert!(c.messages.is_empty());
        assert!(
            matches!(
                c.warnings[..],
                [CaptureWarning::SnappedPacket {
                    packet: 1,
                    captured: 96,
                    ..
                }]
            ),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn non_bgp_traffic_is_ignored() {
        let ka = bgp(4, 0, 0);
        let mut http = Vec::new();
        PacketBuilder::ipv4(CLIENT4, SERVER4, 64)
            .tcp(40000, 80, 1, 100)
            .ack(1)
            .write(&mut http, &ka)
            .unwrap();
        let mut udp = Vec::new();
        PacketBuilder::ipv6(CLIENT6, SERVER6, 64)
            .udp(179, 179)
            .write(&mut udp, &ka)
            .unwrap();
        let mut file = legacy_pcap(false, false, LINKTYPE_RAW, &[], None);
        for data in [http, udp] {
            file.extend_from_slice(&0u32.to_le_bytes());
            file.extend_from_slice(&0u32.to_le_bytes());
            file.extend_from_slice(&(data.len() as u32).to_le_bytes());
            file.extend_from_slice(&(data.len() as u32).to_le_bytes());
            file.extend_from_slice(&data);
        }
        let c = read_capture(&file).unwrap();
        assert_eq!(c, BgpCapture::default());
    }

    #[test]
    fn unreadable_files_are_typed_errors() {
        assert_eq!(bgp_messages(&[]), Err(PcapError::TruncatedHeader));
        assert_eq!(bgp_messages(&[0xd4, 0xc3]), Err(PcapError::TruncatedHeader));
        assert_eq!(
            bgp_messages(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Err(PcapError::UnknownFormat)
        );
        let mut usb = legacy_pcap(false, false, LINKTYPE_ETHERNET, &[], None);
        usb[20..24].copy_from_slice(&189u32.to_le_bytes());
        assert_eq!(bgp_messages(&usb), Err(PcapError::UnsupportedLinkType(189)));
    }

    /// A little-endian pcapng block: type, length, body (padded), length.
    fn ng_block(block_type: u32, body: &[u8]) -> Vec<u8> {
        let padded = body.len().div_ceil(4) * 4;
        let len = (12 + padded) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(&block_type.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(body);
        b.resize(8 + padded, 0);
        b.extend_from_slice(&len.to_le_bytes());
        b
    }

    #[test]
    fn pcapng_simple_packets_and_interface_problems() {
        let ka = bgp(4, 0, 0);
        let segs = [syn(0, 0), seg(1, &ka, 1)];
        let mut file = Vec::new();
        let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
        shb.extend_from_slice(&[1, 0, 0, 0]);
        shb.extend_from_slice(&[0xff; 8]);
        file.extend(ng_block(0x0a0d_0d0a, &shb));
        // Interface 0: Ethernet, snaplen 0 (unlimited); interface 1: USB (189).
        file.extend(ng_block(1, &[1, 0, 0, 0, 0, 0, 0, 0]));
        file.extend(ng_block(1, &[189, 0, 0, 0, 0, 0, 0, 0]));
        for s in &segs {
            // Simple Packet Blocks: original length, then the (padded) frame.
            let f = frame(LINKTYPE_ETHERNET, s);
            let mut body = (f.len() as u32).to_le_bytes().to_vec();
            body.extend_from_slice(&f);
            file.extend(ng_block(3, &body));
        }
        // An Enhanced Packet Block on undefined interface 7, one on the USB one.
        for if_id in [7u32, 1] {
            let mut body = if_id.to_le_bytes().to_vec();
            body.extend_from_slice(&[0; 8]);
            body.extend_from_slice(&4u32.to_le_bytes());
            body.extend_from_slice(&4u32.to_le_bytes());
            body.extend_from_slice(&[1, 2, 3, 4]);
            file.extend(ng_block(6, &body));
        }
        let c = read_capture(&file).unwrap();
        assert_eq!(bytes_of(&c), vec![ka]);
        assert_eq!(c.messages[0].timestamp, Duration::ZERO);
        assert_eq!(
            c.warnings,
            vec![
                CaptureWarning::UnsupportedLinkType {
                    interface: 1,
                    linktype: 189
                },
                CaptureWarning::UnknownInterface {
                    packet: 2,
                    interface: 7
                },
            ]
        );
    }

    /// A small deterministic generator, so the fuzz-style tests need no crate.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn sample_files() -> Vec<Vec<u8>> {
        let open = bgp(1, 40, 0x10);
        let upd = bgp(2, 70, 0x30);
        let segs = vec![
            syn(1, 0),
            seg(2, &open[..30], 1),
            seg(32, &[&open[30..], &upd[..]].concat(), 2),
            Seg {
                from_server: true,
                ..syn(9, 3)
            },
            Seg {
                from_server: true,
                ..seg(10, &upd, 4)
            },
        ];
        vec![
            legacy_pcap(false, false, LINKTYPE_ETHERNET, &segs, None),
            legacy_pcap(true, true, LINKTYPE_SLL2, &segs, None),
            pcapng(false, LINKTYPE_SLL, &segs),
            pcapng(true, LINKTYPE_RAW, &segs),
        ]
    }

    /// A file cut anywhere reads without panicking, and what it yields is a
    /// subset of the full file's messages.
    #[test]
    fn truncated_files_never_panic() {
        for file in sample_files() {
            let full = bgp_messages(&file).unwrap();
            assert_eq!(full.len(), 3);
            for cut in 0..file.len() {
                match read_capture(&file[..cut]) {
                    Ok(c) => {
                        for m in &c.messages {
                            assert!(full.contains(m), "cut at {cut}: invented {m:?}");
                        }
                    }
                    Err(e) => assert!(
                        matches!(e, PcapError::TruncatedHeader | PcapError::UnknownFormat),
                        "cut at {cut}: {e}"
                    ),
                }
            }
        }
    }

    /// Random byte flips and random garbage never panic.
    #[test]
    fn corrupted_files_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for file in sample_files() {
            for _ in 0..3000 {
                let mut f = file.clone();
                for _ in 0..(rng.next() % 8 + 1) {
                    let i = (rng.next() as usize) % f.len();
                    f[i] = rng.next() as u8;
                }
                let _ = read_capture(&f);
            }
        }
        for _ in 0..3000 {
            let len = (rng.next() % 300) as usize;
            let mut f: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            // Give half of them a valid magic so the record parsers run too.
            if rng.next() & 1 == 0 && f.len() >= 24 {
                f[..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
                f[20..24].copy_from_slice(&1u32.to_le_bytes());
            }
            let _ = read_capture(&f);
        }
    }

    #[test]
    fn first_header_skips_long_runs_of_ones() {
        let ka = bgp(4, 0, 0);
        let data = [&[0x00, 0xff, 0xff][..], &ka[..]].concat();
        assert_eq!(first_header(&data), 3);
        assert_eq!(first_header(&[1, 2, 3]), 3);
        assert_eq!(first_header(&[0xff; 5]), 0);
        assert_eq!(first_header(&ka), 0);
    }
}
