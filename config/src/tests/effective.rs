//! Effective peers (mesh and explicit), serialization, and robustness.

use super::*;

// ---------------------------------------------------------------- effective peers

fn mesh_cfg(local: &str, peers: &str) -> Config {
    ok(&base(&format!(
        "[mesh]\nlocal_address = \"{local}\"\npeers = [{peers}]\npassword = \"pw\"\nport = 1179\n"
    )))
}

#[test]
fn mesh_passive_rule_both_ways() {
    let c = mesh_cfg("10.0.0.5", "\"10.0.0.4\", \"10.0.0.6\"");
    let ps = c.effective_peers();
    assert_eq!(ps.len(), 2);
    // We are higher than .4: we wait for it to connect.
    assert_eq!((ps[0].address, ps[0].passive), ("10.0.0.4".parse().unwrap(), true));
    // We are lower than .6: we connect.
    assert_eq!((ps[1].address, ps[1].passive), ("10.0.0.6".parse().unwrap(), false));
    // The other side of each pair decides the opposite way.
    let other = mesh_cfg("10.0.0.4", "\"10.0.0.5\"").effective_peers();
    assert!(!other[0].passive);
    let other = mesh_cfg("10.0.0.6", "\"10.0.0.5\"").effective_peers();
    assert!(other[0].passive);
}

#[test]
fn mesh_peer_naming_and_resolution() {
    let c = mesh_cfg("10.0.0.5", "\"10.0.0.4\", \"fd00::1:2\"");
    let ps = c.effective_peers();
    assert_eq!(ps[0].name, "Mesh_10_0_0_4");
    assert_eq!(ps[1].name, "Mesh_fd00__1_2");
    let p = &ps[0];
    assert_eq!(p.origin, PeerOrigin::Mesh(0));
    assert_eq!((p.asn, p.local_asn, p.ibgp), (64512, 64512, true));
    assert_eq!((p.port, p.password.as_deref()), (1179, Some("pw")));
    assert_eq!((p.hold_time, p.keepalive_time), (90, 30));
    assert_eq!(p.ttl, TtlMode::Fixed(64));
    assert_eq!(p.source_address, Some("10.0.0.5".parse().unwrap()));
    // No IPv4 source for an IPv6 neighbor.
    assert_eq!(ps[1].source_address, None);
}

#[test]
fn mesh_local_address_defaults_to_router_id() {
    let c = ok(&base("[mesh]\npeers = [\"192.168.1.12\", \"192.168.1.10\"]\n"));
    let m = c.mesh.as_ref().unwrap();
    assert_eq!(m.local_address, IpAddr::from([192, 168, 1, 11]));
    assert_eq!(m.port, 179);
    let ps = c.effective_peers();
    assert!(!ps[0].passive);
    assert!(ps[1].passive);
}

#[test]
fn explicit_peer_resolution_and_overrides() {
    let c = ok(&base(
        "hold_time = 60\nkeepalive_time = 15\n\
         [[peer]]\naddress = \"10.0.0.1\"\nasn = 65001\n\
         [[peer]]\naddress = \"10.0.0.2\"\nasn = 64512\nhold_time = 9\n\
         [[peer]]\nname = \"gtsm\"\naddress = \"10.0.0.3\"\nasn = 65003\nlocal_asn = 65100\n\
         ttl_security = true\nttl_security_hops = 2\nkeepalive_time = 5\npassive = true\n\
         [[peer]]\naddress = \"10.0.0.4\"\nasn = 65004\nmultihop = 3\nenabled = false\n",
    ));
    let ps = c.effective_peers();
    assert_eq!(ps.len(), 4);
    // eBGP, inherits [bgp] timers, TTL 1.
    assert_eq!(ps[0].name, "Peer_10_0_0_1");
    assert_eq!(ps[0].origin, PeerOrigin::Explicit(0));
    assert!(!ps[0].ibgp);
    assert_eq!((ps[0].hold_time, ps[0].keepalive_time), (60, 15));
    assert_eq!(ps[0].ttl, TtlMode::Fixed(1));
    // iBGP, own hold time: keepalive is its third, TTL 64.
    assert!(ps[1].ibgp);
    assert_eq!((ps[1].hold_time, ps[1].keepalive_time), (9, 3));
    assert_eq!(ps[1].ttl, TtlMode::Fixed(64));
    // GTSM, own local AS, keepalive override against inherited hold.
    assert_eq!(ps[2].name, "gtsm");
    assert_eq!((ps[2].asn, ps[2].local_asn, ps[2].ibgp), (65003, 65100, false));
    assert_eq!(ps[2].ttl, TtlMode::Gtsm { hops: 2 });
    assert_eq!((ps[2].hold_time, ps[2].keepalive_time), (60, 5));
    assert!(ps[2].passive);
    // Explicit multihop, disabled.
    assert_eq!(ps[3].ttl, TtlMode::Fixed(3));
    assert!(!ps[3].enabled);
}

// ---------------------------------------------------------------- serialization

#[test]
fn serialize_redacts_passwords_and_shows_communities() {
    let c = load(&reference_path()).unwrap();
    let json = serde_json::to_string(&c).unwrap();
    for secret in ["mesh-secret", "rr-secret", "tor-secret"] {
        assert!(!json.contains(secret), "{secret} leaked");
    }
    assert!(json.contains("\"<redacted>\""));
    assert!(json.contains("\"65000:100\""));
    assert!(json.contains("\"rt:65000:1\""));
    assert!(json.contains("\"cross-subnet\""));
    let peers = serde_json::to_string(&c.effective_peers()).unwrap();
    assert!(!peers.contains("tor-secret"));
}

#[test]
fn configs_compare_for_reload() {
    let a = ok(&base("[[peer]]\naddress = \"1.1.1.1\"\nasn = 1\n"));
    let b = ok(&base("[[peer]]\naddress = \"1.1.1.1\"\nasn = 1\nport = 179\n"));
    let c = ok(&base("[[peer]]\naddress = \"1.1.1.1\"\nasn = 2\n"));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

// ---------------------------------------------------------------- robustness

/// Thousands of random single edits of the reference file: parsing never panics and
/// every error points inside the file.
#[test]
fn mutated_reference_never_panics() {
    let text = std::fs::read_to_string(reference_path()).unwrap();
    let chars: Vec<char> = text.chars().collect();
    let lines = text.lines().count() + 1;
    let alphabet: Vec<char> = "\"'[]{}=.,:/\n#-_019azé \t".chars().collect();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |n: usize| {
        // xorshift64*
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    };
    let mut failures = 0;
    for _ in 0..3000 {
        let mut c = chars.clone();
        for _ in 0..1 + next(3) {
            let at = next(c.len());
            match next(3) {
                0 => {
                    c.remove(at);
                }
                1 => c.insert(at, alphabet[next(alphabet.len())]),
                _ => c[at] = alphabet[next(alphabet.len())],
            }
        }
        let mutated: String = c.into_iter().collect();
        if let Err(errs) = parse(&mutated, "m.toml") {
            failures += 1;
            assert!(!errs.0.is_empty());
            for e in &errs.0 {
                assert!(e.line >= 1 && e.line <= lines + 1, "{e}");
                assert!(e.column >= 1, "{e}");
            }
        }
    }
    // Most single edits break something; if none did, the parser is not looking.
    assert!(failures > 1000, "only {failures} of 3000 mutations were rejected");
}
