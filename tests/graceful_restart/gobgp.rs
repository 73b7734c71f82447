//! GoBGP as the graceful-restart helper of a restarting ternd.

use super::*;

// ---------------------------------------------------------------------------
// 3: GoBGP as the helper
// ---------------------------------------------------------------------------

#[test]
fn gobgp_keeps_the_block_in_every_rib_sample_across_sigterm_restart() {
    gobgp_helper(
        "gobgp_keeps_the_block_in_every_rib_sample_across_sigterm_restart",
        false,
    );
}

#[test]
fn gobgp_keeps_the_block_in_every_rib_sample_across_kill9_restart() {
    gobgp_helper("gobgp_keeps_the_block_in_every_rib_sample_across_kill9_restart", true);
}

fn gobgp_helper(test: &str, kill9: bool) {
    if !require(test, &["gobgpd", "gobgp"]) {
        return;
    }
    let topo = Topology::single_segment(2);
    let (h1, h2) = (topo.host(1), topo.host(2));
    let mut tern = Ternd::start(
        &h1.ns,
        &ternd_mesh_config(h1.addr, &[h2.addr], &h1.block(), "never", 90, ""),
    );
    let gobgp = Gobgp::start(&h2.ns, &gobgp_gr_config(h2.addr, &[h1.addr]));
    gobgp.gobgp(&[
        "global",
        "rib",
        "add",
        &h2.block(),
        "-a",
        "ipv4",
        "nexthop",
        &h2.addr.to_string(),
    ]);
    let h1_addr = h1.addr.to_string();
    let fresh = |g: &Gobgp| {
        gobgp_paths(g, &h1.block()).is_some_and(|p| {
            p.iter()
                .any(|(nh, stale)| nh.as_deref() == Some(h1_addr.as_str()) && !stale)
        })
    };
    wait_until_diag(
        Duration::from_secs(30),
        "session Established, h1's block in GoBGP and h2's in h1's kernel",
        || tern.established() == 1 && gobgp.established(&h1_addr) && fresh(&gobgp) && via(h1, &h2.block(), h2.addr),
        || tern.peers_summary(),
    );
    let neighbor = gobgp.gobgp(&["neighbor", &h1_addr]);
    assert!(
        neighbor
            .lines()
            .any(|l| l.contains("graceful-restart:") && l.contains("advertised and received")),
        "graceful restart not negotiated with GoBGP:\n{neighbor}"
    );

    if kill9 {
        wait_until(Duration::from_secs(5), "state file listing GoBGP", || {
            state_file_lists(&tern, h2.addr)
        });
    }
    let t0 = Instant::now();
    let ((stopped, recovered), samples) = sample_gobgp_during(&gobgp, &[(h1.block(), h1.addr)], || {
        stop_ternd(&mut tern, kill9);
        let stopped = t0.elapsed();
        wait_until(Duration::from_secs(10), "GoBGP seeing the session end", || {
            !gobgp.established(&h1_addr)
        });
        tern.restart();
        wait_until_diag(
            Duration::from_secs(30),
            "session back, ternd's selection done, h1's block fresh in GoBGP",
            || tern.established() == 1 && selection_done(&tern) && gobgp.established(&h1_addr) && fresh(&gobgp),
            || format!("{}\n{:?}", tern.peers_summary(), gobgp_paths(&gobgp, &h1.block())),
        );
        (stopped, t0.elapsed())
    });
    println!(
        "{test}: stop took {stopped:?}, recovered at {recovered:?}; GoBGP RIB samples: {} taken, \
         {} without h1's block, {} with it stale, {} failed",
        samples.taken,
        samples.missing.len(),
        samples.stale,
        samples.failed
    );
    assert!(samples.taken >= 10, "too few samples: {samples:?}");
    assert!(
        samples.missing.is_empty(),
        "h1's block missing from GoBGP's RIB in {} of {} samples: {:?}",
        samples.missing.len(),
        samples.taken,
        samples.missing
    );
    assert!(
        samples.stale > 0,
        "GoBGP never marked h1's block stale: was the session loss seen as a graceful restart? {samples:?}"
    );
    assert_restarted_gracefully(&tern);
}
