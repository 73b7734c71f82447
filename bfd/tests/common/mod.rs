//! A simulated link between two sessions, driven by a fake clock: time only
//! moves when the test says so, jumping from one deadline to the next.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use bfd::{decode, encode, ControlPacket, Discard, Event, Session, SessionConfig};

/// Which end of the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// Something that happened, stamped with the time since the start.
#[derive(Clone, Debug, PartialEq)]
pub struct Logged<T> {
    pub at: Duration,
    pub side: Side,
    pub what: T,
}

pub struct Link {
    pub t0: Instant,
    pub now: Instant,
    pub a: Session,
    pub b: Session,
    /// One-way latency.
    pub delay: Duration,
    /// Whether packets from A reach B, and from B reach A.
    pub a_to_b: bool,
    pub b_to_a: bool,
    /// Lose every packet with the Final bit (to stretch a Poll Sequence).
    pub drop_finals: bool,
    in_flight: Vec<(Instant, Side, Vec<u8>)>,
    pub events: Vec<Logged<Event>>,
    /// Packets as sent, with the sender.
    pub sent: Vec<Logged<ControlPacket>>,
    /// Packets accepted by `receive`, with the receiver.
    pub received: Vec<Logged<ControlPacket>>,
    pub discarded: Vec<Logged<Discard>>,
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn config(discr: u32, tx_ms: u64, rx_ms: u64, mult: u8) -> SessionConfig {
    SessionConfig {
        local_discriminator: discr,
        desired_min_tx: ms(tx_ms),
        required_min_rx: ms(rx_ms),
        detect_mult: mult,
        passive: false,
    }
}

impl Link {
    pub fn new(a: SessionConfig, b: SessionConfig, delay: Duration) -> Link {
        let t0 = Instant::now();
        Link {
            t0,
            now: t0,
            a: Session::new(a, t0).unwrap(),
            b: Session::new(b, t0).unwrap(),
            delay,
            a_to_b: true,
            b_to_a: true,
            drop_finals: false,
            in_flight: Vec::new(),
            events: Vec::new(),
            sent: Vec::new(),
            received: Vec::new(),
            discarded: Vec::new(),
        }
    }

    pub fn at(&self, d: Duration) -> Instant {
        self.t0 + d
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    pub fn session(&mut self, side: Side) -> &mut Session {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// Cuts the link both ways; packets already on the wire are lost too.
    pub fn cut(&mut self) {
        self.a_to_b = false;
        self.b_to_a = false;
        self.in_flight.clear();
    }

    fn next_instant(&self) -> Option<Instant> {
        [self.a.next_deadline(), self.b.next_deadline()]
            .into_iter()
            .chain(self.in_flight.iter().map(|(t, _, _)| Some(*t)))
            .flatten()
            .min()
    }

    /// Runs every deadline and delivery up to and including `until`, then
    /// leaves the clock at `until`.
    pub fn run_until(&mut self, until: Duration) {
        let until = self.at(until);
        let mut steps = 0;
        while let Some(next) = self.next_instant() {
            if next > until {
                break;
            }
            assert!(
                next >= self.now,
                "time went backwards: a deadline in the past was left pending"
            );
            self.now = next;
            self.step();
            steps += 1;
            assert!(steps < 1_000_000, "simulation does not settle");
        }
        self.now = self.now.max(until);
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.elapsed() + d;
        self.run_until(until);
    }

    /// Everything due at `self.now`: deliveries, timers, transmissions.
    pub fn step(&mut self) {
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|(t, _, _)| *t <= now);
        self.in_flight = later;
        for (_, to, bytes) in due {
            let packet = decode(&bytes).expect("sessions only send valid packets");
            self.deliver(to, &packet);
        }
        for side in [Side::A, Side::B] {
            if let Some(event) = self.session(side).on_timer(now) {
                self.log_event(side, event);
            }
        }
        self.flush();
    }

    /// Hands `packet` to `to`'s session at the current time, logging the outcome.
    pub fn deliver(&mut self, to: Side, packet: &ControlPacket) {
        let now = self.now;
        let at = self.elapsed();
        match self.session(to).receive(now, packet) {
            Ok(event) => {
                self.received.push(Logged {
                    at,
                    side: to,
                    what: *packet,
                });
                if let Some(event) = event {
                    self.log_event(to, event);
                }
            }
            Err(discard) => self.discarded.push(Logged {
                at,
                side: to,
                what: discard,
            }),
        }
    }

    /// Sends whatever both sessions have to send now.
    pub fn flush(&mut self) {
        let now = self.now;
        for side in [Side::A, Side::B] {
            while let Some(packet) = self.session(side).poll_transmit(now) {
                self.sent.push(Logged {
                    at: now - self.t0,
                    side,
                    what: packet,
                });
                let up = match side {
                    Side::A => self.a_to_b,
                    Side::B => self.b_to_a,
                };
                if up && !(self.drop_finals && packet.final_) {
                    self.in_flight
                        .push((now + self.delay, side.other(), encode(&packet).to_vec()));
                }
            }
        }
    }

    fn log_event(&mut self, side: Side, what: Event) {
        self.events.push(Logged {
            at: self.elapsed(),
            side,
            what,
        });
    }

    pub fn events_of(&self, side: Side) -> Vec<(Duration, Event)> {
        self.events
            .iter()
            .filter(|e| e.side == side)
            .map(|e| (e.at, e.what))
            .collect()
    }

    pub fn sent_by(&self, side: Side) -> Vec<(Duration, ControlPacket)> {
        self.sent
            .iter()
            .filter(|e| e.side == side)
            .map(|e| (e.at, e.what))
            .collect()
    }

    /// When `side` last accepted a packet.
    pub fn last_received_by(&self, side: Side) -> Duration {
        self.received
            .iter()
            .rev()
            .find(|e| e.side == side)
            .expect("nothing received")
            .at
    }

    /// Brings both sessions Up and lets every Poll Sequence finish.
    pub fn bring_up(&mut self) {
        self.run_for(ms(3000));
        assert_eq!(self.a.state(), bfd::State::Up);
        assert_eq!(self.b.state(), bfd::State::Up);
        assert!(!self.a.poll_in_progress() && !self.b.poll_in_progress());
    }
}
