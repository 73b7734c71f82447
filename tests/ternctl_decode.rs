//! `ternctl decode` end to end: golden pcaps, hex input, JSON, and the exit
//! status for messages that would reset a session.

use std::process::Command;

const TERNCTL: &str = env!("CARGO_BIN_EXE_ternctl");

fn ternctl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(TERNCTL).args(args).output().expect("run ternctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn golden(name: &str) -> String {
    format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A whole UPDATE with one attribute block and a /26, as hex.
fn update_hex(attrs: &str) -> String {
    let attrs = attrs.replace(' ', "");
    let nlri = "1a0af40200";
    let len = 19 + 2 + 2 + attrs.len() / 2 + nlri.len() / 2;
    format!(
        "{}{len:04x}02 0000 {:04x} {attrs} {nlri}",
        "ff".repeat(16),
        attrs.len() / 2
    )
}

#[test]
fn pcap_is_shown_as_people_write_it() {
    let (code, out, err) = ternctl(&["decode", "--pcap", &golden("bird-gobgp-ebgp.pcap")]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "OPEN",
        "capability 4-octet-as 4200000001",
        "capability add-path",
        "capability graceful-restart",
        "as-path: 4200000001",
        "large-communities: 4200000001:",
        "End-of-RIB ipv4-unicast",
        "(path ",
        "ROUTE-REFRESH",
        "shutdown message: \"maintenance: going down\"",
    ] {
        assert!(out.contains(want), "missing {want:?}");
    }
}

#[test]
fn json_output_parses() {
    let (code, out, _) = ternctl(&["decode", "--pcap", &golden("shutdown-notification.pcap"), "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    let notif = v
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["type"] == "NOTIFICATION")
        .expect("a NOTIFICATION");
    assert_eq!(notif["notification"]["shutdown_message"], "maintenance: going down");
}

#[test]
fn treat_as_withdraw_is_named_and_does_not_fail() {
    // ORIGIN with the undefined value 7, AS_PATH, NEXT_HOP.
    let hex = update_hex("40010107 40020602010000fde9 400304c0a8010c");
    let (code, out, _) = ternctl(&["decode", "--hex", &hex]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("treat-as-withdraw"), "{out}");
    assert!(out.contains("offset 23"), "{out}");
}

#[test]
fn attribute_discard_is_named() {
    // ATOMIC_AGGREGATE with a value.
    let hex = update_hex("40010100 40020602010000fde9 400304c0a8010c 40060101");
    let (code, out, _) = ternctl(&["decode", "--hex", &hex]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("attribute-discard"), "{out}");
}

#[test]
fn session_reset_exits_non_zero_with_code_and_offset() {
    // A repeated MP_REACH_NLRI is a Malformed Attribute List (3/1).
    let mp = "800e0700020110";
    let mp = format!("{mp}{}00", "00".repeat(16));
    let bad = format!("800e15{}", &mp[6..]);
    let hex = update_hex(&format!("{bad} {bad}"));
    let (code, out, _) = ternctl(&["decode", "--hex", &hex]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("3/1"), "{out}");
    assert!(out.contains("offset"), "{out}");
    let (code, out, _) = ternctl(&["decode", "--hex", "ffffffffffffffffffffffffffffffff00140400"]);
    assert_eq!(code, 1);
    assert!(out.contains("1/2"), "{out}");
}

#[test]
fn bad_hex_is_a_clear_error() {
    let (code, _, err) = ternctl(&["decode", "--hex", "zz"]);
    assert_eq!(code, 2);
    assert!(err.contains("hex"), "{err}");
}
