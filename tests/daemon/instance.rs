//! One ternd per socket: a second daemon started by mistake refuses, naming
//! what is in use, and the running one keeps its sockets and sessions; a
//! stale socket file left by a crash is replaced; a stop removes ours.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use tern_testkit::inproc::*;
use tern_testkit::testpeer::TestPeer;
use tern_testkit::TempDir;

/// The file's inode: a socket removed and bound again gets a new one.
fn inode(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .ino()
}

/// A running node with h2 Established and one of h2's blocks installed.
fn running() -> (Node, TestPeer) {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    h2.announce(&[net("10.244.2.0/26")], "192.168.1.12".parse().unwrap(), vec![])
        .expect("announce");
    node.wait_until("h2's block installed", || {
        node.kernel_gateways("10.244.2.0/26").is_some()
    });
    (node, h2)
}

/// A second start sharing `shared` fails naming `named` and binds none of
/// its own sockets; the first keeps its socket files (same inodes), answers
/// on both, and h2's session stays up.
fn second_start_refused(shared: Shared, named: impl Fn(&Node) -> String) {
    let (node, mut h2) = running();
    let (control, bird) = (inode(&node.control_socket()), inode(&node.bird_socket()));
    let since = node.peer("h2").since_unix;
    let err = match node.try_start_sharing(shared) {
        Ok(_) => panic!("a second ternd sharing the {shared:?} started"),
        Err(e) => e,
    };
    let named = named(&node);
    assert!(err.contains(&named), "error {err:?} names {named}");
    assert!(!err.contains('\n'), "one line: {err:?}");
    let left: Vec<_> = std::fs::read_dir(node.second_dir())
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.file_name())).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "the refused start left {left:?} behind");
    assert_eq!(inode(&node.control_socket()), control, "control socket untouched");
    assert_eq!(inode(&node.bird_socket()), bird, "BIRD socket untouched");
    assert_eq!(node.status().router_id.to_string(), ROUTER_ID);
    let lines = node.birdc("show status");
    assert!(lines[0].starts_with("1000-BIRD"), "{lines:?}");
    let peer = node.peer("h2");
    assert_eq!((peer.state.as_str(), peer.since_unix), ("Established", since));
    h2.announce(&[net("10.244.3.0/26")], "192.168.1.12".parse().unwrap(), vec![])
        .expect("h2's connection still open");
    node.wait_until("h2's second block installed", || {
        node.kernel_gateways("10.244.3.0/26").is_some()
    });
}

#[test]
fn a_second_daemon_on_the_control_socket_refuses_and_leaves_the_first_alone() {
    second_start_refused(Shared::ControlSocket, |n| n.control_socket().display().to_string());
}

#[test]
fn a_second_daemon_on_the_bird_socket_refuses_and_leaves_the_first_alone() {
    second_start_refused(Shared::BirdSocket, |n| n.bird_socket().display().to_string());
}

#[test]
fn a_second_daemon_on_the_bgp_address_refuses_and_leaves_the_first_alone() {
    second_start_refused(Shared::BgpListen, |n| n.bgp_addr().to_string());
}

#[test]
fn stale_socket_files_left_by_a_crash_are_replaced() {
    let dir = TempDir::new("stale");
    for name in ["tern.sock", "bird.ctl"] {
        let path = dir.path().join(name);
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
        assert!(path.exists(), "a dropped listener leaves its file");
    }
    let mut node = Node::try_start_in(dir, "").expect("ternd starts over stale sockets");
    assert_eq!(node.status().router_id.to_string(), ROUTER_ID);
    let lines = node.birdc("show status");
    assert!(lines[0].starts_with("1000-BIRD"), "{lines:?}");
    node.stop();
    for path in [node.control_socket(), node.bird_socket()] {
        assert!(!path.exists(), "{} removed on stop", path.display());
    }
}

#[test]
fn a_file_that_is_not_a_socket_refuses_the_start() {
    let dir = TempDir::new("not-socket");
    dir.write("bird.ctl", "not ours to remove");
    let err = match Node::try_start_in(dir, "") {
        Ok(_) => panic!("ternd started over a regular file"),
        Err(e) => e,
    };
    assert!(err.contains("bird.ctl: it exists and is not a socket"), "{err}");
}
