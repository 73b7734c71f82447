//! Two sessions back to back over a simulated link with a fake clock.

mod common;

use std::time::Duration;

use bfd::{Diagnostic, Discard, Event, State};
use common::{config, ms, Link, Side};

#[test]
fn three_way_handshake_down_init_up() {
    // B passive: the handshake is then ordered, A speaks first.
    let mut b = config(2, 100, 100, 3);
    b.passive = true;
    let mut link = Link::new(config(1, 100, 100, 3), b, ms(1));
    assert_eq!(link.b.next_deadline(), None, "passive and unheard: nothing to do");
    link.run_until(ms(10));

    // t=0 A sends Down; t=1 B hears it → Init, answers Init at once;
    // t=2 A hears Init → Up; t=3 B hears Up → Up.
    assert_eq!(link.events_of(Side::B), vec![(ms(1), Event::Init), (ms(3), Event::Up)]);
    assert_eq!(link.events_of(Side::A), vec![(ms(2), Event::Up)]);
    let states: Vec<_> = link.sent.iter().take(3).map(|l| (l.at, l.side, l.what.state)).collect();
    assert_eq!(
        states,
        vec![
            (ms(0), Side::A, State::Down),
            (ms(1), Side::B, State::Init),
            (ms(2), Side::A, State::Up)
        ]
    );
    let first = link.sent[0].what;
    assert_eq!(first.your_discriminator, 0, "A does not know B yet");
    assert_eq!(
        first.desired_min_tx, 1_000_000,
        "not Up: at least 1 s (RFC 5880 §6.8.3)"
    );
    assert_eq!(link.sent[1].what.your_discriminator, 1);
    assert_eq!(link.a.remote_discriminator(), 2);
    assert_eq!(link.b.remote_discriminator(), 1);
}

#[test]
fn both_active_sessions_come_up_together() {
    let mut link = Link::new(config(1, 100, 100, 3), config(2, 100, 100, 3), ms(5));
    link.run_until(ms(20));
    for side in [Side::A, Side::B] {
        assert_eq!(link.events_of(side), vec![(ms(5), Event::Init), (ms(10), Event::Up)]);
    }
}

#[test]
fn timers_negotiate_to_the_slower_side() {
    // A: TX 100, RX 300, mult 3. B: TX 200, RX 50, mult 5.
    let mut link = Link::new(config(1, 100, 300, 3), config(2, 200, 50, 5), ms(1));
    link.bring_up();
    // A sends at max(A TX 100, B RX 50); B at max(B TX 200, A RX 300).
    assert_eq!(link.a.transmit_interval(), ms(100));
    assert_eq!(link.b.transmit_interval(), ms(300));
    // A detects with B's mult × max(A RX 300, B TX 200); B with A's mult × max(B RX 50, A TX 100).
    assert_eq!(link.a.detection_time(), Some(ms(1500)));
    assert_eq!(link.b.detection_time(), Some(ms(300)));

    let from = link.elapsed();
    link.run_for(ms(10_000));
    for (side, interval) in [(Side::A, ms(100)), (Side::B, ms(300))] {
        let times: Vec<Duration> = link
            .sent_by(side)
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| *t > from)
            .collect();
        assert!(times.len() > 30, "{side:?} sent {}", times.len());
        for gap in times.windows(2).map(|w| w[1] - w[0]) {
            assert!(
                gap >= interval * 3 / 4 && gap <= interval,
                "{side:?}: gap {gap:?} for {interval:?}"
            );
        }
    }
    assert!(link.discarded.is_empty(), "{:?}", link.discarded);
}

#[test]
fn before_up_the_slow_rate_applies_and_up_speeds_up_with_a_poll() {
    let mut link = Link::new(config(1, 50, 50, 3), config(2, 50, 50, 3), ms(1));
    assert_eq!(link.a.transmit_interval(), ms(1000));
    link.run_until(ms(2));
    assert_eq!(link.a.state(), State::Up);
    // Faster TX takes effect at once; the Poll tells the remote.
    assert_eq!(link.a.transmit_interval(), ms(50));
    let up_packet = link
        .sent_by(Side::A)
        .into_iter()
        .find(|(_, p)| p.state == State::Up)
        .unwrap()
        .1;
    assert!(up_packet.poll);
    assert_eq!(up_packet.desired_min_tx, 50_000);
    link.run_for(ms(200));
    assert!(!link.a.poll_in_progress());
    assert!(link.sent_by(Side::B).iter().any(|(_, p)| p.final_ && !p.poll));
}

#[test]
fn down_comes_exactly_when_the_detection_time_expires_after_a_cut() {
    let mut link = Link::new(config(1, 100, 300, 3), config(2, 200, 50, 5), ms(1));
    link.bring_up();
    link.run_for(ms(777));
    link.cut();
    let cut_at = link.elapsed();
    link.run_for(ms(5000));

    // Each side goes Down exactly its detection time after the last packet it accepted.
    let a_last = link.last_received_by(Side::A);
    let b_last = link.last_received_by(Side::B);
    assert!(a_last <= cut_at && b_last <= cut_at);
    let down = |diag| Event::Down {
        from: State::Up,
        diag,
        remote_admin_down: false,
    };
    assert_eq!(
        link.events_of(Side::A),
        vec![
            (ms(1), Event::Init),
            (ms(2), Event::Up),
            (a_last + 5 * ms(300), down(Diagnostic::ControlDetectionTimeExpired))
        ]
    );
    assert_eq!(
        link.events_of(Side::B)[2..],
        [(b_last + 3 * ms(100), down(Diagnostic::ControlDetectionTimeExpired))]
    );
    assert!(down(Diagnostic::ControlDetectionTimeExpired).is_path_failure());
    assert_eq!(link.a.local_diag(), Diagnostic::ControlDetectionTimeExpired);
    assert_eq!(
        link.a.remote_discriminator(),
        0,
        "RFC 5880 §6.8.1: forgotten after a Detection Time"
    );
    // Down again: back to the slow rate, diag 1 on the wire.
    let last = *link.sent_by(Side::A).last().unwrap();
    assert_eq!(
        (last.1.state, last.1.diag),
        (State::Down, Diagnostic::ControlDetectionTimeExpired)
    );
    assert_eq!(last.1.desired_min_tx, 1_000_000);
}

#[test]
fn the_detection_deadline_is_exact_to_the_nanosecond() {
    let mut link = Link::new(config(1, 100, 100, 3), config(2, 100, 100, 4), ms(1));
    link.bring_up();
    link.cut();
    let deadline = link.a.detection_deadline().unwrap();
    assert_eq!(deadline, link.at(link.last_received_by(Side::A)) + 4 * ms(100));
    let mut a = link.a.clone();
    assert_eq!(a.on_timer(deadline - Duration::from_nanos(1)), None);
    assert_eq!(a.state(), State::Up);
    assert!(a.on_timer(deadline).is_some());
    assert_eq!(a.state(), State::Down);
}

#[test]
fn remote_admin_down_is_down_but_not_a_failure() {
    let mut link = Link::new(config(1, 100, 100, 3), config(2, 100, 100, 3), ms(1));
    link.bring_up();
    let now = link.now;
    assert_eq!(link.b.set_admin_down(now), Some(Event::AdminDown { from: State::Up }));
    assert_eq!(link.b.set_admin_down(now), None, "already AdminDown");
    let t = link.elapsed();
    link.run_for(ms(5000));

    let event = Event::Down {
        from: State::Up,
        diag: Diagnostic::NeighborSignaledSessionDown,
        remote_admin_down: true,
    };
    assert_eq!(link.events_of(Side::A)[2..], [(t + ms(1), event)]);
    assert!(!event.is_path_failure(), "RFC 5882 §3.2");
    assert_eq!(link.a.state(), State::Down, "stays Down while the remote is AdminDown");
    assert_eq!(link.a.local_diag(), Diagnostic::NeighborSignaledSessionDown);
    let b_sent = link.sent_by(Side::B);
    let last = b_sent.last().unwrap().1;
    assert_eq!(
        (last.state, last.diag),
        (State::AdminDown, Diagnostic::AdministrativelyDown)
    );
    assert!(
        b_sent.iter().filter(|(at, _)| *at > t).count() >= 4,
        "AdminDown keeps being sent"
    );
    assert!(link
        .discarded
        .iter()
        .all(|d| d.side == Side::B && d.what == Discard::AdminDown));
    assert!(!link.discarded.is_empty());

    // Admin up: the handshake runs again.
    let now = link.now;
    link.b.set_admin_up(now);
    assert_eq!(link.b.state(), State::Down);
    link.run_for(ms(3000));
    assert_eq!((link.a.state(), link.b.state()), (State::Up, State::Up));
}

#[test]
fn remote_down_while_up_is_a_failure_with_diag_3() {
    let mut link = Link::new(config(1, 100, 100, 3), config(2, 100, 100, 3), ms(1));
    link.bring_up();
    // B times out on its own (A's packets lost one way), goes Down, tells A.
    link.a_to_b = false;
    link.run_for(ms(350));
    let b_down = link.events_of(Side::B)[2];
    assert!(matches!(
        b_down.1,
        Event::Down {
            diag: Diagnostic::ControlDetectionTimeExpired,
            ..
        }
    ));
    let a_down = link.events_of(Side::A)[2];
    let expected = Event::Down {
        from: State::Up,
        diag: Diagnostic::NeighborSignaledSessionDown,
        remote_admin_down: false,
    };
    assert_eq!(a_down, (b_down.0 + ms(1), expected));
    assert!(expected.is_path_failure());
}

#[test]
fn slowing_tx_while_up_waits_for_the_final() {
    let mut link = Link::new(config(1, 100, 100, 3), config(2, 100, 100, 3), ms(1));
    link.bring_up();
    // Lose B's answers for a while: the Poll goes on and the old rate stays.
    link.drop_finals = true;
    let now = link.now;
    link.a.set_timers(now, ms(400), ms(100)).unwrap();
    assert!(link.a.poll_in_progress());
    assert_eq!(
        link.a.transmit_interval(),
        ms(100),
        "RFC 5880 §6.8.3: not before the Final"
    );
    let t = link.elapsed();
    link.run_for(ms(1000));
    let polls: Vec<_> = link.sent_by(Side::A).into_iter().filter(|(at, _)| *at > t).collect();
    assert!(polls.len() >= 8, "still sending at ~100 ms: {}", polls.len());
    for (at, p) in &polls {
        assert!(p.poll && !p.final_ && p.desired_min_tx == 400_000, "{at:?}: {p:?}");
    }
    // B follows the new value at once: its detection time for A grows.
    assert_eq!(link.b.detection_time(), Some(ms(1200)));
    assert!(link
        .sent_by(Side::B)
        .iter()
        .any(|(at, p)| *at > t && p.final_ && !p.poll));
    assert_eq!(link.a.state(), State::Up);

    link.drop_finals = false;
    let t = link.elapsed();
    link.run_for(ms(300));
    assert!(!link.a.poll_in_progress());
    assert_eq!(link.a.transmit_interval(), ms(400));
    let after: Vec<_> = link
        .sent_by(Side::A)
        .into_iter()
        .filter(|(at, _)| *at > t + ms(200))
        .collect();
    assert!(after.iter().all(|(_, p)| !p.poll));
    link.run_for(ms(5000));
    assert_eq!((link.a.state(), link.b.state()), (State::Up, State::Up));
}

#[test]
fn faster_rx_while_up_keeps_the_old_detection_time_until_the_final() {
    let mut link = Link::new(config(1, 100, 500, 3), config(2, 100, 100, 3), ms(1));
    link.bring_up();
    assert_eq!(link.a.detection_time(), Some(ms(1500)));
    let now = link.now;
    link.a.set_timers(now, ms(100), ms(100)).unwrap();
    // B still sends every ~500 ms until it hears the Poll: A must not shrink its
    // detection time to 300 ms yet (RFC 5880 §6.8.3).
    assert_eq!(link.a.detection_time(), Some(ms(1500)));
    link.run_for(ms(1200));
    assert_eq!(link.a.state(), State::Up);
    assert!(!link.a.poll_in_progress());
    assert_eq!(link.a.detection_time(), Some(ms(300)));
    assert_eq!(link.b.transmit_interval(), ms(100));
}

#[test]
fn a_change_during_a_poll_needs_another_round() {
    let mut link = Link::new(config(1, 100, 100, 3), config(2, 100, 100, 3), ms(1));
    link.bring_up();
    let now = link.now;
    link.a.set_timers(now, ms(200), ms(100)).unwrap();
    link.a.set_timers(now, ms(300), ms(100)).unwrap();
    // One Final arrives: it may answer the 200 ms Poll, so keep polling.
    let fin = bfd::ControlPacket {
        final_: true,
        ..link.sent_by(Side::B).last().unwrap().1
    };
    link.deliver(Side::A, &fin);
    assert!(link.a.poll_in_progress());
    assert_eq!(link.a.transmit_interval(), ms(100));
    link.deliver(Side::A, &fin);
    assert!(!link.a.poll_in_progress());
    assert_eq!(link.a.transmit_interval(), ms(300));
}
