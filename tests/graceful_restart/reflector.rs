//! A restarting route reflector: its clients keep each other's routes.

use super::*;

// ---------------------------------------------------------------------------
// 5: a restarting route reflector
// ---------------------------------------------------------------------------

const CLUSTER_ID: &str = "1.1.1.1";

/// Breaks: the ternd route reflector on h1 (clients: BIRD on h2, GoBGP on h3,
/// ternd on h4, each announcing its own block) is SIGTERM-restarted. It must
/// wait for all three clients' End-of-RIB before it reflects anything, or a
/// client would drop the blocks missing from a partial table. Asserts: no
/// deletion of any block in the BIRD client's, the ternd client's or the
/// reflector's kernel (ip monitor), every block in every sample of GoBGP's
/// RIB, and afterwards every client has every other block via its originator.
#[test]
fn reflector_restart_deletes_no_client_block() {
    let test = "reflector_restart_deletes_no_client_block";
    if !require(test, &["bird", "birdc", "gobgpd", "gobgp"]) {
        return;
    }
    let topo = Topology::single_segment(4);
    let (rr, bc, gc, tc) = (topo.host(1), topo.host(2), topo.host(3), topo.host(4));
    let client = "route_reflector_client = true";
    let mut reflector = Ternd::start(
        &rr.ns,
        &ternd_peers_config(
            rr.addr,
            &format!("cluster_id = \"{CLUSTER_ID}\""),
            &rr.block(),
            &[(bc.addr, client), (gc.addr, client), (tc.addr, client)],
        ),
    );
    let bird = Bird::start(
        &bc.ns,
        &calico_bird_config(bc.addr, &[rr.addr], &[bc.block()], CALICO_GR),
    );
    let gobgp = Gobgp::start(&gc.ns, &gobgp_gr_config(gc.addr, &[rr.addr]));
    gobgp.gobgp(&[
        "global",
        "rib",
        "add",
        &gc.block(),
        "-a",
        "ipv4",
        "nexthop",
        &gc.addr.to_string(),
    ]);
    let tern_client = Ternd::start(&tc.ns, &ternd_peers_config(tc.addr, "", &tc.block(), &[(rr.addr, "")]));
    let proto = bird_proto(rr.addr);
    let rr_addr = rr.addr.to_string();
    let everyone = [rr, bc, gc, tc];
    // What each client must hold: every other block via its originator.
    let kernel_full = |me: &Host| {
        everyone
            .iter()
            .filter(|h| h.index != me.index)
            .all(|h| via(me, &h.block(), h.addr))
    };
    let gobgp_fresh = |prefix: &str, nh: Ipv4Addr| {
        gobgp_paths(&gobgp, prefix).is_some_and(|p| {
            p.iter()
                .any(|(n, stale)| n.as_deref() == Some(nh.to_string().as_str()) && !stale)
        })
    };
    let gobgp_full = || [rr, bc, tc].iter().all(|h| gobgp_fresh(&h.block(), h.addr));
    let diag = |reflector: &Ternd| {
        format!(
            "{}\n{}\nBIRD client:\n{}\nternd client:\n{}\nGoBGP:\n{}",
            reflector.peers_summary(),
            tern_client.peers_summary(),
            show(&bc.routes("proto bird")),
            show(&tc.routes("proto bird")),
            gobgp.try_gobgp(&["global", "rib"]).unwrap_or_else(|e| e.to_string())
        )
    };
    wait_until_diag(
        Duration::from_secs(40),
        "all sessions Established, every block at every client",
        || {
            reflector.established() == 3
                && bird.established(&proto)
                && gobgp.established(&rr_addr)
                && tern_client.established() == 1
                && kernel_full(rr)
                && kernel_full(bc)
                && kernel_full(tc)
                && gobgp_full()
        },
        || diag(&reflector),
    );

    let monitors = [
        RouteMonitor::start(&bc.ns, "h2 (BIRD client)"),
        RouteMonitor::start(&tc.ns, "h4 (ternd client)"),
        RouteMonitor::start(&rr.ns, "h1 (reflector)"),
    ];
    let watch: Vec<(String, Ipv4Addr)> = [rr, bc, tc].iter().map(|h| (h.block(), h.addr)).collect();
    let t0 = Instant::now();
    let ((stopped, recovered), samples) = sample_gobgp_during(&gobgp, &watch, || {
        let status = reflector.stop();
        assert!(
            status.is_some_and(|s| s.success()),
            "reflector exit after SIGTERM: {status:?}"
        );
        let stopped = t0.elapsed();
        wait_until(Duration::from_secs(10), "every client seeing the session end", || {
            !bird.established(&proto)
                && !gobgp.established(&rr_addr)
                && tern_client.peer(&rr_addr).is_some_and(|p| p["state"] != "Established")
        });
        reflector.restart();
        wait_until_diag(
            Duration::from_secs(40),
            "reflector back with every client, selection done, no stale routes left anywhere",
            || {
                reflector.established() == 3
                    && selection_done(&reflector)
                    && bird.established(&proto)
                    && bird.log_text().contains("Neighbor graceful restart done")
                    && tern_client
                        .peer(&rr_addr)
                        .is_some_and(|p| p["state"] == "Established" && p["graceful_restart"].is_null())
                    && gobgp_full()
            },
            || diag(&reflector),
        );
        (stopped, t0.elapsed())
    });
    let mut deletions = Vec::new();
    for m in &monitors {
        for h in &everyone {
            deletions.extend(
                m.deletions(&h.block())
                    .into_iter()
                    .map(|(_, l)| format!("{}: {l}", m.label)),
            );
        }
    }
    println!(
        "{test}: SIGTERM took {stopped:?}, recovered at {recovered:?}; kernel deletions in the clients and \
         the reflector: {}; GoBGP RIB samples: {} taken, {} missing a block, {} stale, {} failed",
        deletions.len(),
        samples.taken,
        samples.missing.len(),
        samples.stale,
        samples.failed
    );
    assert!(
        deletions.is_empty(),
        "blocks deleted during the reflector restart:\n{}",
        deletions.join("\n")
    );
    assert!(samples.taken >= 10, "too few samples: {samples:?}");
    assert!(
        samples.missing.is_empty(),
        "blocks missing from GoBGP's RIB in {} of {} samples: {:?}",
        samples.missing.len(),
        samples.taken,
        samples.missing
    );
    assert!(
        samples.stale > 0,
        "GoBGP never held the reflected blocks as stale: {samples:?}"
    );
    for me in [rr, bc, tc] {
        assert!(
            kernel_full(me),
            "host {} lacks a block after the restart\n{}",
            me.index,
            diag(&reflector)
        );
    }
    assert!(
        gobgp_full(),
        "GoBGP lacks a block after the restart\n{}",
        diag(&reflector)
    );
    assert_restarted_gracefully(&reflector);
}

// ---------------------------------------------------------------------------
// 9: a reflector killed before its state file names its peers
// ---------------------------------------------------------------------------

/// Breaks: a ternd reflector (default restart_time 120, so the state file is
/// rewritten every 30 s) with two ternd clients is SIGKILLed a few seconds
/// after the sessions came up, i.e. before any heartbeat recorded them, and
/// started again. Asserts what graceful restart promises: neither client's
/// kernel deletes the other client's block (the restarted reflector must not
/// send a partial table and End-of-RIB before it has heard from both).
///
/// This found a bug: the state file used to be rewritten only every
/// restart_time/4, so a kill right after the sessions came up restarted with
/// no peers to wait for. It is now rewritten as soon as a session comes up.
#[test]
fn reflector_killed_soon_after_start_deletes_no_client_block() {
    let test = "reflector_killed_soon_after_start_deletes_no_client_block";
    if !require(test, &[]) {
        return;
    }
    let topo = Topology::single_segment(3);
    let (rr, c1, c2) = (topo.host(1), topo.host(2), topo.host(3));
    let client = "route_reflector_client = true";
    let mut reflector = Ternd::start(
        &rr.ns,
        &ternd_peers_config(
            rr.addr,
            &format!("cluster_id = \"{CLUSTER_ID}\""),
            &rr.block(),
            &[(c1.addr, client), (c2.addr, client)],
        ),
    );
    let t1 = Ternd::start(&c1.ns, &ternd_peers_config(c1.addr, "", &c1.block(), &[(rr.addr, "")]));
    let t2 = Ternd::start(&c2.ns, &ternd_peers_config(c2.addr, "", &c2.block(), &[(rr.addr, "")]));
    wait_until_diag(
        Duration::from_secs(30),
        "sessions Established and each client holding the other's block",
        || {
            reflector.established() == 2
                && t1.established() == 1
                && t2.established() == 1
                && via(c1, &c2.block(), c2.addr)
                && via(c2, &c1.block(), c1.addr)
        },
        || {
            format!(
                "{}\n{}\n{}",
                reflector.peers_summary(),
                t1.peers_summary(),
                t2.peers_summary()
            )
        },
    );
    let state_path = reflector.socket.parent().expect("socket dir").join("ternd.state");
    let state = fs::read_to_string(&state_path).unwrap_or_default();
    let mons = [
        RouteMonitor::start(&c1.ns, "h2 (client 1)"),
        RouteMonitor::start(&c2.ns, "h3 (client 2)"),
    ];
    let t0 = Instant::now();
    reflector.kill9();
    reflector.restart();
    let rr_addr = rr.addr.to_string();
    wait_until_diag(
        Duration::from_secs(30),
        "reflector back, no stale routes left at the clients",
        || {
            reflector.established() == 2
                && selection_done(&reflector)
                && [&t1, &t2].iter().all(|t| {
                    t.peer(&rr_addr)
                        .is_some_and(|p| p["state"] == "Established" && p["graceful_restart"].is_null())
                })
                && via(c1, &c2.block(), c2.addr)
                && via(c2, &c1.block(), c1.addr)
        },
        || {
            format!(
                "{}\n{}\n{}",
                reflector.peers_summary(),
                t1.peers_summary(),
                t2.peers_summary()
            )
        },
    );
    let recovered = t0.elapsed();
    let deleted: Vec<String> = [(&mons[0], c2.block()), (&mons[1], c1.block())]
        .iter()
        .flat_map(|(m, b)| m.deletions(b).into_iter().map(|(_, l)| format!("{}: {l}", m.label)))
        .collect();
    let restart_log: Vec<String> = reflector
        .log_text()
        .lines()
        .filter(|l| l.contains("graceful restart"))
        .map(String::from)
        .collect();
    println!(
        "{test}: state file at the kill: {}; recovered at {recovered:?}; deletions: {}\n{}",
        state.trim(),
        deleted.len(),
        restart_log.join("\n")
    );
    assert!(
        deleted.is_empty(),
        "client kernels deleted each other's blocks across the reflector's restart \
         (state file at the kill: {}):\n{}\n{}\n{}",
        state.trim(),
        deleted.join("\n"),
        mons[0].show(&c2.block()),
        mons[1].show(&c1.block())
    );
}
