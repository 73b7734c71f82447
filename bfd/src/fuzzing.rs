//! The entry point shared by the cargo-fuzz target (`fuzz/fuzz_targets/
//! bfd_control.rs`) and the stable test `tests/fuzz_corpus.rs`: whatever the
//! bytes, nothing panics and the invariants below hold.

use std::time::{Duration, Instant};

use crate::packet::{decode, encode, State};
use crate::session::{Session, SessionConfig};

const LOCAL_DISCR: u32 = 1;

/// Runs `data` through the codec and then through a session.
///
/// Codec: whatever decodes re-encodes to the same mandatory section (bar
/// the Length octet) and decodes again to the same packet.
///
/// Session: `data` is read as records of one control octet and 24 packet
/// octets. The control octet's low 6 bits advance the clock (×5 ms); its top
/// 2 bits pick what to do: 0 feed the packet as is, 1 feed it addressed to
/// us (so random input gets past the Your Discriminator check), 2 change our
/// timers, 3 toggle AdminDown. After each record every due packet is taken
/// and checked: it decodes, never has P and F together, and in Init or Up
/// names the remote; and once timers ran and packets were taken, no
/// deadline is left in the past.
pub fn control(data: &[u8]) {
    if let Ok(packet) = decode(data) {
        let bytes = encode(&packet);
        assert_eq!(bytes[..3], data[..3], "first octets differ");
        assert_eq!(bytes[4..], data[4..24], "fields differ");
        assert_eq!(decode(&bytes), Ok(packet), "re-encoded packet decodes differently");
    }

    let t0 = Instant::now();
    let config = SessionConfig {
        local_discriminator: LOCAL_DISCR,
        desired_min_tx: Duration::from_millis(10),
        required_min_rx: Duration::from_millis(10),
        detect_mult: 3,
        passive: data.first().is_some_and(|b| b & 1 == 1),
    };
    let Ok(mut session) = Session::new(config, t0) else {
        panic!("the fuzz session configuration is valid");
    };
    let mut now = t0;
    for record in data.chunks(25) {
        let (control, rest) = (record[0], &record[1..]);
        now += Duration::from_millis(u64::from(control & 0x3f) * 5);
        let _ = session.on_timer(now);
        match control >> 6 {
            0 | 1 => {
                if let Ok(mut packet) = decode(rest) {
                    if control >> 6 == 1 && packet.your_discriminator != 0 {
                        packet.your_discriminator = LOCAL_DISCR;
                    }
                    let _ = session.receive(now, &packet);
                }
            }
            2 => {
                let tx = Duration::from_micros(u64::from(rest.first().copied().unwrap_or(1)) * 1000);
                let rx = Duration::from_micros(u64::from(rest.get(1).copied().unwrap_or(0)) * 1000);
                let _ = session.set_timers(now, tx, rx);
            }
            _ => {
                if session.state() == State::AdminDown {
                    session.set_admin_up(now);
                } else {
                    let _ = session.set_admin_down(now);
                }
            }
        }
        // A command can shorten the Detection Time (new timers while Down):
        // the deadline may then be due at once, as a caller's loop would see.
        let _ = session.on_timer(now);
        while let Some(out) = session.poll_transmit(now) {
            assert!(!(out.poll && out.final_), "P and F together: {out:?}");
            assert_eq!(decode(&encode(&out)), Ok(out), "we sent a packet we would discard");
        }
        if let Some(deadline) = session.next_deadline() {
            assert!(deadline > now, "deadline {deadline:?} left behind at {now:?}");
        }
    }
}
