//! ternd helping a restarting BIRD, and long-lived graceful restart (RFC 9494).

use super::*;

// ---------------------------------------------------------------------------
// 6: ternd helping a restarting BIRD
// ---------------------------------------------------------------------------

/// Breaks: BIRD on h2, announcing two blocks, is SIGKILLed, one block is
/// removed from its config, and it starts again in graceful-restart recovery
/// (`bird -R`: R=1, F=1). Asserts: ternd keeps both blocks (stale) while BIRD
/// is away, then after BIRD's End-of-RIB only the one BIRD still announces;
/// h1's kernel never deletes the kept block and deletes the dropped one once,
/// after BIRD came back.
#[test]
fn restarted_bird_neighbour_keeps_routes_until_end_of_rib() {
    let test = "restarted_bird_neighbour_keeps_routes_until_end_of_rib";
    if !require(test, &["bird", "birdc"]) {
        return;
    }
    let topo = Topology::single_segment(2);
    let (h1, h2) = (topo.host(1), topo.host(2));
    let kept = h2.block();
    let dropped = "10.244.22.0/26".to_string();
    let tern = Ternd::start(
        &h1.ns,
        &ternd_mesh_config(h1.addr, &[h2.addr], &h1.block(), "never", 90, ""),
    );
    let mut bird = Bird::start(
        &h2.ns,
        &calico_bird_config(h2.addr, &[h1.addr], &[kept.clone(), dropped.clone()], CALICO_GR),
    );
    let proto = bird_proto(h1.addr);
    let h2_addr = h2.addr.to_string();
    wait_until_diag(
        Duration::from_secs(30),
        "session Established and both of BIRD's blocks in h1's kernel",
        || tern.established() == 1 && via(h1, &kept, h2.addr) && via(h1, &dropped, h2.addr),
        || format!("{}\n{}", tern.peers_summary(), show(&h1.routes(""))),
    );
    let mon1 = RouteMonitor::start(&h1.ns, "h1 (ternd)");

    let t0 = Instant::now();
    bird.kill9();
    let mut held = Value::Null;
    let seen_stale = wait_until_diag(
        Duration::from_secs(10),
        "ternd keeping BIRD's two routes as stale",
        || {
            let Some(p) = tern.peer(&h2_addr) else { return false };
            held = p["graceful_restart"].clone();
            p["state"] != "Established" && held["state"] == "restarting" && held["stale_routes"].as_u64() == Some(2)
        },
        || tern.peers_summary(),
    );
    for block in [&kept, &dropped] {
        let paths = paths_for(&tern, block);
        assert!(
            paths.len() == 1 && paths[0]["from"].as_str().is_some_and(|f| f.ends_with("(stale)")),
            "{block} should be held as stale: {paths:?}"
        );
        assert!(via(h1, block, h2.addr), "{block} left h1's kernel while BIRD was away");
    }
    let restarted_at = Instant::now();
    bird.restart(
        &calico_bird_config(h2.addr, &[h1.addr], std::slice::from_ref(&kept), CALICO_GR),
        true,
    );
    let settled = wait_until_diag(
        Duration::from_secs(30),
        "BIRD back, its End-of-RIB taken: the dropped block gone, the kept one fresh",
        || {
            bird.established(&proto)
                && tern
                    .peer(&h2_addr)
                    .is_some_and(|p| p["state"] == "Established" && p["graceful_restart"].is_null())
                && !has_block(h1, &dropped)
                && via(h1, &kept, h2.addr)
                && paths_for(&tern, &kept)
                    .iter()
                    .any(|p| p["from"].as_str().is_some_and(|f| !f.ends_with("(stale)")))
        },
        || {
            format!(
                "{}\n{}\n{}",
                tern.peers_summary(),
                show(&h1.routes("")),
                bird.log_tail()
            )
        },
    );
    let kept_deleted = mon1.deletions(&kept);
    let dropped_deleted = mon1.deletions(&dropped);
    println!(
        "{test}: ternd held {held} {seen_stale:?} after the SIGKILL; BIRD restarted {:?} after it; settled \
         {settled:?} later; h1 kernel deletions: kept {} dropped {} ({:?} after BIRD's restart)",
        restarted_at - t0,
        kept_deleted.len(),
        dropped_deleted.len(),
        dropped_deleted
            .first()
            .map(|(at, _)| at.saturating_duration_since(restarted_at)),
    );
    assert!(kept_deleted.is_empty(), "kept block deleted:\n{}", mon1.show(&kept));
    assert_eq!(dropped_deleted.len(), 1, "{}", mon1.show(&dropped));
    assert!(
        dropped_deleted[0].0 > restarted_at,
        "the dropped block left before BIRD came back:\n{}",
        mon1.show(&dropped)
    );
    assert!(
        paths_for(&tern, &dropped).is_empty(),
        "ternd still has {dropped}: {:?}",
        paths_for(&tern, &dropped)
    );
    assert!(
        bird.log_text().contains("Graceful restart started"),
        "BIRD did not start in graceful-restart recovery:\n{}",
        bird.log_tail()
    );
}

// ---------------------------------------------------------------------------
// 7: long-lived graceful restart with BIRD
// ---------------------------------------------------------------------------

/// BIRD's restart time and long-lived stale time in the LLGR test, seconds.
const LLGR_T: u64 = 2;
const LLGR_S: u64 = 8;

/// Breaks: BIRD (graceful restart time T=2, LLGR with long lived stale time
/// S=8) is SIGKILLed and not restarted. Asserts: ternd keeps h2's block,
/// first as stale, after about T as LLGR_STALE (community 65535:6) and still
/// in h1's kernel, and removes it at about T+S (the smaller of BIRD's 8 and
/// ternd's own long_lived_stale_time 60).
#[test]
fn bird_llgr_routes_turn_llgr_stale_then_expire() {
    let test = "bird_llgr_routes_turn_llgr_stale_then_expire";
    if !require(test, &["bird", "birdc"]) {
        return;
    }
    let topo = Topology::single_segment(2);
    let (h1, h2) = (topo.host(1), topo.host(2));
    let tern = Ternd::start(
        &h1.ns,
        &ternd_mesh_config(
            h1.addr,
            &[h2.addr],
            &h1.block(),
            "never",
            90,
            "\n[graceful_restart]\nlong_lived_stale_time = 60\n",
        ),
    );
    let llgr = format!(
        "graceful restart on;\n  graceful restart time {LLGR_T};\n  long lived graceful restart on;\n  long lived stale time {LLGR_S};"
    );
    let mut bird = Bird::start(&h2.ns, &calico_bird_config(h2.addr, &[h1.addr], &[h2.block()], &llgr));
    let proto = bird_proto(h1.addr);
    let h2_addr = h2.addr.to_string();
    let block = h2.block();
    wait_until_diag(
        Duration::from_secs(30),
        "session Established and h2's block in h1's kernel",
        || tern.established() == 1 && bird.established(&proto) && via(h1, &block, h2.addr),
        || tern.peers_summary(),
    );
    let caps = bird
        .try_birdc(&format!("show protocols all {proto}"))
        .unwrap_or_default();
    assert!(
        caps.matches("Long-lived graceful restart").count() >= 2,
        "LLGR not announced by both sides:\n{caps}"
    );
    let mon1 = RouteMonitor::start(&h1.ns, "h1 (ternd)");
    let communities = |p: &Value| -> Vec<String> {
        p["communities"]
            .as_array()
            .map(|c| c.iter().filter_map(|x| x.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };

    let t0 = Instant::now();
    bird.kill9();
    wait_until_diag(
        Duration::from_secs(LLGR_T),
        "h2's block held as stale, not yet LLGR_STALE",
        || {
            let p = paths_for(&tern, &block);
            p.len() == 1
                && p[0]["from"].as_str().is_some_and(|f| f.ends_with("(stale)"))
                && !communities(&p[0]).iter().any(|c| c == "65535:6")
        },
        || format!("{:?}", paths_for(&tern, &block)),
    );
    let stale_at = t0.elapsed();
    let mut llgr_path = Value::Null;
    wait_until_diag(
        Duration::from_secs(LLGR_T + 3),
        "h2's block carrying LLGR_STALE (65535:6)",
        || {
            let p = paths_for(&tern, &block);
            llgr_path = p.first().cloned().unwrap_or(Value::Null);
            communities(&llgr_path).iter().any(|c| c == "65535:6")
        },
        || format!("{:?}\n{}", paths_for(&tern, &block), tern.peers_summary()),
    );
    let llgr_at = t0.elapsed();
    assert!(via(h1, &block, h2.addr), "LLGR-stale block not in h1's kernel");
    let peer_gr = tern.peer(&h2_addr).map(|p| p["graceful_restart"].clone());
    wait_until_diag(
        Duration::from_secs(LLGR_T + LLGR_S + 5),
        "h2's block gone from ternd and h1's kernel",
        || paths_for(&tern, &block).is_empty() && !has_block(h1, &block),
        || format!("{:?}\n{}", paths_for(&tern, &block), tern.peers_summary()),
    );
    let gone_at = t0.elapsed();
    let deleted = mon1.deletions(&block);
    let deleted_at = deleted.first().map(|(at, _)| at.saturating_duration_since(t0));
    println!(
        "{test}: after SIGKILL of BIRD: stale at {stale_at:?}, LLGR_STALE at {llgr_at:?} (path {llgr_path}, \
         peer {peer_gr:?}), gone from ternd at {gone_at:?}, kernel deletion at {deleted_at:?} ({} deletions)",
        deleted.len()
    );
    assert!(
        llgr_at >= Duration::from_millis(LLGR_T * 1000 - 500),
        "LLGR_STALE before the restart time ran out: {llgr_at:?}"
    );
    assert_eq!(deleted.len(), 1, "{}", mon1.show(&block));
    let deleted_at = deleted_at.expect("deletion");
    assert!(
        deleted_at >= Duration::from_secs(LLGR_T + LLGR_S - 1),
        "removed before restart time + long-lived stale time: {deleted_at:?}"
    );
    assert!(
        deleted_at <= Duration::from_secs(LLGR_T + LLGR_S + 3),
        "kept well past restart time + long-lived stale time: {deleted_at:?}"
    );
}
