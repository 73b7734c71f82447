//! The pcap reader against the golden captures of real BIRD / GoBGP sessions
//! (tests/golden/*.pcap, made by tests/golden/capture.sh).

use std::collections::BTreeMap;
use std::path::PathBuf;

use bgp_capture::{bgp_messages, read_capture, CaptureWarning};

/// The golden captures live with the daemon's tests, one level up.
fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/golden")
}

/// Every `*.pcap` in tests/golden, sorted by name.
fn golden_captures() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(golden_dir())
        .expect("tests/golden exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&p).expect("readable capture");
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn golden_captures_exist() {
    let names: Vec<String> = golden_captures().into_iter().map(|(n, _)| n).collect();
    for expected in [
        "bird-gobgp-ebgp.pcap",
        "bird-bird-addpath.pcap",
        "bird-as2-as4path.pcap",
        "shutdown-notification.pcap",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from tests/golden (have {names:?}); run sudo bash tests/golden/capture.sh"
        );
    }
}

/// RFC 4271 §4.1: marker all ones, length field equals the message length,
/// type one of the five defined ones; all five occur across the captures.
#[test]
fn every_golden_message_is_well_framed() {
    let mut types_seen: BTreeMap<u8, usize> = BTreeMap::new();
    let captures = golden_captures();
    assert!(!captures.is_empty(), "no golden captures found");
    for (name, bytes) in &captures {
        let messages = bgp_messages(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!messages.is_empty(), "{name}: no BGP messages");
        for (i, m) in messages.iter().enumerate() {
            let b = &m.bytes;
            assert!(b.len() >= 19, "{name} #{i}: only {} bytes", b.len());
            assert_eq!(&b[..16], &[0xff; 16], "{name} #{i}: bad marker");
            let len = u16::from_be_bytes([b[16], b[17]]) as usize;
            assert_eq!(len, b.len(), "{name} #{i}: length field vs bytes");
            assert!((1..=5).contains(&b[18]), "{name} #{i}: type {}", b[18]);
            assert_eq!(m.message_type(), Some(b[18]));
            assert!(
                m.src.port() == 179 || m.dst.port() == 179,
                "{name} #{i}: {} -> {} is not a BGP connection",
                m.src,
                m.dst
            );
            *types_seen.entry(b[18]).or_default() += 1;
        }
        let mut per_type = [0usize; 6];
        for m in &messages {
            per_type[usize::from(m.bytes[18]).min(5)] += 1;
        }
        eprintln!(
            "{name}: {} messages (OPEN {}, UPDATE {}, NOTIFICATION {}, KEEPALIVE {}, ROUTE-REFRESH {})",
            messages.len(),
            per_type[1],
            per_type[2],
            per_type[3],
            per_type[4],
            per_type[5]
        );
        // Capture order: timestamps never go backwards.
        assert!(
            messages.windows(2).all(|w| w[0].timestamp <= w[1].timestamp),
            "{name}: messages out of time order"
        );
    }
    for ty in 1..=5u8 {
        assert!(
            types_seen.contains_key(&ty),
            "message type {ty} never seen in the golden captures: {types_seen:?}"
        );
    }
}

/// The captures were stopped after the exchange finished, so every stream
/// must reassemble cleanly: no gaps, no partial messages, no framing errors.
#[test]
fn golden_captures_have_no_damage() {
    for (name, bytes) in golden_captures() {
        let capture = read_capture(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            capture.warnings.is_empty(),
            "{name}: unexpected warnings {:?}",
            capture.warnings
        );
    }
}

/// Both speakers of every session send an OPEN. (Per host pair, not per
/// connection: a peer that is administratively down accepts and closes a
/// reconnect attempt without answering its OPEN.)
#[test]
fn every_golden_session_opens_both_ways() {
    for (name, bytes) in golden_captures() {
        let messages = bgp_messages(&bytes).unwrap();
        let opens: Vec<_> = messages.iter().filter(|m| m.message_type() == Some(1)).collect();
        assert!(opens.len() >= 2, "{name}: {} OPENs", opens.len());
        for open in &opens {
            assert!(
                opens
                    .iter()
                    .any(|o| o.src.ip() == open.dst.ip() && o.dst.ip() == open.src.ip()),
                "{name}: OPEN {} -> {} has no answer",
                open.src,
                open.dst
            );
        }
    }
}

/// Specific content the captures were made for (see tests/golden/README.md).
#[test]
fn golden_captures_contain_what_they_were_made_for() {
    let find = |name: &str| {
        let (_, bytes) = golden_captures()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        bgp_messages(&bytes).unwrap()
    };

    // RFC 9003 shutdown communication: NOTIFICATION 6/2 with a text.
    for name in ["shutdown-notification.pcap", "bird-gobgp-ebgp.pcap"] {
        let msgs = find(name);
        let text = b"maintenance: going down";
        assert!(
            msgs.iter().any(|m| m.message_type() == Some(3)
                && m.bytes[19..21] == [6, 2]
                && m.bytes.len() == 19 + 2 + 1 + text.len()
                && usize::from(m.bytes[21]) == text.len()
                && &m.bytes[22..] == text),
            "{name}: no Cease/Administrative Shutdown with the shutdown communication"
        );
    }

    // RFC 7313 enhanced route refresh: BoRR (subtype 1) and EoRR (subtype 2).
    let msgs = find("bird-bird-addpath.pcap");
    for subtype in [0u8, 1, 2] {
        assert!(
            msgs.iter()
                .any(|m| m.message_type() == Some(5) && m.bytes.get(21) == Some(&subtype)),
            "bird-bird-addpath.pcap: no ROUTE-REFRESH subtype {subtype}"
        );
    }

    // RFC 6793: the 2-octet session carries AS4_PATH (attribute type 17) and AS_TRANS.
    let msgs = find("bird-as2-as4path.pcap");
    let as_trans = 23456u16.to_be_bytes();
    assert!(
        msgs.iter().any(|m| m.message_type() == Some(2)
            && m.bytes.windows(2).any(|w| w == as_trans)
            && m.bytes.windows(2).any(|w| w == [0xc0, 17])),
        "bird-as2-as4path.pcap: no UPDATE with AS_TRANS and AS4_PATH"
    );
}

/// A golden capture cut at arbitrary points (as when tcpdump is killed)
/// still yields only real messages, and says that it was cut.
#[test]
fn cut_golden_capture_yields_a_subset_and_a_warning() {
    let (_, bytes) = golden_captures()
        .into_iter()
        .find(|(n, _)| n == "bird-gobgp-ebgp.pcap")
        .expect("bird-gobgp-ebgp.pcap");
    let full = bgp_messages(&bytes).unwrap();
    let mut cut_mid_record = 0;
    for cut in (24..bytes.len()).step_by(97) {
        let c = read_capture(&bytes[..cut]).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        for m in &c.messages {
            assert!(full.contains(m), "cut {cut}: message not in the full capture");
        }
        assert!(c.messages.len() <= full.len());
        if c.warnings
            .iter()
            .any(|w| matches!(w, CaptureWarning::TruncatedCapture { .. }))
        {
            cut_mid_record += 1;
        }
    }
    assert!(cut_mid_record > 0, "no cut was reported as truncated");
}
