//! ternd on both sides: one restarts, the other helps.

use super::*;

// ---------------------------------------------------------------------------
// 4: ternd on both sides
// ---------------------------------------------------------------------------

/// Breaks: h1's ternd is SIGTERM-restarted; h2 runs ternd too (the helper).
/// Asserts: no ping lost from a pod on h2 to a pod on h1, no deletion of h1's
/// block in h2's kernel nor of h2's in h1's, h2 held h1's routes as stale
/// meanwhile (its `show peers` graceful_restart block), h1 sent its routes on
/// h2's End-of-RIB.
#[test]
fn ternd_peer_keeps_the_block_across_sigterm_restart() {
    ternd_helper("ternd_peer_keeps_the_block_across_sigterm_restart", false);
}

#[test]
fn ternd_peer_keeps_the_block_across_kill9_restart() {
    ternd_helper("ternd_peer_keeps_the_block_across_kill9_restart", true);
}

fn ternd_helper(test: &str, kill9: bool) {
    if !require(test, &["ping"]) {
        return;
    }
    let topo = Topology::single_segment(2);
    let (h1, h2) = (topo.host(1), topo.host(2));
    let pod1 = h1.add_pod(0);
    let pod2 = h2.add_pod(0);
    let mut t1 = Ternd::start(
        &h1.ns,
        &ternd_mesh_config(h1.addr, &[h2.addr], &h1.block(), "never", 90, ""),
    );
    let t2 = Ternd::start(
        &h2.ns,
        &ternd_mesh_config(h2.addr, &[h1.addr], &h2.block(), "never", 90, ""),
    );
    wait_until_diag(
        Duration::from_secs(30),
        "session Established and both blocks in both kernels",
        || {
            t1.established() == 1
                && t2.established() == 1
                && via(h1, &h2.block(), h2.addr)
                && via(h2, &h1.block(), h1.addr)
        },
        || format!("{}\n{}", t1.peers_summary(), t2.peers_summary()),
    );
    pod2.ping(pod1.addr).expect("pod ping before the restart");
    if kill9 {
        wait_until(Duration::from_secs(5), "state file listing h2", || {
            state_file_lists(&t1, h2.addr)
        });
    }

    let mon2 = RouteMonitor::start(&h2.ns, "h2 (ternd helper)");
    let mon1 = RouteMonitor::start(&h1.ns, "h1 (ternd restarting)");
    let ping = Pinger::start(&pod2, pod1.addr, PING_INTERVAL);
    let t0 = Instant::now();
    stop_ternd(&mut t1, kill9);
    let stopped = t0.elapsed();
    let h1_addr = h1.addr.to_string();
    let mut helper_state = Value::Null;
    wait_until_diag(
        Duration::from_secs(10),
        "h2 keeping h1's routes as stale",
        || {
            let Some(p) = t2.peer(&h1_addr) else { return false };
            helper_state = p["graceful_restart"].clone();
            p["state"] != "Established" && helper_state["stale_routes"].as_u64() == Some(1)
        },
        || t2.peers_summary(),
    );
    t1.restart();
    wait_until_diag(
        Duration::from_secs(30),
        "session back, selection done, no stale routes left on h2",
        || {
            t1.established() == 1
                && selection_done(&t1)
                && t2
                    .peer(&h1_addr)
                    .is_some_and(|p| p["state"] == "Established" && p["graceful_restart"].is_null())
                && paths_for(&t2, &h1.block())
                    .iter()
                    .any(|p| p["from"].as_str().is_some_and(|f| !f.ends_with("(stale)")))
        },
        || format!("{}\n{}", t1.peers_summary(), t2.peers_summary()),
    );
    let recovered = t0.elapsed();
    let report = ping.stop();
    println!(
        "{test}: stop took {stopped:?}, h2's helper state {helper_state}, recovered at {recovered:?}; \
         ping ran {:?}: {} sent, {} received, {} lost, in flight at stop: {:?}; deletions: h2 {} h1 {}",
        report.ran,
        report.transmitted,
        report.received,
        report.lost.len(),
        report.in_flight,
        mon2.deletions(&h1.block()).len(),
        mon1.deletions(&h2.block()).len(),
    );
    assert_nothing_lost(&report, (h1, &mon1), (h2, &mon2));
    assert_restarted_gracefully(&t1);
}
