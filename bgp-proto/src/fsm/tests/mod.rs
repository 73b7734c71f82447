//! FSM tests: each drives a fresh [`Fsm`] with a fake clock and checks the
//! actions, the state and the armed timers.

use super::*;
use crate::capability::{AddPathMode, ExtendedNextHop, GracefulRestart, GracefulRestartFamily, LlgrFamily, Role};
use crate::error::Reason;
use crate::open::AS_TRANS;
use crate::types::{Afi, Context, Family, Safi};

const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 11);
const PEER_ID: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 12);
const SEED: u64 = 42;
const C1: ConnId = ConnId(1);
/// Router ids for collision tests: LOW loses to HIGH (RFC 4271 §6.8).
const LOW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const HIGH: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Fake clock: a base instant plus offsets.
struct Clock(Instant);

impl Clock {
    fn new() -> Clock {
        Clock(Instant::now())
    }
    fn at(&self, s: u64) -> Instant {
        self.0 + secs(s)
    }
    fn at_ms(&self, ms: u64) -> Instant {
        self.0 + Duration::from_millis(ms)
    }
}

fn ibgp() -> FsmConfig {
    let mut cfg = FsmConfig::new(64512, 64512, LOCAL_ID);
    cfg.jitter_seed = SEED;
    cfg
}

fn peer_open(asn: u32, id: Ipv4Addr, hold: u16) -> Open {
    Open::new(
        asn,
        hold,
        id,
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(asn),
        ],
    )
}

/// True when `d` lies in [0.75, 1.0] x `base` (RFC 4271 §10 jitter).
fn jittered(d: Duration, base: Duration) -> bool {
    d * 4 >= base * 3 && d <= base
}

/// Deadline of `t`, if it is armed.
fn deadline(f: &Fsm, t: Timer) -> Option<Instant> {
    f.timers().find(|(x, _)| *x == t).map(|(_, d)| d)
}

/// How long after `since` the armed timer `t` fires.
fn armed_for(f: &Fsm, t: Timer, since: Instant) -> Duration {
    let d = deadline(f, t).unwrap_or_else(|| panic!("{t:?} is not armed: {f:?}"));
    d.saturating_duration_since(since)
}

/// Orders timers for comparison: connection-less ones first, then by kind and connection.
fn timer_order(t: &Timer) -> (u8, u64) {
    match *t {
        Timer::ConnectRetry => (0, 0),
        Timer::IdleHold => (1, 0),
        Timer::Hold(c) => (2, c.0),
        Timer::Keepalive(c) => (3, c.0),
        Timer::DelayOpen(c) => (4, c.0),
    }
}

/// The armed timers, deadlines left out, in [`timer_order`].
fn armed(f: &Fsm) -> Vec<Timer> {
    let mut v: Vec<Timer> = f.timers().map(|(t, _)| t).collect();
    v.sort_by_key(timer_order);
    v
}

/// Asserts exactly these timers are armed, with these deadlines (in any order).
fn assert_armed(f: &Fsm, expected: &[(Timer, Instant)]) {
    let mut got: Vec<(Timer, Instant)> = f.timers().collect();
    let mut expected = expected.to_vec();
    got.sort_by_key(|(t, _)| timer_order(t));
    expected.sort_by_key(|(t, _)| timer_order(t));
    assert_eq!(got, expected);
}

fn notification(code: u8, subcode: u8) -> Notification {
    Notification::new(code, subcode)
}

/// Drives a fresh FSM to OpenConfirm on C1 with the peer's OPEN `open`.
fn to_open_confirm(cfg: FsmConfig, clock: &Clock, open: Open) -> Fsm {
    let mut f = Fsm::new(cfg);
    f.handle(Event::ManualStart, clock.at(0));
    f.handle(Event::TcpCrAcked(C1), clock.at(1));
    f.handle(Event::BgpOpen(C1, open), clock.at(1));
    assert_eq!(f.state(), State::OpenConfirm);
    f
}

/// Drives a fresh FSM to Established on C1 at second 2.
fn established(cfg: FsmConfig, clock: &Clock) -> Fsm {
    let peer = peer_open(cfg.peer_asn, PEER_ID, 90);
    let mut f = to_open_confirm(cfg, clock, peer);
    f.handle(Event::KeepAliveMsg(C1), clock.at(2));
    assert_eq!(f.state(), State::Established);
    f
}

#[test]
fn active_start_connects() {
    let clock = Clock::new();
    let mut f = Fsm::new(ibgp());
    let mut j = Jitter::new(SEED);
    assert_eq!(f.state(), State::Idle);
    let a = f.handle(Event::ManualStart, clock.at(0));
    let retry = j.scale(secs(120));
    assert_eq!(a, vec![Action::Connect(C1)]);
    assert_armed(&f, &[(Timer::ConnectRetry, clock.at(0) + retry)]);
    assert!(jittered(retry, secs(120)));
    assert_eq!(f.state(), State::Connect);
    assert_eq!(f.next_timer(), Some((Timer::ConnectRetry, clock.at(0) + retry)));
    // A second start changes nothing.
    assert_eq!(f.handle(Event::AutomaticStart, clock.at(1)), vec![]);
    assert_eq!(f.handle(Event::ManualStart, clock.at(1)), vec![]);
    assert_armed(&f, &[(Timer::ConnectRetry, clock.at(0) + retry)]);
}

#[test]
fn passive_start_waits_for_the_peer() {
    let clock = Clock::new();
    let mut cfg = ibgp();
    cfg.passive = true;
    let mut f = Fsm::new(cfg);
    assert_eq!(f.handle(Event::AutomaticStart, clock.at(0)), vec![]);
    assert_eq!(f.state(), State::Active);
    assert_eq!(f.next_timer(), None);
    let c = f.new_conn_id();
    let a = f.handle(Event::TcpConnectionConfirmed(c), clock.at(3));
    assert_eq!(a, vec![Action::SendOpen(c, f.local_open().clone())]);
    assert_armed(&f, &[(Timer::Hold(c), clock.at(3) + OPEN_HOLD_TIME)]);
    assert_eq!(f.state(), State::OpenSent);
    // TCP lost in OpenSent: back to Active, and a passive peer never connects.
    let a = f.handle(Event::TcpConnectionFails(c), clock.at(4));
    assert_eq!(a, vec![Action::CloseConnection(c)]);
    assert_armed(&f, &[]);
    assert_eq!(f.state(), State::Active);
    assert_eq!(f.handle(Event::ConnectRetryTimerExpires, clock.at(500)), vec![]);
    assert_armed(&f, &[]);
}

#[test]
fn happy_path_to_established() {
    let clock = Clock::new();
    let mut f = Fsm::new(ibgp());
    let mut j = Jitter::new(SEED);
    let retry = j.scale(secs(120));
    assert_eq!(f.handle(Event::ManualStart, clock.at(0)), vec![Action::Connect(C1)]);
    assert_armed(&f, &[(Timer::ConnectRetry, clock.at(0) + retry)]);
    let ours = f.local_open().clone();
    assert_eq!(ours.my_as, 64512);
    assert_eq!(ours.hold_time, 90);
    assert_eq!(ours.bgp_id, LOCAL_ID);
    // ConnectRetry stops; the hold timer waits 4 minutes for the peer's OPEN.
    assert_eq!(
        f.handle(Event::TcpCrAcked(C1), clock.at(1)),
        vec![Action::SendOpen(C1, ours)]
    );
    assert_armed(&f, &[(Timer::Hold(C1), clock.at(1) + secs(240))]);
    assert_eq!(f.state(), State::OpenSent);
    let keepalive = j.scale(secs(30));
    assert_eq!(
        f.handle(Event::BgpOpen(C1, peer_open(64512, PEER_ID, 90)), clock.at(2)),
        vec![Action::SendKeepalive(C1)]
    );
    assert_armed(
        &f,
        &[
            (Timer::Keepalive(C1), clock.at(2) + keepalive),
            (Timer::Hold(C1), clock.at(2) + secs(90)),
        ],
    );
    assert!(jittered(keepalive, secs(30)));
    assert_eq!(f.state(), State::OpenConfirm);
    assert_eq!(f.negotiated().map(|n| n.hold_time), Some(90));
    let a = f.handle(Event::KeepAliveMsg(C1), clock.at(3));
    assert_eq!(a.len(), 1);
    assert_eq!(deadline(&f, Timer::Hold(C1)), Some(clock.at(3) + secs(90)));
    let Action::Established(id, n) = &a[0] else {
        panic!("expected Established, got {:?}", a[0]);
    };
    assert_eq!(*id, C1);
    assert_eq!(n.peer_asn, 64512);
    assert_eq!(n.peer_id, PEER_ID);
    assert_eq!((n.hold_time, n.keepalive_time), (90, 30));
    assert!(n.four_octet_as && n.route_refresh);
    assert_eq!(f.state(), State::Established);
    assert_eq!(f.established_since(), Some(clock.at(3)));
    assert_eq!(f.established_conn(), Some(C1));
    assert_eq!(f.negotiated(), Some(&**n));
    // Established: KEEPALIVE, UPDATE and ROUTE-REFRESH restart the hold timer.
    for (s, e) in [
        (10, Event::KeepAliveMsg(C1)),
        (11, Event::UpdateMsg(C1)),
        (12, Event::RouteRefreshMsg(C1)),
    ] {
        assert_eq!(f.handle(e, clock.at(s)), vec![]);
        assert_eq!(deadline(&f, Timer::Hold(C1)), Some(clock.at(s) + secs(90)));
    }
}

#[test]
fn delay_open_sends_open_when_the_timer_fires() {
    let clock = Clock::new();
    let mut cfg = ibgp();
    cfg.delay_open = Some(secs(5));
    let mut f = Fsm::new(cfg);
    f.handle(Event::ManualStart, clock.at(0));
    assert_eq!(f.handle(Event::TcpCrAcked(C1), clock.at(1)), vec![]);
    assert_armed(&f, &[(Timer::DelayOpen(C1), clock.at(1) + secs(5))]);
    assert_eq!(f.state(), State::Connect);
    // Early (stale) expiry is ignored.
    assert_eq!(f.handle(Event::DelayOpenTimerExpires(C1), clock.at(2)), vec![]);
    assert_armed(&f, &[(Timer::DelayOpen(C1), clock.at(1) + secs(5))]);
    assert_eq!(
        f.handle(Event::DelayOpenTimerExpires(C1), clock.at(6)),
        vec![Action::SendOpen(C1, f.local_open().clone())]
    );
    assert_armed(&f, &[(Timer::Hold(C1), clock.at(6) + OPEN_HOLD_TIME)]);
    assert_eq!(f.state(), State::OpenSent);
}

#[test]
fn delay_open_answers_an_early_open_at_once() {
    let clock = Clock::new();
    let mut cfg = ibgp();
    cfg.delay_open = Some(secs(5));
    cfg.passive = true;
    let mut f = Fsm::new(cfg);
    f.handle(Event::ManualStart, clock.at(0));
    let c = f.new_conn_id();
    assert_eq!(f.handle(Event::TcpConnectionConfirmed(c), clock.at(1)), vec![]);
    assert_armed(&f, &[(Timer::DelayOpen(c), clock.at(1) + secs(5))]);
    assert_eq!(f.state(), State::Active);
    let mut j = Jitter::new(SEED);
    let a = f.handle(Event::BgpOpen(c, peer_open(64512, PEER_ID, 90)), clock.at(2));
    assert_eq!(
        a,
        vec![Action::SendOpen(c, f.local_open().clone()), Action::SendKeepalive(c),]
    );
    // DelayOpen stopped; keepalive and hold timers armed.
    assert_armed(
        &f,
        &[
            (Timer::Keepalive(c), clock.at(2) + j.scale(secs(30))),
            (Timer::Hold(c), clock.at(2) + secs(90)),
        ],
    );
    assert_eq!(f.state(), State::OpenConfirm);
    // The timer was stopped; its expiry must not send a second OPEN.
    assert_eq!(f.handle(Event::DelayOpenTimerExpires(c), clock.at(6)), vec![]);
}

#[test]
fn keepalive_before_open_with_delay_open_is_an_fsm_error() {
    let clock = Clock::new();
    let mut cfg = ibgp();
    cfg.delay_open = Some(secs(5));
    let mut f = Fsm::new(cfg);
    f.handle(Event::ManualStart, clock.at(0));
    f.handle(Event::TcpCrAcked(C1), clock.at(1));
    let a = f.handle(Event::KeepAliveMsg(C1), clock.at(2));
    assert_eq!(a[0], Action::SendNotification(C1, notification(5, 0)));
    assert_eq!(a[1], Action::CloseConnection(C1));
    assert_eq!(deadline(&f, Timer::DelayOpen(C1)), None);
    assert_eq!(f.state(), State::Idle);
}

#[test]
fn hold_timer_expiry_in_established() {
    let clock = Clock::new();
    let mut f = established(ibgp(), &clock);
    // A KEEPALIVE at 50 s moves the deadline to 140 s; the old expiry is stale.
    assert_eq!(f.handle(Event::KeepAliveMsg(C1), clock.at(50)), vec![]);
    assert_eq!(deadline(&f, Timer::Hold(C1)), Some(clock.at(140)));
    assert_eq!(f.handle(Event::HoldTimerExpires(C1), clock.at(92)), vec![]);
    assert_eq!(f.state(), State::Established);
    assert_eq!(armed(&f), vec![Timer::Hold(C1), Timer::Keepalive(C1)]);
    let a = f.handle(Event::HoldTimerExpires(C1), clock.at(140));
    assert_eq!(
        a,
        vec![
            Action::SendNotification(C1, notification(4, 0)),
            Action::CloseConnection(C1),
            Action::SessionDown {
                reason: DownReason::HoldTimerExpired
            },
        ]
    );
    // The connection's keepalive timer went with it; the restart backoff runs.
    assert_eq!(armed(&f), vec![Timer::IdleHold]);
    assert!(jittered(armed_for(&f, Timer::IdleHold, clock.at(140)), secs(5)));
    assert_eq!(f.state(), State::Idle);
    assert_eq!(f.last_error(), Some(&DownReason::HoldTimerExpired));
    assert_eq!(f.established_since(), None);
    assert_eq!(f.negotiated(), None);
}

#[test]
fn keepalive_timer_rearms_with_jitter() {
    let clock = Clock::new();
    let mut f = established(ibgp(), &clock);
    let mut seen = Vec::new();
    for _ in 0..200 {
        let (t, deadline) = f
            .timers()
            .find(|(t, _)| *t == Timer::Keepalive(C1))
            .expect("keepalive timer armed");
        let a = f.handle(t.expiry_event(), deadline);
        assert_eq!(a, vec![Action::SendKeepalive(C1)]);
        let d = armed_for(&f, Timer::Keepalive(C1), deadline);
        assert!(jittered(d, secs(30)), "{d:?}");
        seen.push(d);
        f.handle(Event::KeepAliveMsg(C1), deadline);
    }
    seen.sort();
    assert!(seen[0] < secs(24) && seen[199] > secs(29), "{seen:?}");
    // Stale expiry right after a re-arm does nothing.
    let (_, deadline) = f.timers().find(|(t, _)| *t == Timer::Keepalive(C1)).expect("armed");
    assert_eq!(f.handle(Event::KeepaliveTimerExpires(C1), deadline - secs(5)), vec![]);
}

#[test]
fn hold_time_negotiation() {
    let clock = Clock::new();
    // Ours 90, theirs 30: 30, keepalive 10.
    let mut f = Fsm::new(ibgp());
    let mut j = Jitter::new(SEED);
    j.scale(secs(120));
    f.handle(Event::ManualStart, clock.at(0));
    f.handle(Event::TcpCrAcked(C1), clock.at(0));
    let a = f.handle(Event::BgpOpen(C1, peer_open(64512, PEER_ID, 30)), clock.at(1));
    assert_eq!(a, vec![Action::SendKeepalive(C1)]);
    assert_armed(
        &f,
        &[
            (Timer::Keepalive(C1), clock.at(1) + j.scale(secs(10))),
            (Timer::Hold(C1), clock.at(1) + secs(30)),
        ],
    );
    let n = f.negotiated().expect("negotiated");
    assert_eq!((n.hold_time, n.keepalive_time), (30, 10));

    // A configured keepalive is scaled to the lower hold time: 20 * 30 / 90.
    let mut cfg = ibgp();
    cfg.keepalive_time = Some(20);
    let f = to_open_confirm(cfg, &clock, peer_open(64512, PEER_ID, 30));
    assert_eq!(f.negotiated().map(|n| n.keepalive_time), Some(6));

    // Theirs 0: no hold timer, no keepalives.
    let mut f = Fsm::new(ibgp());
    f.handle(Event::ManualStart, clock.at(0));
    f.handle(Event::TcpCrAcked(C1), clock.at(0));
    assert_eq!(armed(&f), vec![Timer::Hold(C1)]);
    let a = f.handle(Event::BgpOpen(C1, peer_open(64512, PEER_ID, 0)), clock.at(1));
    assert_eq!(a, vec![Action::SendKeepalive(C1)]);
    assert_armed(&f, &[]);
    let a = f.handle(Event::KeepAliveMsg(C1), clock.at(2));
    assert_eq!(a.len(), 1);
    assert!(matches!(&a[0], Action::Established(C1, n) if n.hold_time == 0 && n.keepalive_time == 0));
    assert_eq!(f.handle(Event::UpdateMsg(C1), clock.at(3)), vec![]);
    assert_eq!(f.timers().count(), 0);

    // Ours 0, theirs 90: 0 as well.
    let mut cfg = ibgp();
    cfg.hold_time = 0;
    let f = to_open_confirm(cfg, &clock, peer_open(64512, PEER_ID, 90));
    assert_eq!(f.negotiated().map(|n| n.hold_time), Some(0));
    assert_eq!(f.timers().count(), 0);
}

/// Asserts the actions of an OPEN refused in OpenSent on C1, and that only
/// the restart backoff is left armed.
fn assert_open_refused(f: &Fsm, a: &[Action], code: (u8, u8), error: OpenError) {
    assert_eq!(
        a,
        [
            Action::SendNotification(C1, notification(code.0, code.1)),
            Action::CloseConnection(C1),
            Action::SessionDown {
                reason: DownReason::OpenRejected(error)
            },
        ]
    );
    assert_eq!(armed(f), vec![Timer::IdleHold]);
}

fn open_sent(cfg: FsmConfig, clock: &Clock) -> Fsm {
    let mut f = Fsm::new(cfg);
    f.handle(Event::ManualStart, clock.at(0));
    f.handle(Event::TcpCrAcked(C1), clock.at(1));
    assert_eq!(f.state(), State::OpenSent);
    f
}

#[test]
fn bad_peer_as() {
    let clock = Clock::new();
    let mut f = open_sent(ibgp(), &clock);
    let a = f.handle(Event::BgpOpen(C1, peer_open(65000, PEER_ID, 90)), clock.at(2));
    assert_open_refused(
        &f,
        &a,
        (2, 2),
        OpenError::BadPeerAs {
            expected: 64512,
            got: 65000,
        },
    );
    assert_eq!(f.state(), State::Idle);

    // 4-octet capability disagreeing with the 2-octet field.
    let mut f = open_sent(ibgp(), &clock);
    let mut open = peer_open(64512, PEER_ID, 90);
    open.my_as = AS_TRANS;
    let a = f.handle(Event::BgpOpen(C1, open), clock.at(2));
    assert_open_refused(
        &f,
        &a,
        (2, 2),
        OpenError::InconsistentAs {
            asn: 64512,
            my_as: AS_TRANS,
        },
    );

    // A 4-octet AS peer with AS_TRANS is fine; with another 2-octet value not.
    let mut cfg = ibgp();
    cfg.peer_asn = 4_200_000_001;
    let f = to_open_confirm(cfg.clone(), &clock, peer_open(4_200_000_001, PEER_ID, 90));
    assert_eq!(f.negotiated().map(|n| n.peer_asn), Some(4_200_000_001));
    let mut f = open_sent(cfg, &clock);
    let mut open = peer_open(4_200_000_001, PEER_ID, 90);
    open.my_as = 65000;
    let a = f.handle(Event::BgpOpen(C1, open), clock.at(2));
    assert_open_refused(
        &f,
        &a,
        (2, 2),
        OpenError::InconsistentAs {
            asn: 4_200_000_001,
            my_as: 65000,
        },
    );
}

#[test]
fn bad_bgp_identifier_on_ibgp_only() {
    let clock = Clock::new();
    let mut f = open_sent(ibgp(), &clock);
    let a = f.handle(Event::BgpOpen(C1, peer_open(64512, LOCAL_ID, 90)), clock.at(2));
    assert_open_refused(&f, &a, (2, 3), OpenError::SameBgpId(LOCAL_ID));
    // RFC 6286 §2.2: on eBGP the same identifier is allowed.
    let mut cfg = ibgp();
    cfg.peer_asn = 65001;
    let f = to_open_confirm(cfg, &clock, peer_open(65001, LOCAL_ID, 90));
    assert_eq!(f.state(), State::OpenConfirm);
    // Zero identifier and hold time 2 (OPENs built by hand, not decoded).
    let mut f = open_sent(ibgp(), &clock);
    let a = f.handle(
        Event::BgpOpen(C1, peer_open(64512, Ipv4Addr::UNSPECIFIED, 90)),
        clock.at(2),
    );
    assert_open_refused(&f, &a, (2, 3), OpenError::InvalidBgpId(Ipv4Addr::UNSPECIFIED));
    let mut f = open_sent(ibgp(), &clock);
    let a = f.handle(Event::BgpOpen(C1, peer_open(64512, PEER_ID, 2)), clock.at(2));
    assert_open_refused(&f, &a, (2, 6), OpenError::HoldTime(2));
}

#[test]
fn role_checks() {
    let clock = Clock::new();
    let mut cfg = ibgp();
    cfg.peer_asn = 65001;
    cfg.role = Some(Role::Customer);
    let with_role = |role: Option<Role>| {
        let mut open = peer_open(65001, PEER_ID, 90);
        open.capability_groups[0].extend(role.map(Capability::Role));
        open
    };
    assert!(Fsm::new(cfg.clone())
        .local_open()
        .capabilities()
        .any(|c| *c == Capability::Role(Role::Customer)));
    let f = to_open_confirm(cfg.clone(), &clock, with_role(Some(Role::Provider)));
    assert_eq!(f.negotiated().and_then(|n| n.peer_role), Some(Role::Provider));
    let f = to_open_confirm(cfg.clone(), &clock, with_role(None));
    assert_eq!(f.negotiated().and_then(|n| n.peer_role), None);
    let mut f = open_sent(cfg.clone(), &clock);
    let a = f.handle(Event::BgpOpen(C1, with_role(Some(Role::Peer))), clock.at(2));
    assert_open_refused(
        &f,
        &a,
        (2, 11),
        OpenError::RoleMismatch {
            local: Role::Customer,
            peer: Some(Role::Peer),
        },
    );
    cfg.strict_role = true;
    let mut f = open_sent(cfg, &clock);
    let a = f.handle(Event::BgpOpen(C1, with_role(None)), clock.at(2));
    assert_open_refused(
        &f,
        &a,
        (2, 11),
        OpenError::RoleMismatch {
            local: Role::Customer,
            peer: None,
        },
    );
}

#[test]
fn unexpected_messages_are_fsm_errors() {
    let clock = Clock::new();
    for (event, message) in [
        (Event::UpdateMsg(C1), "UPDATE"),
        (Event::KeepAliveMsg(C1), "KEEPALIVE"),
        (Event::RouteRefreshMsg(C1), "ROUTE-REFRESH"),
    ] {
        let mut f = open_sent(ibgp(), &clock);
        let a = f.handle(event, clock.at(2));
        assert_eq!(
            a,
            vec![
                Action::SendNotification(C1, notification(5, 1)),
                Action::CloseConnection(C1),
                Action::SessionDown {
                    reason: DownReason::UnexpectedMessage {
                        state: State::OpenSent,
                        message
                    }
                },
            ]
        );
        assert_eq!(armed(&f), vec![Timer::IdleHold]);
        assert_eq!(f.state(), State::Idle);
    }
    // UPDATE in OpenConfirm: 5/2.
    let mut f = to_open_confirm(ibgp(), &clock, peer_open(64512, PEER_ID, 90));
    assert_eq!(armed(&f), vec![Timer::Hold(C1), Timer::Keepalive(C1)]);
    let a = f.handle(Event::UpdateMsg(C1), clock.at(2));
    assert_eq!(a[0], Action::SendNotification(C1, notification(5, 2)));
    assert_eq!(a[1], Action::CloseConnection(C1));
    assert_eq!(armed(&f), vec![Timer::IdleHold]);
    // OPEN in Established: 5/3.
    let mut f = established(ibgp(), &clock);
    let a = f.handle(Event::BgpOpen(C1, peer_open(64512, PEER_ID, 90)), clock.at(3));
    assert_eq!(a[0], Action::SendNotification(C1, notification(5, 3)));
    assert!(matches!(
        &a[2],
        Action::SessionDown {
            reason: DownReason::UnexpectedMessage {
                state: State::Established,
                message: "OPEN"
            }
        }
    ));
}

#[test]
fn decode_errors_send_their_notification() {
    let clock = Clock::new();
    let mut f = established(ibgp(), &clock);
    let err = DecodeError::new(Reason::MalformedAttributeList("overrun"), 23);
    let a = f.handle(Event::UpdateMsgErr(C1, err.clone()), clock.at(3));
    assert_eq!(a[0], Action::SendNotification(C1, notification(3, 1)));
    assert_eq!(
        a[2],
        Action::SessionDown {
            reason: DownReason::InvalidMessage(err)
        }
    );
    let mut f = open_sent(ibgp(), &clock);
    let err = DecodeError::new(Reason::BadMarker, 0);
    let a = f.handle(Event::BgpHeaderErr(C1, err), clock.at(3));
    assert_eq!(a[0], Action::SendNotification(C1, notification(1, 1)));
    assert_eq!(f.state(), State::Idle);
    let mut f = open_sent(ibgp(), &clock);
    let err = DecodeError::new(Reason::UnsupportedOptionalParameter(3), 29);
    let a = f.handle(Event::BgpOpenMsgErr(C1, err), clock.at(3));
    assert_eq!(a[0], Action::SendNotification(C1, notification(2, 4)));
}

#[test]
fn notification_received_backs_off_doubling_and_capped() {
    let clock = Clock::new();
    let mut cfg = ibgp();
    cfg.idle_hold_time = secs(5);
    cfg.max_idle_hold_time = secs(30);
    let mut f = Fsm::new(cfg);
    let mut now = 0;
    let connect_id = |a: &[Action]| {
        a.iter()
            .find_map(|x| match x {
                Action::Connect(c) => Some(*c),
                _ => None,
            })
            .expect("Connect action")
    };
    let mut c = connect_id(&f.handle(Event::ManualStart, clock.at(now)));
    let cease = Notification::new(code::CEASE, cease::CONNECTION_REJECTED);
    for base in [5, 10, 20, 30, 30, 30] {
        f.handle(Event::TcpCrAcked(c), clock.at(now));
        f.handle(Event::BgpOpen(c, peer_open(64512, PEER_ID, 90)), clock.at(now));
        assert_eq!(armed(&f), vec![Timer::Hold(c), Timer::Keepalive(c)]);
        let a = f.handle(Event::NotifMsg(c, cease.clone()), clock.at(now));
        assert_eq!(
            a,
            vec![
                Action::CloseConnection(c),
                Action::SessionDown {
                    reason: DownReason::NotificationReceived(cease.clone())
                },
            ]
        );
        assert_eq!(armed(&f), vec![Timer::IdleHold]);
        let d = armed_for(&f, Timer::IdleHold, clock.at(now));
        assert!(jittered(d, secs(base)), "{d:?} for {base}");
        assert_eq!(f.state(), State::Idle);
        // Automatic starts and early expiries are ignored while the backoff runs.
        assert_eq!(f.handle(Event::AutomaticStart, clock.at(now)), vec![]);
        assert_eq!(f.handle(Event::IdleHoldTimerExpires, clock.at(now)), vec![]);
        assert_eq!(f.state(), State::Idle);
        assert_eq!(armed(&f), vec![Timer::IdleHold]);
        now += base;
        let a = f.handle(Event::IdleHoldTimerExpires, clock.at(now));
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(armed(&f), vec![Timer::ConnectRetry]);
        c = connect_id(&a);
        assert_eq!(f.state(), State::Connect);
    }
    // A session that stays up at least max_idle_hold_time resets the backoff.
    f.handle(Event::TcpCrAcked(c), clock.at(now));
    f.handle(Event::BgpOpen(c, peer_open(64512, PEER_ID, 90)), clock.at(now));
    f.handle(Event::KeepAliveMsg(c), clock.at(now));
    assert_eq!(f.state(), State::Established);
    let a = f.handle(Event::TcpConnectionFails(c), clock.at(now + 31));
    assert_eq!(
        a[1],
        Action::SessionDown {
            reason: DownReason::ConnectionClosed
        }
    );
    assert!(jittered(armed_for(&f, Timer::IdleHold, clock.at(now + 31)), secs(5)));
    // ManualStart skips the wait and clears the count.
    f.handle(Event::ManualStart, clock.at(now + 32));
    assert_eq!(deadline(&f, Timer::IdleHold), None);
    assert_eq!(f.state(), State::Connect);
}

#[test]
fn manual_stop_from_established_sends_shutdown_text() {
    let clock = Clock::new();
    let mut f = established(ibgp(), &clock);
    let a = f.handle(Event::ManualStopWithMessage("maintenance".into()), clock.at(10));
    let sent = Notification::shutdown(cease::ADMINISTRATIVE_SHUTDOWN, "maintenance");
    assert_eq!(sent.shutdown_message(), Some("maintenance"));
    assert_eq!(
        a,
        vec![
            Action::SendNotification(C1, sent),
            Action::CloseConnection(C1),
            Action::SessionDown {
                reason: DownReason::ManualStop(Some("maintenance".into()))
            },
        ]
    );
    assert_eq!(f.state(), State::Idle);
    // No automatic restart: nothing armed, automatic events ignored.
    assert_eq!(f.timers().count(), 0);
    assert_eq!(f.handle(Event::IdleHoldTimerExpires, clock.at(500)), vec![]);
    assert_eq!(f.state(), State::Idle);
    // Without text: a bare 6/2. From Connect: no NOTIFICATION (no OPEN sent).
    let mut f = established(ibgp(), &clock);
    let a = f.handle(Event::ManualStop, clock.at(10));
    assert_eq!(a[0], Action::SendNotification(C1, notification(6, 2)));
    let mut f = Fsm::new(ibgp());
    f.handle(Event::ManualStart, clock.at(0));
    assert_eq!(armed(&f), vec![Timer::ConnectRetry]);
    assert_eq!(
        f.handle(Event::ManualStop, clock.at(1)),
        vec![
            Action::CloseConnection(C1),
            Action::SessionDown {
                reason: DownReason::ManualStop(None)
            },
        ]
    );
    assert_armed(&f, &[]);
    // Stopping a stopped FSM does nothing.
    assert_eq!(f.handle(Event::ManualStop, clock.at(2)), vec![]);
}

#[test]
fn automatic_stop_restarts_after_backoff() {
    let clock = Clock::new();
    let mut f = established(ibgp(), &clock);
    let n = Notification::new(code::CEASE, cease::MAX_PREFIXES);
    let a = f.handle(Event::AutomaticStop(n.clone()), clock.at(10));
    assert_eq!(a[0], Action::SendNotification(C1, n.clone()));
    assert_eq!(
        a[2],
        Action::SessionDown {
            reason: DownReason::AutomaticStop(n)
        }
    );
    assert_eq!(armed(&f), vec![Timer::IdleHold]);
    assert!(jittered(armed_for(&f, Timer::IdleHold, clock.at(10)), secs(5)));
}

#[test]
fn down_reason_log_lines() {
    let n = Notification::shutdown(cease::ADMINISTRATIVE_SHUTDOWN, "maintenance");
    assert_eq!(
        DownReason::NotificationReceived(n).to_string(),
        "received NOTIFICATION 6/2 (Cease / Administrative Shutdown): maintenance"
    );
    assert_eq!(
        DownReason::HoldTimerExpired.to_string(),
        "hold timer expired, sent NOTIFICATION 4/0 (Hold Timer Expired / Unspecific)"
    );
    assert_eq!(
        DownReason::OpenRejected(OpenError::BadPeerAs {
            expected: 64512,
            got: 65000
        })
        .to_string(),
        "rejected OPEN: peer AS 65000, expected 64512, sent NOTIFICATION 2/2 (OPEN Message Error / Bad Peer AS)"
    );
    assert_eq!(
        DownReason::UnexpectedMessage {
            state: State::OpenSent,
            message: "UPDATE"
        }
        .to_string(),
        "unexpected UPDATE in OpenSent, sent NOTIFICATION 5/1 (Finite State Machine Error / Unexpected Message in OpenSent State)"
    );
    assert_eq!(
        DownReason::NotificationReceived(Notification {
            code: 3,
            subcode: 1,
            data: vec![0xde, 0xad]
        })
        .to_string(),
        "received NOTIFICATION 3/1 (UPDATE Message Error / Malformed Attribute List) data dead"
    );
    assert_eq!(
        DownReason::ManualStop(Some("bye".into())).to_string(),
        "administrative shutdown, sent NOTIFICATION 6/2 (Cease / Administrative Shutdown): bye"
    );
}

mod collision;
mod negotiation;
