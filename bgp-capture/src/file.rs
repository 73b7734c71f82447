//! Capture file formats: classic pcap and pcapng (via `pcap-parser`), down to
//! one [`RawPacket`] per captured frame with its link type and timestamp.

use std::time::Duration;

use pcap_parser::pcapng::{Block, PcapNGSlice};
use pcap_parser::{
    parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified, parse_pcap_header, LegacyPcapBlock, Linktype,
    PcapBlockOwned,
};

use crate::{CaptureWarning, PcapError};

/// First four bytes of a pcapng file (Section Header Block type).
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// The frames of a pcap or pcapng file (the format is told by the magic number).
pub(crate) fn read_packets<'a>(
    input: &'a [u8],
    warnings: &mut Vec<CaptureWarning>,
) -> Result<Vec<RawPacket<'a>>, PcapError> {
    if input.starts_with(&PCAPNG_MAGIC) {
        read_pcapng(input, warnings)
    } else {
        read_legacy(input, warnings)
    }
}

/// One captured frame, still with its link-layer header.
pub(crate) struct RawPacket<'a> {
    /// Packet record number in the file (0-based), for warnings.
    pub(crate) number: usize,
    pub(crate) linktype: Linktype,
    pub(crate) timestamp: Duration,
    /// The captured bytes (possibly fewer than `original_len`).
    pub(crate) data: &'a [u8],
    /// The frame's length on the wire.
    pub(crate) original_len: u32,
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
