//! Capability negotiation, jitter, random event sequences and graceful restart.

use super::*;

#[test]
fn negotiation_from_realistic_opens() {
    let v4 = Family::IPV4_UNICAST;
    let v6 = Family::IPV6_UNICAST;
    let v4_multicast = Family::new(Afi::IPV4, Safi::MULTICAST);
    let ours = Open::new(
        64512,
        90,
        LOCAL_ID,
        vec![
            Capability::Multiprotocol(v4),
            Capability::Multiprotocol(v6),
            Capability::RouteRefresh,
            Capability::ExtendedMessage,
            Capability::FourOctetAs(64512),
            Capability::AddPath(vec![(v4, AddPathMode::Both), (v6, AddPathMode::Both)]),
            Capability::GracefulRestart(GracefulRestart {
                restarting: false,
                notification: true,
                restart_time: 120,
                families: vec![GracefulRestartFamily {
                    family: v4,
                    forwarding_preserved: false,
                }],
            }),
            Capability::ExtendedNextHop(vec![ExtendedNextHop {
                family: v4,
                next_hop_afi: Afi::IPV6,
            }]),
        ],
    );
    // A BIRD-like peer: one parameter per capability.
    let mut theirs = Open::new(4_200_000_001, 240, PEER_ID, vec![]);
    theirs.capability_groups = vec![
        Capability::Multiprotocol(v4),
        Capability::Multiprotocol(v6),
        Capability::Multiprotocol(v4_multicast),
        Capability::RouteRefresh,
        Capability::EnhancedRouteRefresh,
        Capability::ExtendedMessage,
        Capability::FourOctetAs(4_200_000_001),
        Capability::AddPath(vec![(v4, AddPathMode::Receive), (v6, AddPathMode::Send)]),
        Capability::GracefulRestart(GracefulRestart {
            restarting: true,
            notification: true,
            restart_time: 90,
            families: vec![
                GracefulRestartFamily {
                    family: v4,
                    forwarding_preserved: true,
                },
                GracefulRestartFamily {
                    family: v6,
                    forwarding_preserved: false,
                },
                GracefulRestartFamily {
                    family: v4_multicast,
                    forwarding_preserved: true,
                },
            ],
        }),
        Capability::LongLivedGracefulRestart(vec![LlgrFamily {
            family: v6,
            forwarding_preserved: false,
            stale_time: 3600,
        }]),
        Capability::ExtendedNextHop(vec![
            ExtendedNextHop {
                family: v4,
                next_hop_afi: Afi::IPV6,
            },
            ExtendedNextHop {
                family: v4_multicast,
                next_hop_afi: Afi::IPV6,
            },
        ]),
        Capability::Fqdn {
            hostname: b"node-2".to_vec(),
            domain: b"cluster.local".to_vec(),
        },
    ]
    .into_iter()
    .map(|c| vec![c])
    .collect();
    // Through the wire codec, so the capabilities are what a decoder yields.
    let mut body = Vec::new();
    theirs.encode_body(&mut body).unwrap();
    let theirs = Open::decode(&body).expect("valid OPEN");
    let n = Negotiated::new(&ours, &theirs);
    assert_eq!(n.peer_asn, 4_200_000_001);
    assert_eq!(n.peer_id, PEER_ID);
    assert_eq!((n.hold_time, n.keepalive_time), (90, 30));
    assert!(n.four_octet_as && n.extended_message);
    assert!(n.route_refresh && n.enhanced_route_refresh);
    assert_eq!(n.families.iter().collect::<Vec<_>>(), vec![v4, v6]);
    assert_eq!(n.add_path_send.iter().collect::<Vec<_>>(), vec![v4]);
    assert_eq!(n.add_path_receive.iter().collect::<Vec<_>>(), vec![v6]);
    let gr = n.graceful_restart.as_ref().expect("peer sent GR");
    assert!(gr.restarting && gr.notification);
    assert_eq!(gr.restart_time, 90);
    assert_eq!(
        gr.families,
        vec![
            GracefulRestartFamily {
                family: v4,
                forwarding_preserved: true
            },
            GracefulRestartFamily {
                family: v6,
                forwarding_preserved: false
            },
        ]
    );
    assert_eq!(
        n.llgr,
        vec![LlgrFamily {
            family: v6,
            forwarding_preserved: false,
            stale_time: 3600
        }]
    );
    assert_eq!(
        n.extended_next_hop,
        vec![ExtendedNextHop {
            family: v4,
            next_hop_afi: Afi::IPV6
        }]
    );
    assert_eq!(n.peer_hostname.as_deref(), Some("node-2"));
    assert_eq!(n.peer_domain.as_deref(), Some("cluster.local"));
    assert_eq!(n.peer_role, None);
    assert_eq!(
        n.rx_context(),
        Context {
            four_octet_as: true,
            max_message_len: 65535,
            add_path: [v6].into_iter().collect(),
            external: true,
        }
    );
    assert_eq!(
        n.tx_context(),
        Context {
            four_octet_as: true,
            max_message_len: 65535,
            add_path: [v4].into_iter().collect(),
            external: true,
        }
    );

    // A legacy peer with no capabilities: IPv4 unicast only, 2-octet AS,
    // 4096-byte messages, no refresh (RFC 4760 §8, RFC 6793).
    let legacy = Open::new(65001, 180, PEER_ID, vec![]);
    let n = Negotiated::new(&ours, &legacy);
    assert_eq!(n.families.iter().collect::<Vec<_>>(), vec![v4]);
    assert_eq!(n.hold_time, 90);
    assert!(!n.four_octet_as && !n.extended_message && !n.route_refresh);
    assert_eq!(n.graceful_restart, None);
    let legacy_ebgp = Context {
        external: true,
        ..Context::legacy()
    };
    assert_eq!(n.rx_context(), legacy_ebgp);
    assert_eq!(n.tx_context(), legacy_ebgp);
    // A peer in our own AS is internal (RFC 7606 §7.5 keeps treat-as-withdraw).
    let internal = Negotiated::new(&ours, &Open::new(64512, 180, PEER_ID, vec![]));
    assert!(!internal.external && !internal.rx_context().external);
    // Pre-standard route refresh (code 128) counts.
    let old = Open::new(
        65001,
        180,
        PEER_ID,
        vec![Capability::Unknown {
            code: 128,
            value: vec![],
        }],
    );
    assert!(Negotiated::new(&ours, &old).route_refresh);

    // The same through the FSM: the Established action carries it.
    let clock = Clock::new();
    let mut cfg = ibgp();
    cfg.peer_asn = 4_200_000_001;
    cfg.capabilities = ours.capabilities().cloned().collect();
    let mut f = to_open_confirm(cfg, &clock, theirs);
    let a = f.handle(Event::KeepAliveMsg(C1), clock.at(2));
    let [Action::Established(_, n)] = &a[..] else {
        panic!("{a:?}");
    };
    assert_eq!(n.add_path_send.iter().collect::<Vec<_>>(), vec![v4]);
    assert_eq!(n.hold_time, 90);
}

#[test]
fn jitter_is_bounded_and_deterministic() {
    for seed in [0, 1, SEED, u64::MAX] {
        let mut j = Jitter::new(seed);
        let draws: Vec<Duration> = (0..10_000).map(|_| j.scale(secs(100))).collect();
        assert!(draws.iter().all(|d| jittered(*d, secs(100))));
        assert!(draws.iter().min() < Some(&secs(76)));
        assert!(draws.iter().max() > Some(&secs(99)));
    }
    assert_eq!(Jitter::new(0).scale(Duration::ZERO), Duration::ZERO);
    assert!(Jitter::new(5).scale(Duration::MAX) <= Duration::MAX);
    // Same seed, same actions and deadlines; another seed, other deadlines.
    let clock = Clock::new();
    let run = |seed| {
        let mut cfg = ibgp();
        cfg.jitter_seed = seed;
        let mut f = Fsm::new(cfg);
        let actions = f.handle(Event::ManualStart, clock.at(0));
        (actions, f.next_timer())
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn stale_and_unknown_events_are_ignored() {
    let clock = Clock::new();
    let mut f = established(ibgp(), &clock);
    let other = ConnId(99);
    let before: Vec<(Timer, Instant)> = f.timers().collect();
    for e in [
        Event::KeepAliveMsg(other),
        Event::UpdateMsg(other),
        Event::NotifMsg(other, notification(6, 2)),
        Event::TcpConnectionFails(other),
        Event::HoldTimerExpires(other),
        Event::DelayOpenTimerExpires(C1),
        Event::ConnectRetryTimerExpires,
        Event::IdleHoldTimerExpires,
        Event::ManualStart,
    ] {
        assert_eq!(f.handle(e.clone(), clock.at(5)), vec![], "{e:?}");
        assert_eq!(f.timers().collect::<Vec<_>>(), before, "{e:?}");
    }
    assert_eq!(f.state(), State::Established);
}

/// Random event sequences: nothing panics and the invariants hold.
#[test]
fn random_events_keep_invariants() {
    let clock = Clock::new();
    let (mut established, mut collisions, mut failures) = (0, 0, 0);
    for seed in 1..40u64 {
        let mut cfg = ibgp();
        cfg.jitter_seed = seed;
        cfg.passive = seed % 5 == 1;
        cfg.delay_open = (seed % 3 == 1).then(|| secs(2));
        cfg.hold_time = if seed % 7 == 1 { 0 } else { 9 };
        let mut f = Fsm::new(cfg);
        let mut rng = Jitter::new(seed * 7919);
        let mut ms = 0u64;
        let mut open_ids = vec![ConnId(1)];
        for _ in 0..3000 {
            ms += rng.next_u64() % 3000;
            let now = clock.at_ms(ms);
            // Mostly a live connection (sometimes a dead or unknown one).
            let c = if !f.conns.is_empty() && rng.next_u64() & 7 != 0 {
                f.conns[(rng.next_u64() % f.conns.len() as u64) as usize].id
            } else {
                open_ids[(rng.next_u64() % open_ids.len() as u64) as usize]
            };
            let peer_id = if rng.next_u64() & 1 == 0 { LOW } else { HIGH };
            // Half the time, what a well-behaved peer would do next.
            let polite = match f.conn(c).map(|x| (x.phase, x.dir)) {
                Some((Phase::Connecting, Direction::Outgoing)) => Some(Event::TcpCrAcked(c)),
                Some((Phase::DelayOpen | Phase::OpenSent, _)) => Some(Event::BgpOpen(c, peer_open(64512, peer_id, 9))),
                Some((Phase::OpenConfirm | Phase::Established, _)) => Some(Event::KeepAliveMsg(c)),
                _ => None,
            };
            let event = match rng.next_u64() % 40 {
                20..=39 if polite.is_some() => polite.unwrap_or(Event::ManualStart),
                0 => Event::ManualStart,
                1 => Event::AutomaticStart,
                2 if rng.next_u64() & 7 == 0 => Event::ManualStop,
                3 => {
                    let id = f.new_conn_id();
                    open_ids.push(id);
                    Event::TcpConnectionConfirmed(id)
                }
                4 => Event::TcpCrAcked(c),
                5 if rng.next_u64() & 3 == 0 => Event::TcpConnectionFails(c),
                6..=8 => Event::BgpOpen(c, peer_open(64512, peer_id, 9)),
                9..=11 => Event::KeepAliveMsg(c),
                12 => Event::UpdateMsg(c),
                13 if rng.next_u64() & 7 == 0 => Event::NotifMsg(c, notification(6, 4)),
                _ => match f.next_timer() {
                    Some((t, deadline)) => {
                        ms = ms.max(deadline.duration_since(clock.0).as_millis() as u64);
                        t.expiry_event()
                    }
                    None => Event::AutomaticStart,
                },
            };
            let now = now.max(clock.at_ms(ms));
            for a in f.handle(event, now) {
                match a {
                    Action::Connect(id) => open_ids.push(id),
                    Action::Established(..) => established += 1,
                    Action::SendNotification(_, n) if (n.code, n.subcode) == (6, 7) => collisions += 1,
                    Action::SessionDown { .. } => failures += 1,
                    _ => {}
                }
            }
            let incoming = f.conns.iter().filter(|c| c.dir == Direction::Incoming);
            let outgoing = f.conns.iter().filter(|c| c.dir == Direction::Outgoing);
            assert!(incoming.count() <= 1 && outgoing.count() <= 1);
            if f.established_conn().is_some() {
                assert_eq!(f.conns.len(), 1);
                assert_eq!(f.state(), State::Established);
                assert!(f.established_since().is_some());
            }
            if f.mode != Mode::Running {
                assert!(f.conns.is_empty());
            }
            assert_eq!(f.is_armed(Timer::IdleHold), f.mode == Mode::Waiting, "{f:?}");
            // Timers only for live connections.
            for (t, _) in f.timers() {
                if let Timer::Hold(id) | Timer::Keepalive(id) | Timer::DelayOpen(id) = t {
                    assert!(f.conn(id).is_some(), "{t:?} for a closed connection");
                }
            }
        }
    }
    // The walk must reach the interesting places, or it proves little.
    assert!(
        established > 1000 && collisions > 200 && failures > 1000,
        "{established} {collisions} {failures}"
    );
}

/// A GR capability for IPv4 with the N bit as given (RFC 4724, RFC 8538).
fn gr(notification: bool) -> Capability {
    Capability::GracefulRestart(GracefulRestart {
        restarting: false,
        notification,
        restart_time: 120,
        families: vec![GracefulRestartFamily {
            family: Family::IPV4_UNICAST,
            forwarding_preserved: true,
        }],
    })
}

/// Established on C1 with both sides announcing GR (with the N bit as given).
fn established_with_gr(notification: bool, clock: &Clock) -> Fsm {
    let mut cfg = ibgp();
    cfg.capabilities.push(gr(notification));
    let mut open = peer_open(cfg.peer_asn, PEER_ID, 90);
    open.capability_groups.push(vec![gr(notification)]);
    let mut f = to_open_confirm(cfg, clock, open);
    f.handle(Event::KeepAliveMsg(C1), clock.at(2));
    assert_eq!(f.state(), State::Established);
    f
}

#[test]
fn a_new_connection_from_a_graceful_restart_peer_replaces_the_established_one() {
    let clock = Clock::new();
    let mut f = established_with_gr(false, &clock);
    let c3 = f.new_conn_id();
    let a = f.handle(Event::TcpConnectionConfirmed(c3), clock.at(5));
    // RFC 4724 §4.2: the old session is closed (no NOTIFICATION), the new one kept.
    assert!(a.contains(&Action::CloseConnection(C1)), "{a:?}");
    assert!(a.contains(&Action::SessionDown {
        reason: DownReason::ConnectionClosed
    }));
    assert!(!a.iter().any(|x| matches!(x, Action::SendNotification(..))), "{a:?}");
    assert!(a.contains(&Action::SendOpen(c3, f.local_open().clone())));
    assert_eq!(f.established_conn(), None);
    assert!(f.connection_state(c3).is_some());
}

#[test]
fn with_the_n_bit_an_administrative_stop_is_sent_as_a_hard_reset() {
    let clock = Clock::new();
    let mut f = established_with_gr(true, &clock);
    assert!(f.negotiated().is_some_and(|n| n.graceful_notification));
    let a = f.handle(Event::ManualStop, clock.at(5));
    let sent = a.iter().find_map(|x| match x {
        Action::SendNotification(_, n) => Some(n.clone()),
        _ => None,
    });
    // RFC 8538 §5: Cease / Hard Reset carrying Cease / Administrative Shutdown.
    assert_eq!(
        sent,
        Some(Notification {
            code: 6,
            subcode: 9,
            data: vec![6, 2]
        })
    );
}

#[test]
fn without_the_n_bit_an_administrative_stop_is_a_plain_cease() {
    let clock = Clock::new();
    let mut f = established_with_gr(false, &clock);
    assert!(f.negotiated().is_some_and(|n| !n.graceful_notification));
    let a = f.handle(Event::ManualStop, clock.at(5));
    assert!(a.contains(&Action::SendNotification(C1, notification(6, 2))), "{a:?}");
}

#[test]
fn finding_19_reserved_bits_do_not_hide_graceful_restart_and_the_last_instance_counts() {
    let clock = Clock::new();
    let mut cfg = ibgp();
    cfg.capabilities.push(gr(false));
    let mut open = peer_open(cfg.peer_asn, PEER_ID, 90);
    // Restart flags with a reserved bit (0x2000) and per-family flags 0x81:
    // read with the reserved bits ignored (RFC 4724 §3).
    let odd = Capability::decode(64, &[0x20, 90, 0, 1, 1, 0x81]);
    assert!(
        matches!(odd, Capability::Unknown { .. }),
        "kept as bytes for re-encoding"
    );
    open.capability_groups.push(vec![gr(false), odd]);
    let f = to_open_confirm(cfg, &clock, open);
    let gr = f
        .negotiated()
        .and_then(|n| n.graceful_restart.clone())
        .expect("GR negotiated");
    assert_eq!(gr.restart_time, 90, "the last instance counts, reserved bits ignored");
    assert!(gr.families.iter().all(|x| x.forwarding_preserved));
}

/// Review finding 24: a ROUTE-REFRESH of the wrong length is answered 7/1
/// (data: the message) only when Enhanced Route Refresh was negotiated (RFC
/// 7313 §5); otherwise it is a Message Header Error / Bad Message Length with
/// the length (RFC 4271 §6.1).
#[test]
fn finding_24_route_refresh_length_error_uses_7_1_only_with_enhanced_route_refresh() {
    for enhanced in [false, true] {
        let clock = Clock::new();
        let mut cfg = ibgp();
        let mut open = peer_open(cfg.peer_asn, PEER_ID, 90);
        if enhanced {
            cfg.capabilities.push(Capability::EnhancedRouteRefresh);
            open.capability_groups.push(vec![Capability::EnhancedRouteRefresh]);
        }
        let mut f = to_open_confirm(cfg, &clock, open);
        f.handle(Event::KeepAliveMsg(C1), clock.at(2));
        assert_eq!(f.negotiated().map(|n| n.enhanced_route_refresh), Some(enhanced));
        let err = crate::route_refresh::RouteRefresh::decode(&[0, 1, 0]).unwrap_err();
        let a = f.handle(Event::BgpHeaderErr(C1, err), clock.at(3));
        let sent = a.iter().find_map(|x| match x {
            Action::SendNotification(_, n) => Some((n.code, n.subcode, n.data.len())),
            _ => None,
        });
        // 19 octets of header and 3 of body: 22.
        let expected = if enhanced { (7, 1, 22) } else { (1, 2, 2) };
        assert_eq!(sent, Some(expected), "{a:?}");
        if !enhanced {
            assert!(a.contains(&Action::SendNotification(
                C1,
                Notification {
                    code: 1,
                    subcode: 2,
                    data: vec![0, 22]
                }
            )));
        }
    }
}
