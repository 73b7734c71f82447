//! Codec throughput: a packed UPDATE (500 IPv4 /26 prefixes sharing one
//! attribute set) and a realistic mixed stream. Throughput is in prefixes.
//!
//! Run: `cargo bench -p bgp-proto --bench codec`

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp_proto::attributes::{AsPath, AttrValue, Community, LargeCommunity, MpNextHop, Origin, PathAttribute};
use bgp_proto::framing::next_message_len;
use bgp_proto::update::{pack_announcements, pack_withdrawals};
use bgp_proto::{decode, Context, Family, Message, Nlri};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};

fn v4_blocks(n: u32, base: u32) -> Vec<Nlri> {
    (0..n)
        .map(|i| {
            Nlri::new(IpNetwork::V4(
                Ipv4Network::new(Ipv4Addr::from(base + (i << 6)), 26).unwrap(),
            ))
        })
        .collect()
}

fn v6_blocks(n: u32) -> Vec<Nlri> {
    (0..n)
        .map(|i| {
            let addr = Ipv6Addr::from(0xfd00_0000_0000_0000_0000_0000_0000_0000u128 | ((i as u128) << 64));
            Nlri::new(IpNetwork::V6(Ipv6Network::new(addr, 64).unwrap()))
        })
        .collect()
}

fn attrs(asn: u32, lp: u32) -> Vec<PathAttribute> {
    vec![
        PathAttribute::new(AttrValue::Origin(Origin::Igp)),
        PathAttribute::new(AttrValue::AsPath(AsPath::sequence(vec![asn, 65010]))),
        PathAttribute::new(AttrValue::Med(0)),
        PathAttribute::new(AttrValue::LocalPref(lp)),
        PathAttribute::new(AttrValue::Communities(vec![Community::new(65000, 100)])),
        PathAttribute::new(AttrValue::LargeCommunities(vec![LargeCommunity {
            global: 65000,
            local1: 1,
            local2: 2,
        }])),
    ]
}

/// A stream like a reflector sends after a session comes up: many attribute
/// sets with a few blocks each, IPv6 routes, withdrawals, End-of-RIB.
fn mixed_stream(ctx: &Context) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut prefixes = 0;
    for host in 0..200u32 {
        let nlri = v4_blocks(3, 0x0af4_0000 + host * 3 * 64);
        let nh = MpNextHop::V4(Ipv4Addr::new(192, 168, (host >> 8) as u8, host as u8));
        pack_announcements(
            ctx,
            Family::IPV4_UNICAST,
            nh,
            &attrs(64512, 100 + host % 3),
            &nlri,
            &mut out,
        )
        .unwrap();
        prefixes += nlri.len();
    }
    let v6 = v6_blocks(300);
    let nh6 = MpNextHop::V6 {
        global: "fd00::1".parse().unwrap(),
        link_local: Some("fe80::1".parse().unwrap()),
    };
    pack_announcements(ctx, Family::IPV6_UNICAST, nh6, &attrs(64512, 100), &v6, &mut out).unwrap();
    prefixes += v6.len();
    let gone = v4_blocks(100, 0x0af4_0000);
    pack_withdrawals(ctx, Family::IPV4_UNICAST, &gone, &mut out).unwrap();
    prefixes += gone.len();
    for fam in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
        Message::Update(bgp_proto::update::Update::end_of_rib(fam))
            .encode(ctx, &mut out)
            .unwrap();
    }
    (out, prefixes)
}

fn decode_stream(ctx: &Context, mut buf: &[u8]) -> usize {
    let mut n = 0;
    while let Ok(Some(len)) = next_message_len(buf, ctx.max_message_len) {
        let d = decode(&buf[..len], ctx).unwrap();
        if let Message::Update(u) = &d.message {
            n += u.nlri.len() + u.withdrawn.len();
            n += u.mp_reach().map_or(0, |m| m.nlri.len());
        }
        buf = &buf[len..];
    }
    n
}

fn bench(c: &mut Criterion) {
    let ctx = Context::default();
    let packed_prefixes = v4_blocks(500, 0x0af4_0000);
    let packed_attrs = attrs(64512, 100);
    let nh = MpNextHop::V4(Ipv4Addr::new(192, 168, 1, 12));
    let mut packed = Vec::new();
    let msgs = pack_announcements(
        &ctx,
        Family::IPV4_UNICAST,
        nh,
        &packed_attrs,
        &packed_prefixes,
        &mut packed,
    )
    .unwrap();
    assert_eq!(msgs, 1, "500 /26 fit one 4096-octet UPDATE");

    let mut g = c.benchmark_group("packed_update_500_ipv4");
    g.throughput(Throughput::Elements(500));
    g.bench_function("decode", |b| {
        b.iter(|| {
            let d = decode(black_box(&packed), &ctx).unwrap();
            match d.message {
                Message::Update(u) => assert_eq!(u.nlri.len(), 500),
                _ => unreachable!(),
            }
        })
    });
    let mut out = Vec::with_capacity(8192);
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            pack_announcements(
                &ctx,
                Family::IPV4_UNICAST,
                nh,
                black_box(&packed_attrs),
                black_box(&packed_prefixes),
                &mut out,
            )
            .unwrap();
            black_box(out.len())
        })
    });
    g.finish();

    let (stream, prefixes) = mixed_stream(&ctx);
    let mut g = c.benchmark_group("mixed_stream");
    g.throughput(Throughput::Elements(prefixes as u64));
    g.bench_function("decode", |b| {
        b.iter(|| assert_eq!(decode_stream(&ctx, black_box(&stream)), prefixes))
    });
    g.bench_function("encode", |b| b.iter(|| black_box(mixed_stream(&ctx).0.len())));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
