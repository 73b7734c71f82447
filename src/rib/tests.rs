use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering as AtomicOrdering;
use std::sync::Arc;

use bgp_proto::update::Update;
use bgp_proto::{Context, Family, Message, Nlri};
use bytes::Bytes;
use ipnetwork::IpNetwork;
use tokio::sync::mpsc;

use super::*;
use crate::messages::{
    Gateways, KernelOp, NextHopMode, OutFlow, PeerGracefulRestart, PeerId, PeerInfo, PeerOut, Retention, RouteSource,
};
use crate::route::policy::Chain;
use bgp_proto::attributes::AsPath;
use bgp_proto::framing::next_message_len;

pub(super) const ASN: u32 = 64512;

pub(super) fn rib() -> Rib {
    Rib::new(RibConfig {
        local_asn: ASN,
        router_id: "192.168.1.11".parse().unwrap(),
        cluster_id: None,
        allowed_prefixes: vec!["10.244.0.0/16".parse().unwrap()],
        kernel: true,
        stale_routes_time: std::time::Duration::from_secs(360),
        enforce_first_as: true,
        deferral: None,
    })
}

pub(super) fn peer(id: u32, addr: &str, asn: u32, capacity: usize) -> (PeerInfo, PeerOut, mpsc::Receiver<Bytes>) {
    let (tx, rx) = mpsc::channel(capacity);
    let info = PeerInfo {
        id: PeerId(id),
        name: format!("peer{id}"),
        address: addr.parse().unwrap(),
        local_address: "192.168.1.11".parse().unwrap(),
        asn,
        local_asn: ASN,
        router_id: addr.parse().unwrap_or(Ipv4Addr::new(10, 0, 0, id as u8)),
        rr_client: false,
        next_hop: NextHopMode::Auto,
        tx: Context::default(),
        rx_four_octet_as: true,
        families: [Family::IPV4_UNICAST].into_iter().collect(),
        allowas_in: 0,
        ipv4_via_ipv6: false,
        import: Chain::AcceptAll,
        export: Chain::AcceptAll,
        max_prefixes: None,
        graceful_restart: None,
    };
    let out = PeerOut {
        queue: tx,
        flow: Arc::new(OutFlow::default()),
        signals: mpsc::unbounded_channel().0,
    };
    (info, out, rx)
}

pub(super) fn up(rib: &mut Rib, id: u32, addr: &str, asn: u32) -> mpsc::Receiver<Bytes> {
    let (info, out, rx) = peer(id, addr, asn, 64);
    rib.handle(RibMsg::PeerUp(info, out));
    rx
}

/// A peer that announced graceful restart with forwarding state kept for IPv4 (RFC 4724 §3).
pub(super) fn up_gr(rib: &mut Rib, id: u32, addr: &str) -> mpsc::Receiver<Bytes> {
    up_with_gr(rib, id, addr, true, false)
}

pub(super) fn up_with_gr(
    rib: &mut Rib,
    id: u32,
    addr: &str,
    forwarding: bool,
    restarting: bool,
) -> mpsc::Receiver<Bytes> {
    let (mut info, out, rx) = peer(id, addr, ASN, 64);
    let v4: bgp_proto::FamilySet = [Family::IPV4_UNICAST].into_iter().collect();
    info.graceful_restart = Some(PeerGracefulRestart {
        forwarding: if forwarding { v4.clone() } else { Default::default() },
        restarting,
        long_lived: false,
    });
    rib.handle(RibMsg::PeerUp(info, out));
    rx
}

pub(super) fn down_graceful(rib: &mut Rib, id: u32) {
    rib.handle(RibMsg::PeerDownGraceful {
        peer: PeerId(id),
        retention: Retention::restart(
            [Family::IPV4_UNICAST].into_iter().collect(),
            std::time::Duration::from_secs(120),
        ),
    });
}

pub(super) fn learned(next_hop: &str, as_path: Vec<u32>) -> RouteAttrs {
    let mut a = RouteAttrs::local(vec![], vec![]);
    a.next_hop = Some(next_hop.parse().unwrap());
    a.as_path = AsPath::sequence(as_path);
    a
}

pub(super) fn nlri(p: &str) -> Vec<Nlri> {
    vec![Nlri::new(p.parse().unwrap())]
}

pub(super) fn announce(rib: &mut Rib, peer: u32, prefix: &str, attrs: RouteAttrs) {
    rib.handle(RibMsg::Announce {
        peer: PeerId(peer),
        family: Family::IPV4_UNICAST,
        attrs,
        nlri: nlri(prefix),
    });
}

/// Every UPDATE a peer has been sent so far.
pub(super) fn received(rx: &mut mpsc::Receiver<Bytes>) -> Vec<Update> {
    received_with(rx, &Context::default())
}

/// Every UPDATE a peer has been sent so far, decoded with its context.
pub(super) fn received_with(rx: &mut mpsc::Receiver<Bytes>, ctx: &Context) -> Vec<Update> {
    let mut out = Vec::new();
    while let Ok(chunk) = rx.try_recv() {
        out.extend(decode_updates(&chunk, ctx));
    }
    out
}

/// The UPDATEs in one chunk of a peer's queue.
pub(super) fn received_from_chunk(chunk: &[u8]) -> Vec<Update> {
    decode_updates(chunk, &Context::default())
}

fn decode_updates(mut buf: &[u8], ctx: &Context) -> Vec<Update> {
    let mut out = Vec::new();
    while let Ok(Some(n)) = next_message_len(buf, 65535) {
        match bgp_proto::decode(&buf[..n], ctx).unwrap().message {
            Message::Update(u) => out.push(u),
            other => panic!("unexpected {other:?}"),
        }
        buf = &buf[n..];
    }
    out
}

/// What the kernel holds after the RIB's owed ops, as fib-sync keeps it: a
/// `Via` equal to what is held changes nothing there (it is dropped).
#[derive(Default)]
pub(super) struct KernelModel(std::collections::BTreeMap<IpNetwork, KernelOp>);

impl KernelModel {
    /// Takes the RIB's kernel ops; returns those that change a route.
    pub(super) fn apply(&mut self, rib: &mut Rib) -> Vec<KernelOp> {
        let mut changes = Vec::new();
        for op in rib.take_kernel_ops() {
            let (KernelOp::Via(p, _) | KernelOp::Blackhole(p) | KernelOp::Remove(p)) = op;
            let changed = match op {
                KernelOp::Remove(_) => self.0.remove(&p).is_some(),
                _ => self.0.insert(p, op.clone()).as_ref() != Some(&op),
            };
            if changed {
                changes.push(op);
            }
        }
        changes
    }
}

pub(super) fn originate(rib: &mut Rib, prefixes: &[&str]) {
    rib.handle(RibMsg::Originate(
        prefixes
            .iter()
            .map(|p| Originated {
                prefix: p.parse().unwrap(),
                blackhole: true,
                communities: vec![],
                large_communities: vec![],
            })
            .collect(),
    ));
}

#[test]
fn originated_block_is_blackholed_and_announced_with_next_hop_self() {
    let mut rib = rib();
    originate(&mut rib, &["10.244.1.0/26"]);
    let mut rx = up(&mut rib, 1, "192.168.1.12", ASN);
    rib.flush();
    assert_eq!(
        rib.take_kernel_ops(),
        vec![KernelOp::Blackhole("10.244.1.0/26".parse().unwrap())]
    );
    let updates = received(&mut rx);
    assert_eq!(updates.len(), 2, "the block, then End-of-RIB");
    let u = &updates[0];
    assert_eq!(u.nlri, nlri("10.244.1.0/26"));
    assert_eq!(u.next_hop(), Some("192.168.1.11".parse().unwrap()));
    assert_eq!(u.as_path().unwrap().to_string(), "");
    assert_eq!(updates[1].as_end_of_rib(), Some(Family::IPV4_UNICAST));
}

#[test]
fn learned_block_goes_to_kernel_but_not_to_other_ibgp_peers() {
    let mut rib = rib();
    let _rx1 = up(&mut rib, 1, "192.168.1.12", ASN);
    let mut rx2 = up(&mut rib, 2, "192.168.1.13", ASN);
    rib.flush();
    received(&mut rx2);
    announce(&mut rib, 1, "10.244.2.0/26", learned("192.168.1.12", vec![]));
    rib.flush();
    assert_eq!(
        rib.take_kernel_ops(),
        vec![KernelOp::Via(
            "10.244.2.0/26".parse().unwrap(),
            Gateways::from_elem("192.168.1.12".parse().unwrap(), 1)
        )]
    );
    assert!(received(&mut rx2).is_empty(), "iBGP split horizon");
    rib.handle(RibMsg::PeerDown(PeerId(1)));
    rib.flush();
    assert_eq!(
        rib.take_kernel_ops(),
        vec![KernelOp::Remove("10.244.2.0/26".parse().unwrap())]
    );
}

#[test]
fn nothing_outside_allowed_prefixes_reaches_the_kernel() {
    let mut rib = rib();
    let _rx = up(&mut rib, 1, "192.168.1.1", 65001);
    announce(&mut rib, 1, "0.0.0.0/0", learned("192.168.1.1", vec![65001]));
    announce(&mut rib, 1, "10.0.0.0/8", learned("192.168.1.1", vec![65001]));
    rib.flush();
    assert!(rib.take_kernel_ops().is_empty());
}

#[test]
fn decision_prefers_local_pref_then_path_length_and_multipaths_ties() {
    let mut rib = rib();
    let _a = up(&mut rib, 1, "192.168.1.12", ASN);
    let _b = up(&mut rib, 2, "192.168.1.13", ASN);
    let _c = up(&mut rib, 3, "192.168.1.14", ASN);
    let p = "10.244.9.0/26";
    announce(&mut rib, 1, p, learned("192.168.1.12", vec![65001]));
    announce(&mut rib, 2, p, learned("192.168.1.13", vec![65001]));
    let mut longer = learned("192.168.1.14", vec![65001, 65002]);
    longer.local_pref = Some(100);
    announce(&mut rib, 3, p, longer);
    rib.flush();
    let gw = |s: &[&str]| s.iter().map(|a| a.parse().unwrap()).collect::<Gateways>();
    assert_eq!(
        rib.take_kernel_ops(),
        vec![KernelOp::Via(p.parse().unwrap(), gw(&["192.168.1.12", "192.168.1.13"]))]
    );
    let mut preferred = learned("192.168.1.14", vec![65001, 65002]);
    preferred.local_pref = Some(200);
    announce(&mut rib, 3, p, preferred);
    rib.flush();
    assert_eq!(
        rib.take_kernel_ops(),
        vec![KernelOp::Via(p.parse().unwrap(), gw(&["192.168.1.14"]))]
    );
    let routes = rib.routes(Some(p.parse().unwrap()));
    assert_eq!(
        routes
            .iter()
            .filter(|r| r.best)
            .map(|r| r.source.clone())
            .collect::<Vec<_>>(),
        vec![RouteSource::Peer(PeerId(3))]
    );
}

#[test]
fn med_compared_only_within_the_same_neighbour_as() {
    let mut rib = rib();
    let _a = up(&mut rib, 1, "192.168.1.12", 65001);
    let _b = up(&mut rib, 2, "192.168.1.13", 65001);
    let p = "10.244.9.0/26";
    let mut high = learned("192.168.1.12", vec![65001]);
    high.med = Some(50);
    let mut low = learned("192.168.1.13", vec![65001]);
    low.med = Some(10);
    announce(&mut rib, 1, p, high);
    announce(&mut rib, 2, p, low);
    rib.flush();
    assert_eq!(
        rib.take_kernel_ops(),
        vec![KernelOp::Via(
            p.parse().unwrap(),
            Gateways::from_elem("192.168.1.13".parse().unwrap(), 1)
        )]
    );
}

#[test]
fn ebgp_export_prepends_and_sets_next_hop_self() {
    let mut rib = rib();
    originate(&mut rib, &["10.244.1.0/26"]);
    let _ibgp = up(&mut rib, 1, "192.168.1.12", ASN);
    let mut tor = up(&mut rib, 2, "192.168.1.1", 65001);
    announce(&mut rib, 1, "10.244.2.0/26", learned("192.168.1.12", vec![]));
    rib.flush();
    let updates = received(&mut tor);
    let mut got: Vec<(String, String, Option<Ipv4Addr>, bool)> = updates
        .iter()
        .flat_map(|u| {
            u.nlri.iter().map(move |n| {
                (
                    n.prefix.to_string(),
                    u.as_path().unwrap().to_string(),
                    u.next_hop(),
                    u.attribute(bgp_proto::attributes::type_code::LOCAL_PREF).is_some(),
                )
            })
        })
        .collect();
    got.sort();
    let me = Some("192.168.1.11".parse().unwrap());
    assert_eq!(
        got,
        vec![
            ("10.244.1.0/26".into(), "64512".into(), me, false),
            ("10.244.2.0/26".into(), "64512".into(), me, false)
        ]
    );
}

#[test]
fn ebgp_route_with_our_as_is_a_loop() {
    let mut rib = rib();
    let _tor = up(&mut rib, 1, "192.168.1.1", 65001);
    announce(&mut rib, 1, "10.244.3.0/26", learned("192.168.1.1", vec![65001, ASN]));
    rib.flush();
    assert!(rib.take_kernel_ops().is_empty());
    let s = rib.summary();
    assert_eq!(s.prefixes, 0);
}

#[test]
fn reflector_reflects_client_routes_with_originator_and_cluster_list() {
    let mut rib = rib();
    rib.cfg.cluster_id = Some("1.1.1.1".parse().unwrap());
    let (mut c1, o1, _r1) = peer(1, "192.168.1.12", ASN, 64);
    c1.rr_client = true;
    let (mut c2, o2, mut r2) = peer(2, "192.168.1.13", ASN, 64);
    c2.rr_client = true;
    rib.handle(RibMsg::PeerUp(c1, o1));
    rib.handle(RibMsg::PeerUp(c2, o2));
    announce(&mut rib, 1, "10.244.2.0/26", learned("192.168.1.12", vec![]));
    rib.flush();
    let u: Vec<Update> = received(&mut r2).into_iter().filter(|u| !u.nlri.is_empty()).collect();
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].next_hop(), Some("192.168.1.12".parse().unwrap()), "next hop kept");
    let attrs = RouteAttrs::from_update(&u[0], Family::IPV4_UNICAST, true);
    assert_eq!(attrs.originator_id, Some("192.168.1.12".parse().unwrap()));
    assert_eq!(attrs.cluster_list, vec!["1.1.1.1".parse::<Ipv4Addr>().unwrap()]);
    // The route coming back with our cluster id is a loop.
    let mut back = attrs.clone();
    back.next_hop = Some("192.168.1.13".parse().unwrap());
    announce(&mut rib, 2, "10.244.5.0/26", back);
    rib.flush();
    let r = rib.routes(Some("10.244.5.0/26".parse().unwrap()));
    assert!(r.is_empty());
}

#[test]
fn slow_peer_backlog_is_bounded_and_coalesced() {
    let mut rib = rib();
    let (info, out, mut rx) = peer(1, "192.168.1.12", ASN, 1);
    let flow = out.flow.clone();
    rib.handle(RibMsg::PeerUp(info, out));
    let _src = up(&mut rib, 2, "192.168.1.1", 65001);
    for i in 0..50u32 {
        let mut a = learned("192.168.1.1", vec![65001]);
        a.med = Some(i);
        announce(&mut rib, 2, &format!("10.244.{i}.0/26"), a);
        rib.flush();
    }
    assert!(
        flow.want_writable.load(AtomicOrdering::Acquire),
        "queue full: writer asked to report room"
    );
    // The same prefixes change again while the peer is stuck: they coalesce.
    for i in 0..50u32 {
        rib.handle(RibMsg::Withdraw {
            peer: PeerId(2),
            family: Family::IPV4_UNICAST,
            nlri: nlri(&format!("10.244.{i}.0/26")),
        });
    }
    rib.flush();
    let queued = rib.peers[&PeerId(1)].queued.count;
    assert!(queued <= 50, "one queued entry per prefix, got {queued}");
    // Drain: the peer ends up with nothing announced.
    let mut all = Vec::new();
    for _ in 0..200 {
        all.extend(received(&mut rx));
        rib.handle(RibMsg::Writable(PeerId(1)));
    }
    all.extend(received(&mut rx));
    let mut state: HashMap<IpNetwork, bool> = HashMap::new();
    for u in &all {
        for n in &u.withdrawn {
            state.insert(n.prefix, false);
        }
        for n in &u.nlri {
            state.insert(n.prefix, true);
        }
    }
    assert!(
        state.values().all(|up| !up),
        "every announced prefix was withdrawn in the end"
    );
    assert_eq!(rib.peers[&PeerId(1)].advertised.count, 0);
}

#[test]
fn graceful_restart_keeps_stale_routes_until_end_of_rib() {
    let mut rib = rib();
    let _a = up(&mut rib, 1, "192.168.1.12", ASN);
    announce(&mut rib, 1, "10.244.2.0/26", learned("192.168.1.12", vec![]));
    announce(&mut rib, 1, "10.244.3.0/26", learned("192.168.1.12", vec![]));
    rib.flush();
    let mut kernel = KernelModel::default();
    assert_eq!(kernel.apply(&mut rib).len(), 2);
    rib.handle(RibMsg::PeerDownGraceful {
        peer: PeerId(1),
        retention: Retention::restart(
            [Family::IPV4_UNICAST].into_iter().collect(),
            std::time::Duration::from_secs(120),
        ),
    });
    rib.flush();
    assert!(kernel.apply(&mut rib).is_empty(), "stale routes keep forwarding");
    // The peer comes back and re-announces one block, then End-of-RIB.
    let _a = up_gr(&mut rib, 1, "192.168.1.12");
    announce(&mut rib, 1, "10.244.2.0/26", learned("192.168.1.12", vec![]));
    rib.flush();
    assert!(kernel.apply(&mut rib).is_empty(), "same forwarding, nothing to change");
    rib.handle(RibMsg::EndOfRib(PeerId(1), Family::IPV4_UNICAST));
    rib.flush();
    assert_eq!(
        kernel.apply(&mut rib),
        vec![KernelOp::Remove("10.244.3.0/26".parse().unwrap())]
    );
    assert!(rib.stale_peers.is_empty());
}

#[test]
fn graceful_restart_stale_routes_expire() {
    let mut rib = rib();
    let _a = up(&mut rib, 1, "192.168.1.12", ASN);
    announce(&mut rib, 1, "10.244.2.0/26", learned("192.168.1.12", vec![]));
    rib.flush();
    rib.take_kernel_ops();
    rib.handle(RibMsg::PeerDownGraceful {
        peer: PeerId(1),
        retention: Retention::restart(
            [Family::IPV4_UNICAST].into_iter().collect(),
            std::time::Duration::from_secs(120),
        ),
    });
    rib.flush();
    let deadline = rib.next_deadline().expect("a stale set is pending");
    rib.expire(deadline - std::time::Duration::from_secs(1));
    rib.flush();
    assert!(rib.take_kernel_ops().is_empty(), "not yet");
    rib.expire(deadline);
    rib.flush();
    assert_eq!(
        rib.take_kernel_ops(),
        vec![KernelOp::Remove("10.244.2.0/26".parse().unwrap())]
    );
}

#[test]
fn ipv4_blocks_go_over_ipv6_sessions_only_with_rfc8950() {
    let mut rib = rib();
    originate(&mut rib, &["10.244.1.0/26"]);
    let (mut plain, out, mut rx_plain) = peer(1, "fd00::12", ASN, 64);
    plain.local_address = "fd00::11".parse().unwrap();
    rib.handle(RibMsg::PeerUp(plain, out));
    let (mut ext, out, mut rx_ext) = peer(2, "fd00::13", ASN, 64);
    ext.local_address = "fd00::11".parse().unwrap();
    ext.ipv4_via_ipv6 = true;
    rib.handle(RibMsg::PeerUp(ext, out));
    rib.flush();
    assert!(
        received(&mut rx_plain).iter().all(|u| u.as_end_of_rib().is_some()),
        "no IPv6 next hop without RFC 8950"
    );
    let got: Vec<Update> = received(&mut rx_ext)
        .into_iter()
        .filter(|u| u.as_end_of_rib().is_none())
        .collect();
    assert_eq!(got.len(), 1);
    let mp = got[0].mp_reach().expect("IPv4 NLRI in MP_REACH_NLRI");
    assert_eq!(mp.family, Family::IPV4_UNICAST);
    assert_eq!(mp.next_hop.addr(), "fd00::11".parse::<IpAddr>().unwrap());
    assert_eq!(mp.nlri, nlri("10.244.1.0/26"));
}

#[test]
fn peers_with_the_same_context_share_one_encoding() {
    let mut rib = rib();
    let mut r1 = up(&mut rib, 1, "192.168.1.12", 65001);
    let mut r2 = up(&mut rib, 2, "192.168.1.13", 65002);
    rib.flush();
    received(&mut r1);
    received(&mut r2);
    originate(&mut rib, &["10.244.1.0/26", "10.244.1.64/26"]);
    rib.flush();
    let a = r1.try_recv().unwrap();
    let b = r2.try_recv().unwrap();
    assert_eq!(a.as_ptr(), b.as_ptr(), "one encoding, shared");
}

#[test]
fn graceful_restart_timer_stops_when_the_peer_is_back() {
    let mut rib = rib();
    let _a = up_gr(&mut rib, 1, "192.168.1.12");
    announce(&mut rib, 1, "10.244.2.0/26", learned("192.168.1.12", vec![]));
    rib.flush();
    rib.take_kernel_ops();
    down_graceful(&mut rib, 1);
    let restart_deadline = rib.next_deadline().expect("restart timer");
    let _a = up_gr(&mut rib, 1, "192.168.1.12");
    rib.flush();
    // RFC 4724 §4.2: the restart time bounds re-establishment only.
    rib.expire(restart_deadline + std::time::Duration::from_secs(1));
    rib.flush();
    assert!(rib.take_kernel_ops().is_empty(), "stale routes wait for End-of-RIB");
    let stale_deadline = rib.next_deadline().expect("stale_routes_time");
    assert!(stale_deadline >= restart_deadline + std::time::Duration::from_secs(200));
    rib.expire(stale_deadline);
    rib.flush();
    assert_eq!(
        rib.take_kernel_ops(),
        vec![KernelOp::Remove("10.244.2.0/26".parse().unwrap())],
        "stale_routes_time bounds the wait for End-of-RIB"
    );
}

#[test]
fn graceful_restart_families_without_the_f_bit_lose_their_stale_paths_at_once() {
    let mut rib = rib();
    let _a = up_gr(&mut rib, 1, "192.168.1.12");
    announce(&mut rib, 1, "10.244.2.0/26", learned("192.168.1.12", vec![]));
    rib.flush();
    rib.take_kernel_ops();
    down_graceful(&mut rib, 1);
    let _a = up_with_gr(&mut rib, 1, "192.168.1.12", false, false);
    rib.flush();
    assert_eq!(
        rib.take_kernel_ops(),
        vec![KernelOp::Remove("10.244.2.0/26".parse().unwrap())]
    );
    assert!(rib.stale_peers.is_empty());
}

#[test]
fn graceful_restart_peer_back_without_the_capability_loses_its_stale_paths_at_once() {
    let mut rib = rib();
    let _a = up_gr(&mut rib, 1, "192.168.1.12");
    announce(&mut rib, 1, "10.244.2.0/26", learned("192.168.1.12", vec![]));
    rib.flush();
    rib.take_kernel_ops();
    down_graceful(&mut rib, 1);
    let _a = up(&mut rib, 1, "192.168.1.12", ASN);
    rib.flush();
    assert_eq!(
        rib.take_kernel_ops(),
        vec![KernelOp::Remove("10.244.2.0/26".parse().unwrap())]
    );
}

#[test]
fn graceful_restart_consecutive_restarts_do_not_pile_up_stale_paths() {
    let mut rib = rib();
    let _a = up_gr(&mut rib, 1, "192.168.1.12");
    for i in 0..10 {
        announce(
            &mut rib,
            1,
            &format!("10.244.{i}.0/26"),
            learned("192.168.1.12", vec![]),
        );
    }
    rib.flush();
    for _ in 0..5 {
        down_graceful(&mut rib, 1);
        let _a = up_gr(&mut rib, 1, "192.168.1.12");
        // The table again, but the session drops before End-of-RIB.
        for i in 0..10 {
            announce(
                &mut rib,
                1,
                &format!("10.244.{i}.0/26"),
                learned("192.168.1.12", vec![]),
            );
        }
        rib.flush();
    }
    down_graceful(&mut rib, 1);
    rib.flush();
    let s = rib.summary();
    assert_eq!(s.paths, 10, "one stale path per prefix, not one per restart");
    assert_eq!(rib.stale_peers.len(), 1);
}

fn restarted_rib(wait_for: &[&str]) -> Rib {
    Rib::new(RibConfig {
        deferral: Some(Deferral {
            wait_for: wait_for.iter().map(|a| a.parse().unwrap()).collect(),
            time: std::time::Duration::from_secs(360),
        }),
        ..rib().cfg
    })
}

#[test]
fn a_restarted_rib_defers_its_table_until_every_awaited_peer_sent_end_of_rib() {
    let mut rib = restarted_rib(&["192.168.1.12", "192.168.1.13"]);
    originate(&mut rib, &["10.244.1.0/26"]);
    let mut rx1 = up_gr(&mut rib, 1, "192.168.1.12");
    announce(&mut rib, 1, "10.244.2.0/26", learned("192.168.1.12", vec![]));
    rib.handle(RibMsg::EndOfRib(PeerId(1), Family::IPV4_UNICAST));
    rib.flush();
    assert!(
        received(&mut rx1).is_empty(),
        "RFC 4724 §4.1: nothing, not even End-of-RIB, yet"
    );
    let mut rx2 = up_gr(&mut rib, 2, "192.168.1.13");
    announce(&mut rib, 2, "10.244.3.0/26", learned("192.168.1.13", vec![]));
    rib.flush();
    assert!(received(&mut rx1).is_empty() && received(&mut rx2).is_empty());
    assert!(rib.deferring());
    rib.handle(RibMsg::EndOfRib(PeerId(2), Family::IPV4_UNICAST));
    rib.flush();
    assert!(!rib.deferring());
    let to1 = received(&mut rx1);
    let announced: Vec<String> = to1
        .iter()
        .flat_map(|u| u.nlri.iter().map(|n| n.prefix.to_string()))
        .collect();
    assert_eq!(announced, vec!["10.244.1.0/26".to_string()]);
    assert!(
        to1.last().is_some_and(|u| u.as_end_of_rib().is_some()),
        "then End-of-RIB"
    );
    assert!(received(&mut rx2).iter().any(|u| u.as_end_of_rib().is_some()));
}

#[test]
fn the_selection_deferral_timer_bounds_the_wait() {
    let mut rib = restarted_rib(&["192.168.1.12", "192.168.1.13"]);
    originate(&mut rib, &["10.244.1.0/26"]);
    let mut rx1 = up_gr(&mut rib, 1, "192.168.1.12");
    rib.handle(RibMsg::EndOfRib(PeerId(1), Family::IPV4_UNICAST));
    rib.flush();
    assert!(received(&mut rx1).is_empty());
    let deadline = rib.next_deadline().expect("deferral timer");
    rib.expire(deadline - std::time::Duration::from_secs(1));
    rib.flush();
    assert!(received(&mut rx1).is_empty(), "not yet");
    rib.expire(deadline);
    rib.flush();
    assert!(received(&mut rx1).iter().any(|u| u.as_end_of_rib().is_some()));
}

#[test]
fn a_peer_that_restarted_too_is_not_held_back_by_our_deferral() {
    let mut rib = restarted_rib(&["192.168.1.12", "192.168.1.13"]);
    originate(&mut rib, &["10.244.1.0/26"]);
    // RFC 4724 §4.2: with the R bit from the peer we must not wait for its End-of-RIB.
    let mut rx1 = up_with_gr(&mut rib, 1, "192.168.1.12", true, true);
    rib.flush();
    assert!(received(&mut rx1).iter().any(|u| u.as_end_of_rib().is_some()));
}

#[test]
fn a_peer_back_without_graceful_restart_is_not_waited_for() {
    let mut rib = restarted_rib(&["192.168.1.12"]);
    originate(&mut rib, &["10.244.1.0/26"]);
    let mut rx1 = up(&mut rib, 1, "192.168.1.12", ASN);
    rib.flush();
    assert!(!rib.deferring());
    assert!(received(&mut rx1).iter().any(|u| u.as_end_of_rib().is_some()));
}

fn v4() -> bgp_proto::FamilySet {
    [Family::IPV4_UNICAST].into_iter().collect()
}

/// Peer `id` goes down with GR (120 s) and LLGR (3600 s) for IPv4.
fn down_long_lived(rib: &mut Rib, id: u32) {
    rib.handle(RibMsg::PeerDownGraceful {
        peer: PeerId(id),
        retention: Retention {
            families: v4(),
            restart_time: std::time::Duration::from_secs(120),
            long_lived: v4(),
            long_lived_time: std::time::Duration::from_secs(3600),
        },
    });
}

fn is_llgr_stale(rib: &Rib, prefix: &str) -> bool {
    rib.routes(Some(prefix.parse().unwrap()))
        .iter()
        .any(|r| r.attrs.communities.contains(&crate::route::LLGR_STALE))
}

#[test]
fn long_lived_graceful_restart_keeps_routes_as_llgr_stale_until_the_long_lived_time() {
    let mut rib = rib();
    let _a = up_gr(&mut rib, 1, "192.168.1.12");
    announce(&mut rib, 1, "10.244.2.0/26", learned("192.168.1.12", vec![]));
    rib.flush();
    let mut kernel = KernelModel::default();
    kernel.apply(&mut rib);
    down_long_lived(&mut rib, 1);
    let restart_over = rib.next_deadline().expect("restart time");
    rib.expire(restart_over);
    rib.flush();
    assert!(
        kernel.apply(&mut rib).is_empty(),
        "RFC 9494: kept past the restart time"
    );
    assert!(is_llgr_stale(&rib, "10.244.2.0/26"), "marked LLGR_STALE (65535:6)");
    let long_lived_over = rib.next_deadline().expect("long-lived stale time");
    assert!(long_lived_over >= restart_over + std::time::Duration::from_secs(3600));
    rib.expire(long_lived_over);
    rib.flush();
    assert_eq!(
        kernel.apply(&mut rib),
        vec![KernelOp::Remove("10.244.2.0/26".parse().unwrap())]
    );
}

#[test]
fn no_llgr_routes_go_at_the_restart_time() {
    let mut rib = rib();
    let _a = up_gr(&mut rib, 1, "192.168.1.12");
    let mut no_llgr = learned("192.168.1.12", vec![]);
    no_llgr.communities.push(crate::route::NO_LLGR);
    announce(&mut rib, 1, "10.244.2.0/26", no_llgr);
    announce(&mut rib, 1, "10.244.3.0/26", learned("192.168.1.12", vec![]));
    rib.flush();
    let mut kernel = KernelModel::default();
    kernel.apply(&mut rib);
    down_long_lived(&mut rib, 1);
    rib.expire(rib.next_deadline().expect("restart time"));
    rib.flush();
    assert_eq!(
        kernel.apply(&mut rib),
        vec![KernelOp::Remove("10.244.2.0/26".parse().unwrap())],
        "RFC 9494 §4.5: NO_LLGR routes are not kept"
    );
    assert!(is_llgr_stale(&rib, "10.244.3.0/26"));
}

#[test]
fn an_llgr_stale_route_is_least_preferred_and_only_sent_to_llgr_peers() {
    let mut rib = rib();
    let _a = up_gr(&mut rib, 1, "192.168.1.12");
    announce(&mut rib, 1, "10.244.2.0/26", learned("192.168.1.12", vec![]));
    let mut plain = up(&mut rib, 3, "192.168.1.1", 65001);
    let (mut info, out, mut llgr_peer) = peer(4, "192.168.1.2", 65002, 64);
    info.graceful_restart = Some(PeerGracefulRestart {
        forwarding: v4(),
        restarting: false,
        long_lived: true,
    });
    rib.handle(RibMsg::PeerUp(info, out));
    rib.flush();
    received(&mut plain);
    received(&mut llgr_peer);
    down_long_lived(&mut rib, 1);
    rib.expire(rib.next_deadline().expect("restart time"));
    rib.flush();
    let to_plain = received(&mut plain);
    assert!(
        to_plain
            .iter()
            .any(|u| u.withdrawn.iter().any(|n| n.prefix.to_string() == "10.244.2.0/26")),
        "RFC 9494 §4.5: withdrawn from a peer without LLGR"
    );
    let to_llgr = received(&mut llgr_peer);
    let stale = to_llgr
        .iter()
        .find(|u| !u.nlri.is_empty())
        .expect("re-announced to the LLGR peer");
    assert!(stale.attributes.iter().any(|a| matches!(
        &a.value,
        bgp_proto::attributes::AttrValue::Communities(c) if c.contains(&crate::route::LLGR_STALE)
    )));
    // A live path, even a longer one, wins over the LLGR_STALE one.
    let _b = up(&mut rib, 5, "192.168.1.13", ASN);
    announce(
        &mut rib,
        5,
        "10.244.2.0/26",
        learned("192.168.1.13", vec![65010, 65011]),
    );
    rib.flush();
    let best: Vec<RouteSource> = rib
        .routes(Some("10.244.2.0/26".parse().unwrap()))
        .iter()
        .filter(|r| r.best)
        .map(|r| r.source.clone())
        .collect();
    assert_eq!(best, vec![RouteSource::Peer(PeerId(5))]);
}
