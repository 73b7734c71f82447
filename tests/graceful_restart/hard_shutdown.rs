//! `ternctl shutdown --hard`: peers drop our routes at once.

use super::*;

// ---------------------------------------------------------------------------
// 8: hard shutdown
// ---------------------------------------------------------------------------

/// Breaks: `ternctl shutdown --hard` on h1 next to BIRD. Asserts: BIRD's
/// kernel deletes h1's block within 1 s of the command (Cease, no graceful
/// restart), ternd exits, h1's kernel keeps no `proto bird` route and the
/// state file is gone (the next start is a fresh one).
#[test]
fn hard_shutdown_withdraws_from_bird_within_a_second() {
    let test = "hard_shutdown_withdraws_from_bird_within_a_second";
    if !require(test, &["bird", "birdc"]) {
        return;
    }
    let topo = Topology::single_segment(2);
    let (h1, h2) = (topo.host(1), topo.host(2));
    let mut tern = Ternd::start(
        &h1.ns,
        &ternd_mesh_config(h1.addr, &[h2.addr], &h1.block(), "never", 90, ""),
    );
    let bird = Bird::start(
        &h2.ns,
        &calico_bird_config(h2.addr, &[h1.addr], &[h2.block()], CALICO_GR),
    );
    let proto = bird_proto(h1.addr);
    wait_until_diag(
        Duration::from_secs(30),
        "session Established and both blocks in both kernels",
        || {
            tern.established() == 1
                && bird.established(&proto)
                && via(h1, &h2.block(), h2.addr)
                && via(h2, &h1.block(), h1.addr)
        },
        || tern.peers_summary(),
    );
    let state_file = tern.socket.parent().expect("socket dir").join("ternd.state");
    wait_until(Duration::from_secs(10), "state file written", || state_file.exists());
    let mon2 = RouteMonitor::start(&h2.ns, "h2 (BIRD)");

    let t0 = Instant::now();
    let reply = tern.ternctl(&["shutdown", "--hard"]).unwrap_or_else(|e| panic!("{e}"));
    wait_until_diag(
        Duration::from_secs(5),
        "BIRD's kernel deleting h1's block",
        || !mon2.deletions(&h1.block()).is_empty(),
        || mon2.show(&h1.block()),
    );
    let deleted_after = mon2.deletions(&h1.block())[0].0.saturating_duration_since(t0);
    wait_until(Duration::from_secs(10), "ternd exiting", || tern.exited().is_some());
    let exited_after = t0.elapsed();
    let left = h1.routes("proto bird");
    let bird_view = bird
        .try_birdc(&format!("show protocols all {proto}"))
        .unwrap_or_default();
    let last_error = bird_view
        .lines()
        .find(|l| l.contains("Last error"))
        .unwrap_or("")
        .trim()
        .to_string();
    println!(
        "{test}: reply {:?}; BIRD's kernel deleted h1's block {deleted_after:?} after the command; ternd exited \
         after {exited_after:?}; h1 proto bird routes left: {}; BIRD: {last_error}",
        reply.trim(),
        left.len()
    );
    assert!(
        deleted_after < Duration::from_secs(1),
        "withdrawal took {deleted_after:?}"
    );
    assert!(left.is_empty(), "proto bird routes left on h1:\n{}", show(&left));
    assert!(!state_file.exists(), "state file left after a hard stop");
    assert!(
        last_error.contains("Received: Administrative shutdown"),
        "BIRD was not sent a Cease: {last_error}\n{}",
        bird.log_tail()
    );
    assert!(
        !bird.log_text().contains("Neighbor graceful restart detected"),
        "BIRD treated the hard stop as a graceful restart:\n{}",
        bird.log_tail()
    );
}
