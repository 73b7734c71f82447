//! Link, IP and TCP headers (parsed by `etherparse`): which captured frames
//! are TCP segments to or from the BGP port.

use std::net::{IpAddr, SocketAddr};

use etherparse::err::packet::SliceError;
use etherparse::{EtherType, NetSlice, SlicedPacket, TransportSlice};
use pcap_parser::data::{get_packetdata_linux_sll2, get_packetdata_null, PacketData};
use pcap_parser::Linktype;

use crate::file::RawPacket;
use crate::{CaptureWarning, BGP_PORT};

/// The BGP segment in a captured frame; `None` for other traffic and for
/// frames that cannot be used (why is pushed to `warnings`).
pub(crate) fn bgp_segment<'a>(raw: &RawPacket<'a>, warnings: &mut Vec<CaptureWarning>) -> Option<TcpSegment<'a>> {
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
            return None;
        }
        None => {
            warnings.push(CaptureWarning::MalformedLinkHeader { packet });
            return None;
        }
    };
    let segment = match classify(&sliced) {
        Sliced::Bgp(s) => s,
        Sliced::NotBgp => return None,
        Sliced::Fragment => {
            warnings.push(CaptureWarning::Fragment { packet });
            return None;
        }
    };
    if snapped {
        warnings.push(snapped_warning);
        return None;
    }
    Some(segment)
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
pub(crate) struct TcpSegment<'a> {
    pub(crate) src: SocketAddr,
    pub(crate) dst: SocketAddr,
    pub(crate) seq: u32,
    pub(crate) syn: bool,
    pub(crate) payload: &'a [u8],
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
