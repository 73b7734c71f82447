//! Discarded packets change nothing; jitter bounds; passive role, remote
//! Demand mode and configuration checks.

mod common;

use std::time::Duration;

use bfd::{
    decode, encode, jittered, ConfigError, ControlPacket, DecodeError, Diagnostic, Discard, Event, RandomSource,
    Session, SessionConfig, State, XorShift64,
};
use common::{config, ms, Link, Side};

/// A link Up for a while, and a valid packet from B to A to corrupt.
fn up_link() -> (Link, ControlPacket) {
    let mut link = Link::new(config(1, 100, 100, 3), config(2, 100, 100, 3), ms(1));
    link.bring_up();
    let template = link.sent_by(Side::B).last().unwrap().1;
    assert_eq!(template.state, State::Up);
    (link, template)
}

/// What of A's session a discarded packet must leave alone.
fn snapshot(
    s: &Session,
) -> (
    State,
    Diagnostic,
    u32,
    Option<std::time::Instant>,
    Option<Duration>,
    Duration,
    bool,
) {
    (
        s.state(),
        s.local_diag(),
        s.remote_discriminator(),
        s.detection_deadline(),
        s.detection_time(),
        s.transmit_interval(),
        s.poll_in_progress(),
    )
}

#[test]
fn each_reception_check_violation_is_discarded_without_effect() {
    let (mut link, template) = up_link();
    // Each is a Down packet with Poll: accepted, it would take A Down and
    // make it answer with Final.
    let base = ControlPacket {
        state: State::Down,
        poll: true,
        desired_min_tx: 5_000_000,
        ..template
    };
    let mut cases: Vec<(Vec<u8>, DecodeError)> = Vec::new();
    let bytes = encode(&base);
    let mut v = bytes;
    v[0] = (2 << 5) | (v[0] & 0x1f);
    cases.push((v.to_vec(), DecodeError::BadVersion(2)));
    let mut v = bytes;
    v[3] = 23;
    cases.push((v.to_vec(), DecodeError::LengthTooSmall { length: 23, min: 24 }));
    let mut v = bytes.to_vec();
    v.extend_from_slice(&[0, 0]);
    v[1] |= 0x04;
    v[3] = 25;
    cases.push((v, DecodeError::LengthTooSmall { length: 25, min: 26 }));
    let mut v = bytes;
    v[3] = 40;
    cases.push((
        v.to_vec(),
        DecodeError::LengthExceedsPayload {
            length: 40,
            payload: 24,
        },
    ));
    let tweak = |f: fn(&mut ControlPacket)| {
        let mut p = base;
        f(&mut p);
        p
    };
    let field_cases = [
        (tweak(|p| p.detect_mult = 0), DecodeError::ZeroDetectMult),
        (tweak(|p| p.multipoint = true), DecodeError::Multipoint),
        (tweak(|p| p.my_discriminator = 0), DecodeError::ZeroMyDiscriminator),
        (
            tweak(|p| {
                p.state = State::Up;
                p.your_discriminator = 0
            }),
            DecodeError::ZeroYourDiscriminator(State::Up),
        ),
        (
            tweak(|p| {
                p.state = State::Init;
                p.your_discriminator = 0
            }),
            DecodeError::ZeroYourDiscriminator(State::Init),
        ),
    ];
    for (p, e) in field_cases {
        cases.push((encode(&p).to_vec(), e));
        // Built in code, skipping decode: receive checks again.
        let before = snapshot(&link.a);
        let now = link.now;
        assert_eq!(link.a.receive(now, &p), Err(Discard::Invalid(e)));
        assert_eq!(snapshot(&link.a), before);
    }
    let mut auth = encode(&tweak(|p| p.authentication = true)).to_vec();
    auth.extend_from_slice(&[1, 3, 0]);
    auth[3] = 27;
    cases.push((auth, DecodeError::AuthenticationNotSupported));

    for (bytes, expected) in cases {
        assert_eq!(decode(&bytes), Err(expected));
    }
    // A is untouched: still Up, nothing owed to anyone.
    assert_eq!(link.a.state(), State::Up);
    let now = link.now;
    let owed = link.a.poll_transmit(now);
    assert_eq!(owed, None, "no Final for a discarded Poll");
    assert_eq!(link.events_of(Side::A).len(), 2);
}

#[test]
fn a_wrong_your_discriminator_is_discarded() {
    let (mut link, template) = up_link();
    let wrong = ControlPacket {
        state: State::Down,
        your_discriminator: 99,
        poll: true,
        ..template
    };
    let before = snapshot(&link.a);
    let now = link.now;
    assert_eq!(
        link.a.receive(now, &wrong),
        Err(Discard::WrongYourDiscriminator { got: 99, ours: 1 })
    );
    assert_eq!(snapshot(&link.a), before);
    assert_eq!(link.a.poll_transmit(now), None);
}

#[test]
fn discarded_packets_do_not_keep_a_session_alive() {
    let (mut link, template) = up_link();
    // B falls silent; only garbage and misaddressed packets reach A.
    link.cut();
    let deadline = link.a.detection_deadline().unwrap();
    let misaddressed = ControlPacket {
        your_discriminator: 77,
        ..template
    };
    let mut t = link.now;
    while t < deadline {
        assert!(link.a.receive(t, &misaddressed).is_err());
        assert_eq!(link.a.on_timer(t), None);
        t += ms(10);
    }
    assert!(matches!(
        link.a.on_timer(deadline),
        Some(Event::Down {
            diag: Diagnostic::ControlDetectionTimeExpired,
            ..
        })
    ));
}

#[test]
fn jitter_stays_within_the_rfc_bounds() {
    let mut rng = XorShift64::new(42);
    let interval = Duration::from_micros(300_000);
    for (mult, lo, hi) in [(3u8, 75u32, 100u32), (5, 75, 100), (1, 75, 90)] {
        let (mut min, mut max) = (interval, Duration::ZERO);
        for _ in 0..20_000 {
            let j = jittered(interval, mult, &mut rng);
            assert!(
                j >= interval * lo / 100 && j <= interval * hi / 100,
                "mult {mult}: {j:?}"
            );
            min = min.min(j);
            max = max.max(j);
        }
        // The draws do spread over the whole band.
        assert!(min < interval * (lo + 1) / 100, "mult {mult}: min {min:?}");
        assert!(max > interval * (hi - 1) / 100, "mult {mult}: max {max:?}");
    }
}

#[test]
fn a_mult_1_session_sends_at_75_to_90_percent() {
    let mut link = Link::new(config(1, 100, 100, 1), config(2, 100, 100, 3), ms(1));
    link.bring_up();
    let from = link.elapsed();
    link.run_for(ms(20_000));
    let times: Vec<Duration> = link
        .sent_by(Side::A)
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| *t > from)
        .collect();
    assert!(times.len() > 200);
    for gap in times.windows(2).map(|w| w[1] - w[0]) {
        assert!(gap >= ms(75) && gap <= ms(90), "{gap:?}");
    }
    assert_eq!(link.b.state(), State::Up, "B never timed out on A at mult 1");
}

#[test]
fn a_caller_up_to_the_slack_late_still_sends_within_the_rfc_bounds() {
    // Down: the periodic interval is the 1 s slow rate (RFC 5880 §6.8.3).
    let t0 = std::time::Instant::now();
    let slack = ms(5);
    let mut s = Session::new(config(1, 100, 100, 3), t0).unwrap();
    s.set_transmit_slack(slack);
    let mut lateness = XorShift64::new(7);
    let mut sent = Vec::new();
    while sent.len() < 2_000 {
        let due = s.next_deadline().expect("an active session always has a deadline");
        let late = Duration::from_micros(u64::from(lateness.next_u32()) % (slack.as_micros() as u64 + 1));
        let now = due + late;
        while s.poll_transmit(now).is_some() {
            sent.push(now);
        }
    }
    let gaps: Vec<Duration> = sent.windows(2).map(|w| w[1] - w[0]).collect();
    for gap in &gaps {
        assert!(*gap >= ms(750) && *gap <= ms(1000), "{gap:?}");
    }
    // Without the slack, the same lateness overshoots the bound.
    let mut s = Session::with_rng(config(1, 100, 100, 3), t0, || 0u32).unwrap();
    let first = s.next_deadline().unwrap();
    assert!(s.poll_transmit(first).is_some());
    let late = s.next_deadline().unwrap() + slack;
    assert!(s.poll_transmit(late).is_some());
    assert!(late - first > ms(1000));
}

#[test]
fn jitter_comes_from_the_callers_source() {
    let t0 = std::time::Instant::now();
    let cfg = config(1, 100, 100, 3);
    // A source that never jitters: packets exactly one interval apart.
    let mut s = Session::with_rng(cfg, t0, || 0u32).unwrap();
    assert!(s.poll_transmit(t0).is_some());
    assert_eq!(s.next_deadline(), Some(t0 + ms(1000)));
    let mut s = Session::with_rng(cfg, t0, || u32::MAX).unwrap();
    assert!(s.poll_transmit(t0).is_some());
    assert_eq!(s.next_deadline(), Some(t0 + ms(750)));
}

#[test]
fn a_passive_session_is_silent_until_it_hears_the_remote() {
    let t0 = std::time::Instant::now();
    let mut cfg = config(5, 100, 100, 3);
    cfg.passive = true;
    let mut s = Session::new(cfg, t0).unwrap();
    assert_eq!(s.poll_transmit(t0 + ms(5000)), None);
    assert_eq!(s.next_deadline(), None);
    let hello = ControlPacket {
        state: State::Down,
        your_discriminator: 0,
        my_discriminator: 8,
        ..encode_roundtrip_template()
    };
    assert_eq!(s.receive(t0 + ms(5000), &hello), Ok(Some(Event::Init)));
    let reply = s.poll_transmit(t0 + ms(5000)).unwrap();
    assert_eq!(
        (reply.state, reply.your_discriminator, reply.my_discriminator),
        (State::Init, 8, 5)
    );
}

fn encode_roundtrip_template() -> ControlPacket {
    decode(&[
        0x20, 0xc0, 3, 24, 0, 0, 0, 2, 0, 0, 0, 1, 0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0, 0, 0, 0, 0,
    ])
    .unwrap()
}

#[test]
fn remote_demand_mode_stops_our_periodic_packets_but_not_finals() {
    let (mut link, template) = up_link();
    let demand = ControlPacket {
        demand: true,
        ..template
    };
    let mut t = link.now;
    assert_eq!(link.a.receive(t, &demand), Ok(None));
    while link.a.poll_transmit(t).is_some() {}
    for _ in 0..50 {
        t += ms(10);
        assert_eq!(link.a.poll_transmit(t), None, "RFC 5880 §6.8.7: no periodic packets");
        assert_eq!(link.a.receive(t, &demand), Ok(None));
    }
    // A Poll is still answered.
    let poll = ControlPacket { poll: true, ..demand };
    assert_eq!(link.a.receive(t, &poll), Ok(None));
    let fin = link.a.poll_transmit(t).unwrap();
    assert!(fin.final_ && !fin.poll);
    assert_eq!(link.a.poll_transmit(t), None);
}

#[test]
fn remote_required_min_rx_zero_stops_periodic_packets() {
    let (mut link, template) = up_link();
    let quiet = ControlPacket {
        required_min_rx: 0,
        ..template
    };
    let mut t = link.now;
    assert_eq!(link.a.receive(t, &quiet), Ok(None));
    while link.a.poll_transmit(t).is_some() {}
    for _ in 0..50 {
        t += ms(10);
        assert_eq!(link.a.receive(t, &quiet), Ok(None));
        assert_eq!(link.a.poll_transmit(t), None);
    }
}

#[test]
fn local_admin_down_ignores_packets_and_says_so() {
    let (mut link, template) = up_link();
    let now = link.now;
    assert_eq!(link.a.set_admin_down(now), Some(Event::AdminDown { from: State::Up }));
    assert!(!Event::AdminDown { from: State::Up }.is_path_failure());
    let sent = link.a.poll_transmit(now).unwrap();
    assert_eq!(
        (sent.state, sent.diag),
        (State::AdminDown, Diagnostic::AdministrativelyDown)
    );
    let poll = ControlPacket { poll: true, ..template };
    assert_eq!(link.a.receive(now, &poll), Err(Discard::AdminDown));
    assert_eq!(link.a.state(), State::AdminDown);
    assert_eq!(link.a.detection_deadline(), None);
    assert_eq!(link.a.poll_transmit(now), None, "no Final while AdminDown");
}

#[test]
fn bad_configurations_are_refused() {
    let t0 = std::time::Instant::now();
    let ok = SessionConfig::new(1);
    assert!(Session::new(ok, t0).is_ok());
    let cases = [
        (SessionConfig::new(0), ConfigError::ZeroDiscriminator),
        (SessionConfig { detect_mult: 0, ..ok }, ConfigError::ZeroDetectMult),
        (
            SessionConfig {
                desired_min_tx: Duration::from_nanos(999),
                ..ok
            },
            ConfigError::ZeroDesiredMinTx,
        ),
        (
            SessionConfig {
                required_min_rx: Duration::from_secs(5000),
                ..ok
            },
            ConfigError::IntervalTooLarge(Duration::from_secs(5000)),
        ),
    ];
    for (cfg, err) in cases {
        assert_eq!(Session::new(cfg, t0).err(), Some(err));
    }
    let mut s = Session::new(ok, t0).unwrap();
    assert_eq!(
        s.set_timers(t0, Duration::ZERO, ms(100)),
        Err(ConfigError::ZeroDesiredMinTx)
    );
    assert_eq!(s.config().desired_min_tx, ms(300), "unchanged on error");
}
