//! Sessions coming up and going down, routes to the kernel and to peers.

use bgp_proto::attributes::{AsPath, AttrValue, Origin, PathAttribute};
use bgp_proto::notification::cease;
use bgp_proto::Message;

use tern_testkit::inproc::*;

#[test]
fn a_configured_peer_comes_up_and_is_sent_our_block_then_end_of_rib() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut peer = node.connect("127.0.0.2", ASN).expect("session");
    node.wait_state("h2", "Established");
    let seen = read_until(&mut peer, "our block and End-of-RIB", |s| s.end_of_rib);
    assert_eq!(seen.announced, vec![OWN_BLOCK.to_string()]);
    let block = seen.updates.iter().find(|u| !u.nlri.is_empty()).expect("announcement");
    assert_eq!(
        block.next_hop(),
        Some("127.0.0.1".parse().unwrap()),
        "next hop self: our address on the session"
    );
}

#[test]
fn a_learned_block_reaches_the_kernel_and_leaves_it_when_withdrawn() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut peer = node.connect("127.0.0.2", ASN).expect("session");
    peer.announce(&[net("10.244.2.0/26")], "192.168.1.12".parse().unwrap(), vec![])
        .expect("announce");
    node.wait_until("the block is in the kernel", || {
        node.kernel_gateways("10.244.2.0/26") == Some(vec!["192.168.1.12".parse().unwrap()])
    });
    peer.send_message(&Message::Update(bgp_proto::update::Update {
        withdrawn: vec![bgp_proto::Nlri::new(net("10.244.2.0/26"))],
        ..Default::default()
    }))
    .expect("withdraw");
    node.wait_until("the block left the kernel", || {
        node.kernel_gateways("10.244.2.0/26").is_none()
    });
    assert!(node.routes().iter().all(|r| r.prefix != "10.244.2.0/26"));
}

#[test]
fn our_own_block_is_blackholed_in_the_kernel() {
    let node = Node::start("");
    node.wait_until("the blackhole is installed", || {
        node.kernel_routes()
            .iter()
            .any(|r| r.prefix == net(OWN_BLOCK) && r.kind == fib_sync::RouteKind::Blackhole)
    });
}

#[test]
fn a_session_that_ends_takes_its_routes_out_of_the_rib_and_the_kernel() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut peer = node.connect("127.0.0.2", ASN).expect("session");
    peer.announce(&[net("10.244.2.0/26")], "192.168.1.12".parse().unwrap(), vec![])
        .expect("announce");
    node.wait_until("installed", || node.kernel_gateways("10.244.2.0/26").is_some());
    drop(peer);
    node.wait_until("the peer's route is gone", || {
        node.kernel_gateways("10.244.2.0/26").is_none()
    });
    node.wait_until("h2 left Established", || node.peer("h2").state != "Established");
    assert!(node.routes().iter().all(|r| r.prefix != "10.244.2.0/26"));
}

#[test]
fn a_connection_from_an_unknown_address_is_refused() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let refused = node.connect("127.0.0.9", ASN);
    assert!(refused.is_err(), "no session for an unconfigured address");
    assert_eq!(node.peers().len(), 1);
}

#[test]
fn a_route_outside_allowed_prefixes_stays_out_of_the_kernel() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut peer = node.connect("127.0.0.2", ASN).expect("session");
    peer.announce(
        &[net("10.99.0.0/26"), net("10.244.2.0/26")],
        "192.168.1.12".parse().unwrap(),
        vec![],
    )
    .expect("announce");
    node.wait_until("the allowed block is installed", || {
        node.kernel_gateways("10.244.2.0/26").is_some()
    });
    assert!(node.kernel_gateways("10.99.0.0/26").is_none());
}

#[test]
fn an_ibgp_route_is_not_passed_to_another_ibgp_peer() {
    let node = Node::start(&format!(
        "{}{}",
        ibgp_peer("h2", "127.0.0.2"),
        ibgp_peer("h3", "127.0.0.3")
    ));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    let mut h3 = node.connect("127.0.0.3", ASN).expect("h3");
    read_until(&mut h3, "h3's initial table", |s| s.end_of_rib);
    h2.announce(&[net("10.244.2.0/26")], "192.168.1.12".parse().unwrap(), vec![])
        .expect("announce");
    node.wait_until("installed", || node.kernel_gateways("10.244.2.0/26").is_some());
    // A marker after the route: h3 is sent our new block, and nothing of h2's.
    node.reload_with(&format!(
        "{}{}[[originate]]\nprefix = \"10.244.7.0/26\"\n",
        ibgp_peer("h2", "127.0.0.2"),
        ibgp_peer("h3", "127.0.0.3")
    ))
    .expect("reload");
    let seen = read_until(&mut h3, "the marker block", |s| {
        s.announced.contains(&"10.244.7.0/26".into())
    });
    assert!(
        !seen.announced.contains(&"10.244.2.0/26".to_string()),
        "split horizon (RFC 4271 §9.2)"
    );
}

#[test]
fn an_ebgp_peer_gets_our_as_prepended_and_no_local_pref() {
    let node = Node::start(&ebgp_peer("tor", "127.0.0.2", 65001));
    let mut tor = node.connect("127.0.0.2", 65001).expect("session");
    let seen = read_until(&mut tor, "our block", |s| s.end_of_rib);
    let u = seen.updates.iter().find(|u| !u.nlri.is_empty()).expect("announcement");
    let path = u.attributes.iter().find_map(|a| match &a.value {
        AttrValue::AsPath(p) => Some(p.clone()),
        _ => None,
    });
    assert_eq!(path, Some(AsPath::sequence(vec![ASN])));
    assert!(
        !u.attributes.iter().any(|a| matches!(a.value, AttrValue::LocalPref(_))),
        "RFC 4271 §5.1.5: no LOCAL_PREF to eBGP"
    );
}

#[test]
fn an_update_with_a_malformed_attribute_is_treated_as_withdraw_and_the_session_stays() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut peer = node.connect("127.0.0.2", ASN).expect("session");
    peer.announce(&[net("10.244.2.0/26")], "192.168.1.12".parse().unwrap(), vec![])
        .expect("announce");
    node.wait_until("installed", || node.kernel_gateways("10.244.2.0/26").is_some());
    // The same prefix again with a MED of the wrong length (RFC 7606 §7.4: treat-as-withdraw).
    let nlri = [bgp_proto::Nlri::new(net("10.244.2.0/26"))];
    let mut bytes = Vec::new();
    bgp_proto::update::pack_announcements(
        &peer.tx,
        bgp_proto::Family::IPV4_UNICAST,
        bgp_proto::attributes::MpNextHop::V4("192.168.1.12".parse().unwrap()),
        &[
            PathAttribute::new(AttrValue::Origin(Origin::Igp)),
            PathAttribute::new(AttrValue::AsPath(AsPath::sequence(vec![]))),
            PathAttribute::new(AttrValue::Med(5)),
        ],
        &nlri,
        &mut bytes,
    )
    .expect("encode");
    corrupt_med_length(&mut bytes);
    peer.send_raw(&bytes).expect("send");
    node.wait_until("the route was withdrawn", || {
        node.kernel_gateways("10.244.2.0/26").is_none()
    });
    assert_eq!(node.peer("h2").state, "Established");
    assert_eq!(node.peer("h2").malformed_updates, 1);
}

/// Makes the MED attribute (type 4) of an encoded UPDATE claim 3 octets of
/// value instead of 4, shortening the message by one octet.
fn corrupt_med_length(msg: &mut Vec<u8>) {
    let withdrawn_len = u16::from_be_bytes([msg[19], msg[20]]) as usize;
    let attrs_at = 21 + withdrawn_len + 2;
    let attrs_len = u16::from_be_bytes([msg[attrs_at - 2], msg[attrs_at - 1]]) as usize;
    let mut i = attrs_at;
    while i < attrs_at + attrs_len {
        let (flags, code) = (msg[i], msg[i + 1]);
        let (len, head) = if flags & 0x10 != 0 {
            (u16::from_be_bytes([msg[i + 2], msg[i + 3]]) as usize, 4)
        } else {
            (msg[i + 2] as usize, 3)
        };
        if code == 4 {
            msg[i + 2] = 3;
            msg.remove(i + head);
            let total = (msg.len() as u16).to_be_bytes();
            msg[16..18].copy_from_slice(&total);
            let new_attrs = ((attrs_len - 1) as u16).to_be_bytes();
            msg[attrs_at - 2..attrs_at].copy_from_slice(&new_attrs);
            return;
        }
        i += head + len;
    }
    panic!("no MED in the message");
}

#[test]
fn a_notification_from_the_peer_ends_the_session_and_is_shown() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut peer = node.connect("127.0.0.2", ASN).expect("session");
    node.wait_state("h2", "Established");
    peer.send_message(&Message::Notification(bgp_proto::notification::Notification {
        code: bgp_proto::error::code::CEASE,
        subcode: cease::ADMINISTRATIVE_SHUTDOWN,
        data: Vec::new(),
    }))
    .expect("notify");
    node.wait_until("h2 left Established", || node.peer("h2").state != "Established");
    let err = node.peer("h2").last_error.unwrap_or_default();
    assert!(
        err.contains("received NOTIFICATION 6/2"),
        "last error names the NOTIFICATION: {err}"
    );
}

#[test]
fn an_open_with_the_wrong_as_gets_bad_peer_as() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let err = node.connect("127.0.0.2", 65099).err().expect("refused");
    assert!(
        err.to_string().contains("NOTIFICATION 2/2"),
        "RFC 4271 §6.2 Bad Peer AS: {err}"
    );
}

#[test]
fn a_second_connection_while_established_gets_a_collision_cease_and_the_first_stays() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut first = node.connect("127.0.0.2", ASN).expect("session");
    node.wait_state("h2", "Established");
    let second = node.connect("127.0.0.2", ASN);
    let err = second.err().expect("the second is refused");
    assert!(
        err.to_string().contains("NOTIFICATION 6/7"),
        "RFC 4271 §6.8 collision: {err}"
    );
    // The first session still carries messages.
    let before = node.peer("h2").messages_in;
    first.keepalive().expect("first still writable");
    node.wait_until("the KEEPALIVE arrived on the first session", || {
        node.peer("h2").messages_in > before
    });
    assert_eq!(node.peer("h2").state, "Established");
}

/// Review finding 24 (GTSM, RFC 5082 §3): when every peer that may connect
/// uses GTSM, the listening socket itself drops a SYN that arrives with a
/// lower TTL, so no handshake completes; once a peer without GTSM is
/// configured, the check is left to each accepted connection.
#[test]
fn finding_24_gtsm_applies_to_the_handshake_when_every_peer_uses_it() {
    use std::time::Duration;
    use tern_testkit::testpeer::{ConnectOptions, TestPeer};
    let gtsm_peer = format!("{}ttl_security = true\n", ibgp_peer("h2", "127.0.0.2"));
    let node = Node::start(&gtsm_peer);
    let with_ttl = |ttl: u8| ConnectOptions {
        local: Some("127.0.0.2".parse().unwrap()),
        ttl: Some(ttl),
        ..ConnectOptions::default()
    };
    let router_id = "127.0.0.2".parse().unwrap();
    // A SYN from farther away than one hop is never answered (a SYN-ACK on
    // loopback takes microseconds; half a second only bounds the wait).
    let far = TestPeer::connect_with(
        node.bgp_addr(),
        ASN,
        router_id,
        Duration::from_millis(500),
        &with_ttl(64),
    );
    assert_eq!(far.err().map(|e| e.kind()), Some(std::io::ErrorKind::TimedOut));
    let mut near = TestPeer::connect_with(node.bgp_addr(), ASN, router_id, PATIENCE, &with_ttl(255)).expect("TTL 255");
    node.wait_state("h2", "Established");
    near.keepalive().expect("keepalive");
    // A peer without GTSM joins: the listener accepts any TTL again.
    node.reload_with(&format!("{gtsm_peer}{}", ibgp_peer("h3", "127.0.0.3")))
        .expect("reload");
    let plain = TestPeer::connect_with(
        node.bgp_addr(),
        ASN,
        "127.0.0.3".parse().unwrap(),
        PATIENCE,
        &ConnectOptions {
            local: Some("127.0.0.3".parse().unwrap()),
            ttl: Some(64),
            ..ConnectOptions::default()
        },
    );
    assert!(plain.is_ok(), "{:?}", plain.err());
}

/// Issue 15: the NOTIFICATION that ended a session stays visible while
/// connect retries fail with other errors, and SINCE stays when it went down
/// (to the second here; `session::status` tests it exactly).
#[test]
fn a_down_peer_keeps_its_since_and_the_notification_that_ended_it() {
    // Not passive: ternd keeps trying to connect to 127.0.0.2:179, where nothing listens.
    let node = Node::start(&format!(
        "[[peer]]\nname = \"h2\"\naddress = \"127.0.0.2\"\nasn = {ASN}\n"
    ));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    node.wait_state("h2", "Established");
    let cease = bgp_proto::notification::Notification::new(6, cease::ADMINISTRATIVE_SHUTDOWN);
    h2.send_message(&Message::Notification(cease)).expect("NOTIFICATION");
    drop(h2);
    node.wait_until("the session is down", || node.peer("h2").state != "Established");
    let down = node.peer("h2");
    node.wait_until("a failed connect retry", || {
        node.peer("h2").last_error.is_some_and(|e| e.starts_with("connect"))
    });
    let later = node.peer("h2");
    assert_eq!(later.since_unix, down.since_unix, "SINCE is when it went down");
    let notification = later.last_notification.expect("kept");
    assert!(notification.contains("received NOTIFICATION 6/2"), "{notification}");
}
