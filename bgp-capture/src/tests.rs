//! Unit tests of the whole reader on captures built in memory (every format
//! and link type, reordering, gaps, truncation, corruption).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use bgp_proto::framing::FrameError;
use etherparse::PacketBuilder;

use crate::reassembly::first_header;
use crate::*;

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
    let w32 =
        |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&if big_endian { v.to_be_bytes() } else { v.to_le_bytes() });
    let w16 =
        |out: &mut Vec<u8>, v: u16| out.extend_from_slice(&if big_endian { v.to_be_bytes() } else { v.to_le_bytes() });
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
    let w32 =
        |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&if big_endian { v.to_be_bytes() } else { v.to_le_bytes() });
    let w16 =
        |out: &mut Vec<u8>, v: u16| out.extend_from_slice(&if big_endian { v.to_be_bytes() } else { v.to_le_bytes() });
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
