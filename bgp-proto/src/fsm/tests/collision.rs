//! Connection collisions (RFC 4271 §6.8) and connecting.

use super::*;

/// Both sides connect: C1 is ours (OpenSent), the peer's comes in as the
/// returned id (OpenSent too).
fn two_connections(local_id: Ipv4Addr, clock: &Clock) -> (Fsm, ConnId) {
    let mut cfg = ibgp();
    cfg.local_id = local_id;
    let mut f = open_sent(cfg, clock);
    let c2 = f.new_conn_id();
    assert_eq!(
        f.handle(Event::TcpConnectionConfirmed(c2), clock.at(1)),
        vec![Action::SendOpen(c2, f.local_open().clone())]
    );
    assert_eq!(deadline(&f, Timer::Hold(c2)), Some(clock.at(1) + OPEN_HOLD_TIME));
    assert_eq!(f.connection_state(C1), Some(State::OpenSent));
    assert_eq!(f.connection_state(c2), Some(State::OpenSent));
    (f, c2)
}

#[test]
fn collision_local_id_higher_closes_incoming() {
    let clock = Clock::new();
    let collision = notification(6, 7);
    // OPEN on ours first, then on theirs: the incoming one (just opened) loses.
    let (mut f, c2) = two_connections(HIGH, &clock);
    let a = f.handle(Event::BgpOpen(C1, peer_open(64512, LOW, 90)), clock.at(2));
    assert_eq!(a[0], Action::SendKeepalive(C1));
    assert_eq!(f.connection_state(C1), Some(State::OpenConfirm));
    let a = f.handle(Event::BgpOpen(c2, peer_open(64512, LOW, 90)), clock.at(2));
    assert_eq!(
        a,
        vec![
            Action::SendNotification(c2, collision.clone()),
            Action::CloseConnection(c2),
        ]
    );
    assert_eq!(deadline(&f, Timer::Hold(c2)), None);
    assert_eq!(f.connection_state(c2), None);
    assert_eq!(f.state(), State::OpenConfirm);
    let a = f.handle(Event::KeepAliveMsg(C1), clock.at(3));
    assert!(matches!(a[0], Action::Established(C1, _)));

    // OPEN on theirs first (OpenConfirm), then ours: the incoming one is closed
    // and ours proceeds to OpenConfirm.
    let (mut f, c2) = two_connections(HIGH, &clock);
    f.handle(Event::BgpOpen(c2, peer_open(64512, LOW, 90)), clock.at(2));
    assert_eq!(f.connection_state(c2), Some(State::OpenConfirm));
    assert_eq!(armed(&f), vec![Timer::Hold(C1), Timer::Hold(c2), Timer::Keepalive(c2)]);
    let a = f.handle(Event::BgpOpen(C1, peer_open(64512, LOW, 90)), clock.at(2));
    assert_eq!(
        a,
        vec![
            Action::SendNotification(c2, collision),
            Action::CloseConnection(c2),
            Action::SendKeepalive(C1),
        ]
    );
    assert_eq!(armed(&f), vec![Timer::Hold(C1), Timer::Keepalive(C1)]);
    assert_eq!(deadline(&f, Timer::Hold(C1)), Some(clock.at(2) + secs(90)));
    assert_eq!(f.connection_state(C1), Some(State::OpenConfirm));
    // A late stale timer for the closed connection is ignored.
    assert_eq!(f.handle(Event::HoldTimerExpires(c2), clock.at(999)), vec![]);
}

#[test]
fn collision_local_id_lower_closes_outgoing() {
    let clock = Clock::new();
    let (mut f, c2) = two_connections(LOW, &clock);
    f.handle(Event::BgpOpen(C1, peer_open(64512, HIGH, 90)), clock.at(2));
    let a = f.handle(Event::BgpOpen(c2, peer_open(64512, HIGH, 90)), clock.at(2));
    assert_eq!(
        a,
        vec![
            Action::SendNotification(C1, notification(6, 7)),
            Action::CloseConnection(C1),
            Action::SendKeepalive(c2),
        ]
    );
    assert_eq!(armed(&f), vec![Timer::Hold(c2), Timer::Keepalive(c2)]);
    assert_eq!(deadline(&f, Timer::Hold(c2)), Some(clock.at(2) + secs(90)));
    let a = f.handle(Event::KeepAliveMsg(c2), clock.at(3));
    assert_eq!(deadline(&f, Timer::Hold(c2)), Some(clock.at(3) + secs(90)));
    assert!(matches!(&a[0], Action::Established(c, n) if *c == c2 && n.peer_id == HIGH));
    assert_eq!(f.established_conn(), Some(c2));
    assert_eq!(f.state(), State::Established);
}

#[test]
fn collision_with_equal_ids_keeps_the_larger_as() {
    let clock = Clock::new();
    let mut cfg = ibgp();
    cfg.local_id = LOW;
    cfg.peer_asn = 65001; // eBGP, our 64512 is smaller: ours loses.
    let mut f = open_sent(cfg, &clock);
    let c2 = f.new_conn_id();
    f.handle(Event::TcpConnectionConfirmed(c2), clock.at(1));
    f.handle(Event::BgpOpen(c2, peer_open(65001, LOW, 90)), clock.at(2));
    let a = f.handle(Event::BgpOpen(C1, peer_open(65001, LOW, 90)), clock.at(2));
    assert_eq!(
        a,
        vec![
            Action::SendNotification(C1, notification(6, 7)),
            Action::CloseConnection(C1),
        ]
    );
    assert_eq!(deadline(&f, Timer::Hold(C1)), None);
    assert_eq!(f.connection_state(c2), Some(State::OpenConfirm));
}

#[test]
fn established_closes_the_other_connection() {
    let clock = Clock::new();
    let (mut f, c2) = two_connections(HIGH, &clock);
    f.handle(Event::BgpOpen(C1, peer_open(64512, LOW, 90)), clock.at(2));
    // c2 still waits for the peer's OPEN when C1 comes up.
    let a = f.handle(Event::KeepAliveMsg(C1), clock.at(3));
    assert_eq!(
        a[..2],
        [
            Action::SendNotification(c2, notification(6, 7)),
            Action::CloseConnection(c2),
        ]
    );
    assert!(matches!(a[2], Action::Established(C1, _)));
    assert_eq!(deadline(&f, Timer::Hold(C1)), Some(clock.at(3) + secs(90)));
    assert_eq!(deadline(&f, Timer::Hold(c2)), None);
    assert_eq!(f.connection_state(c2), None);
}

#[test]
fn a_silent_incoming_connection_gives_way_to_a_new_one() {
    let clock = Clock::new();
    let mut f = Fsm::new(FsmConfig {
        passive: true,
        ..ibgp()
    });
    f.handle(Event::ManualStart, clock.at(0));
    let first = f.new_conn_id();
    f.handle(Event::TcpConnectionConfirmed(first), clock.at(1));
    assert_eq!(f.connection_state(first), Some(State::OpenSent));
    // The peer never sends an OPEN on it; a second connection arrives.
    let second = f.new_conn_id();
    let a = f.handle(Event::TcpConnectionConfirmed(second), clock.at(2));
    assert!(a.contains(&Action::CloseConnection(first)), "{a:?}");
    assert!(
        a.iter().any(|x| matches!(x, Action::SendOpen(c, _) if *c == second)),
        "{a:?}"
    );
    assert_eq!(f.connection_state(first), None);
    assert_eq!(f.connection_state(second), Some(State::OpenSent));
}

#[test]
fn incoming_while_established_is_closed() {
    let clock = Clock::new();
    let mut f = established(ibgp(), &clock);
    let c3 = f.new_conn_id();
    assert_eq!(
        f.handle(Event::TcpConnectionConfirmed(c3), clock.at(5)),
        vec![
            Action::SendNotification(c3, notification(6, 7)),
            Action::CloseConnection(c3),
        ]
    );
    assert_eq!(f.state(), State::Established);
    assert_eq!(f.established_conn(), Some(C1));
    assert_eq!(f.connection_state(c3), None);
}

#[test]
fn incoming_while_connecting_replaces_our_attempt() {
    let clock = Clock::new();
    let mut f = Fsm::new(ibgp());
    f.handle(Event::ManualStart, clock.at(0));
    let c2 = f.new_conn_id();
    assert_eq!(
        f.handle(Event::TcpConnectionConfirmed(c2), clock.at(1)),
        vec![
            Action::CloseConnection(C1),
            Action::SendOpen(c2, f.local_open().clone()),
        ]
    );
    assert_armed(&f, &[(Timer::Hold(c2), clock.at(1) + OPEN_HOLD_TIME)]);
    assert_eq!(f.state(), State::OpenSent);
    // Our abandoned connect completing late is closed.
    assert_eq!(
        f.handle(Event::TcpCrAcked(C1), clock.at(2)),
        vec![Action::CloseConnection(C1)]
    );
    // Once the incoming connection has carried the peer's OPEN, a second
    // incoming connection is refused.
    f.handle(Event::BgpOpen(c2, peer_open(64512, PEER_ID, 90)), clock.at(2));
    assert_eq!(f.connection_state(c2), Some(State::OpenConfirm));
    let c3 = f.new_conn_id();
    assert_eq!(
        f.handle(Event::TcpConnectionConfirmed(c3), clock.at(2)),
        vec![Action::CloseConnection(c3)]
    );
    assert_eq!(f.connection_state(c2), Some(State::OpenConfirm));
}

#[test]
fn idle_refuses_incoming() {
    let clock = Clock::new();
    let mut f = Fsm::new(ibgp());
    assert_eq!(
        f.handle(Event::TcpConnectionConfirmed(ConnId(77)), clock.at(0)),
        vec![Action::CloseConnection(ConnId(77))]
    );
    assert_eq!(f.state(), State::Idle);
}

#[test]
fn connect_failure_and_retry() {
    let clock = Clock::new();
    let mut f = Fsm::new(ibgp());
    f.handle(Event::ManualStart, clock.at(0));
    assert_eq!(
        f.handle(Event::TcpConnectionFails(C1), clock.at(1)),
        vec![Action::CloseConnection(C1)]
    );
    assert_eq!(f.state(), State::Active);
    let (t, deadline) = f.next_timer().expect("connect retry armed");
    assert_eq!(t, Timer::ConnectRetry);
    // Reported up to the slack early still counts (timer wheels round).
    let early = deadline - TIMER_SLACK;
    let a = f.handle(Event::ConnectRetryTimerExpires, early);
    assert_eq!(a, vec![Action::Connect(ConnId(2))]);
    assert!(jittered(armed_for(&f, Timer::ConnectRetry, early), secs(120)));
    assert_eq!(f.state(), State::Connect);
    // No answer at all: the attempt is dropped and a new one made.
    let (_, deadline) = f.next_timer().expect("armed");
    let a = f.handle(Event::ConnectRetryTimerExpires, deadline);
    assert_eq!(a, vec![Action::CloseConnection(ConnId(2)), Action::Connect(ConnId(3))]);
    assert!(jittered(armed_for(&f, Timer::ConnectRetry, deadline), secs(120)));
    // TCP lost in OpenSent: Active with ConnectRetry restarted.
    f.handle(Event::TcpCrAcked(ConnId(3)), clock.at(300));
    assert_eq!(armed(&f), vec![Timer::Hold(ConnId(3))]);
    let a = f.handle(Event::TcpConnectionFails(ConnId(3)), clock.at(301));
    assert_eq!(a, vec![Action::CloseConnection(ConnId(3))]);
    assert_eq!(armed(&f), vec![Timer::ConnectRetry]);
    assert_eq!(f.state(), State::Active);
    assert_eq!(f.last_error(), Some(&DownReason::ConnectionClosed));
}
