//! Golden vectors: every BGP message that BIRD 2 and GoBGP sent each other
//! in `tests/golden/*.pcap` (made by `tests/golden/capture.sh`) decodes
//! without any error and re-encodes byte-identically.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use bgp_proto::capability::Capability;
use bgp_proto::open::{receive_context, Open};
use bgp_proto::{decode, Context, Message, MessageType, Treatment};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn golden_captures_round_trip_byte_identically() {
    let mut files: Vec<_> = std::fs::read_dir(golden_dir())
        .expect("tests/golden exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no golden captures");
    let mut seen_types = [0usize; 6];
    let mut treated_updates = 0;
    let mut features: HashMap<&str, usize> = HashMap::new();
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let messages = bgp_capture::bgp_messages(&bytes).unwrap();
        assert!(!messages.is_empty(), "{}: no BGP messages", file.display());
        let mut opens: HashMap<(SocketAddr, SocketAddr), Open> = HashMap::new();
        for (i, m) in messages.iter().enumerate() {
            let what = format!("{} message #{i} ({} -> {})", file.display(), m.src, m.dst);
            // OPENs decode the same under any context; the rest need the pair's.
            let ctx = match (opens.get(&(m.src, m.dst)), opens.get(&(m.dst, m.src))) {
                (Some(s), Some(r)) => receive_context(s, r),
                _ => Context::default(),
            };
            let decoded = decode(&m.bytes, &ctx).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(decoded.treatment, Treatment::None, "{what}: {:?}", decoded.errors);
            let again = decoded.message.to_bytes(&ctx).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(again, m.bytes, "{what}: re-encoding differs");
            seen_types[decoded.message.message_type() as usize] += 1;
            for f in features_of(&decoded.message) {
                *features.entry(f).or_default() += 1;
            }
            match decoded.message {
                Message::Open(o) => {
                    opens.insert((m.src, m.dst), o);
                }
                Message::Update(u) if u.as_end_of_rib().is_none() => treated_updates += 1,
                _ => {}
            }
        }
    }
    for ty in [
        MessageType::Open,
        MessageType::Update,
        MessageType::Notification,
        MessageType::Keepalive,
        MessageType::RouteRefresh,
    ] {
        assert!(seen_types[ty as usize] > 0, "no {ty:?} in the golden captures");
    }
    assert!(treated_updates > 0);
    for f in [
        "add-path nlri",
        "as4_path",
        "ipv6 mp_reach",
        "communities",
        "large communities",
        "end-of-rib ipv4",
        "end-of-rib ipv6",
        "shutdown message",
        "graceful restart cap",
        "add-path cap",
        "4-octet asn",
    ] {
        assert!(features.contains_key(f), "golden captures lack {f}: {features:?}");
    }
}

/// Names of the interesting things a message carries.
fn features_of(msg: &Message) -> Vec<&'static str> {
    use bgp_proto::attributes::{type_code as t, MpNextHop};
    let mut out = Vec::new();
    match msg {
        Message::Open(o) => {
            for c in o.capabilities() {
                match c {
                    Capability::GracefulRestart(_) => out.push("graceful restart cap"),
                    Capability::AddPath(_) => out.push("add-path cap"),
                    Capability::FourOctetAs(asn) if *asn > 65535 => out.push("4-octet asn"),
                    _ => {}
                }
            }
        }
        Message::Update(u) => {
            match u.as_end_of_rib() {
                Some(f) if f == bgp_proto::Family::IPV4_UNICAST => out.push("end-of-rib ipv4"),
                Some(f) if f == bgp_proto::Family::IPV6_UNICAST => out.push("end-of-rib ipv6"),
                _ => {}
            }
            if u.announced().any(|(_, n)| n.path_id.is_some()) {
                out.push("add-path nlri");
            }
            if u.attribute(t::AS4_PATH).is_some() {
                out.push("as4_path");
            }
            if u.attribute(t::COMMUNITIES).is_some() {
                out.push("communities");
            }
            if u.attribute(t::LARGE_COMMUNITIES).is_some() {
                out.push("large communities");
            }
            if let Some(m) = u.mp_reach() {
                if m.family == bgp_proto::Family::IPV6_UNICAST {
                    out.push("ipv6 mp_reach");
                }
                if matches!(
                    m.next_hop,
                    MpNextHop::V6 {
                        link_local: Some(_),
                        ..
                    }
                ) {
                    out.push("link-local next hop");
                }
            }
        }
        Message::Notification(n) if n.shutdown_message().is_some() => out.push("shutdown message"),
        _ => {}
    }
    out
}
