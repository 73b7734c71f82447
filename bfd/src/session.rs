//! One BFD session in asynchronous mode: the RFC 5880 §6.2 state machine,
//! the §6.8.6 reception procedure, timer negotiation and Poll Sequences
//! (§6.5, §6.8.3), detection (§6.8.4) and transmission (§6.8.7), with the
//! events a client sees (RFC 5882).
//!
//! ```text
//!   decoded packet --> receive(now, &pkt) --> Ok(Some(Event)) / Err(Discard)
//!   next_deadline() -> sleep until it -> on_timer(now) --> Option<Event>
//!   after any call:   while let Some(pkt) = poll_transmit(now) { send(encode(&pkt)) }
//! ```

use std::time::{Duration, Instant};

use crate::packet::{check, ControlPacket, DecodeError, Diagnostic, State};
use crate::timers::{
    detection_time, jittered_with_slack, transmit_interval, RandomSource, XorShift64, SLOW_TX_INTERVAL,
};

/// What the caller chooses for a session (RFC 5880 §6.8.1 state variables
/// that are configuration, not protocol state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// `bfd.LocalDiscr`: unique among our sessions, nonzero; the caller
    /// picks it and uses it to route packets by Your Discriminator.
    pub local_discriminator: u32,
    /// `bfd.DesiredMinTxInterval` once Up (while not Up at least 1 s is
    /// advertised, §6.8.3). Nonzero, at most `u32::MAX` µs; kept to whole µs.
    pub desired_min_tx: Duration,
    /// `bfd.RequiredMinRxInterval`: how fast we accept packets. Zero asks
    /// the remote not to send periodic packets, and disables detection.
    pub required_min_rx: Duration,
    /// `bfd.DetectMult`: how many of our intervals the remote waits.
    pub detect_mult: u8,
    /// Passive role (§6.1): send nothing until the remote has been heard.
    pub passive: bool,
}

impl SessionConfig {
    /// 300 ms each way, multiplier 3, active: a common router default.
    pub fn new(local_discriminator: u32) -> SessionConfig {
        SessionConfig {
            local_discriminator,
            desired_min_tx: Duration::from_millis(300),
            required_min_rx: Duration::from_millis(300),
            detect_mult: 3,
            passive: false,
        }
    }
}

/// A configuration a session cannot run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// My Discriminator must be nonzero (RFC 5880 §6.8.1).
    #[error("local discriminator must be nonzero")]
    ZeroDiscriminator,
    /// Desired Min TX zero is reserved (RFC 5880 §4.1).
    #[error("desired min TX interval must be at least 1 µs")]
    ZeroDesiredMinTx,
    /// Detect Mult zero is discarded by receivers (RFC 5880 §6.8.6).
    #[error("detect multiplier must be nonzero")]
    ZeroDetectMult,
    /// Intervals travel as 32-bit microseconds (RFC 5880 §4.1).
    #[error("interval {0:?} does not fit 32 bits of microseconds")]
    IntervalTooLarge(Duration),
}

/// Why [`Session::receive`] discarded a packet; the session is unchanged
/// except as noted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Discard {
    /// A packet-level RFC 5880 §6.8.6 check failed (see [`check`]).
    #[error(transparent)]
    Invalid(#[from] DecodeError),
    /// §6.8.6: a nonzero Your Discriminator that is not ours selects no session.
    #[error("your discriminator {got} is not ours ({ours})")]
    WrongYourDiscriminator {
        /// The packet's Your Discriminator.
        got: u32,
        /// Our local discriminator.
        ours: u32,
    },
    /// §6.8.6: "If bfd.SessionState is AdminDown: Discard the packet." The
    /// remote's state and timers were recorded first, as the RFC orders.
    #[error("session is administratively down")]
    AdminDown,
}

/// What the client of the session (BGP) learns (RFC 5882 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Down → Init: the remote is heard, the handshake goes on.
    Init,
    /// The session is Up: the path works both ways.
    Up,
    /// The session went to Down from Init or Up.
    Down {
        /// The state left.
        from: State,
        /// Our new `bfd.LocalDiag`: 1 on detection timeout, 3 when the remote
        /// signalled Down or AdminDown.
        diag: Diagnostic,
        /// The remote signalled AdminDown. RFC 5882 §3.2: this is not a path
        /// failure, and the client must not tear down on it.
        remote_admin_down: bool,
    },
    /// We went AdminDown ([`Session::set_admin_down`]): no failure either.
    AdminDown {
        /// The state left.
        from: State,
    },
}

impl Event {
    /// Whether the client should treat this as the forwarding path failing
    /// (RFC 5882 §3.2): an Up session going Down for any reason but the
    /// remote's AdminDown.
    pub fn is_path_failure(&self) -> bool {
        matches!(
            self,
            Event::Down {
                from: State::Up,
                remote_admin_down: false,
                ..
            }
        )
    }
}

/// Progress of our Poll Sequence (RFC 5880 §6.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Poll {
    Idle,
    Active,
    /// Our values changed again while polling: the next Final may answer a
    /// Poll that carried the old ones, so one more round is needed.
    ActiveRestart,
}

/// One BFD session (RFC 5880 §6.8.1 state), generic over its jitter source.
#[derive(Clone, Debug)]
pub struct Session<R = XorShift64> {
    config: SessionConfig,
    rng: R,
    state: State,
    local_diag: Diagnostic,
    remote_state: State,
    remote_discr: u32,
    remote_min_rx: Duration,
    remote_desired_min_tx: Duration,
    remote_detect_mult: u8,
    remote_demand: bool,
    /// Desired Min TX / Required Min RX as advertised in our packets.
    adv_tx: Duration,
    adv_rx: Duration,
    /// The values our own timers use: during a Poll Sequence the faster TX
    /// and the slower RX of old and new (§6.8.3), so neither side times out.
    eff_tx: Duration,
    eff_rx: Duration,
    poll: Poll,
    /// A Poll arrived: the next packet carries Final (§6.8.7).
    send_final: bool,
    /// Our state changed: send without waiting for the periodic timer.
    send_now: bool,
    urgent_at: Instant,
    next_tx: Instant,
    /// When the last accepted packet arrived; None before one, or after the
    /// Detection Time passed without one.
    last_rx: Option<Instant>,
    /// How late the caller may act on a deadline ([`Session::set_transmit_slack`]).
    tx_slack: Duration,
}

fn whole_micros(d: Duration) -> Result<Duration, ConfigError> {
    let us = u32::try_from(d.as_micros()).map_err(|_| ConfigError::IntervalTooLarge(d))?;
    Ok(Duration::from_micros(u64::from(us)))
}

fn micros_u32(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

fn validate(config: SessionConfig) -> Result<SessionConfig, ConfigError> {
    if config.local_discriminator == 0 {
        return Err(ConfigError::ZeroDiscriminator);
    }
    if config.detect_mult == 0 {
        return Err(ConfigError::ZeroDetectMult);
    }
    let desired_min_tx = whole_micros(config.desired_min_tx)?;
    if desired_min_tx.is_zero() {
        return Err(ConfigError::ZeroDesiredMinTx);
    }
    let required_min_rx = whole_micros(config.required_min_rx)?;
    Ok(SessionConfig {
        desired_min_tx,
        required_min_rx,
        ..config
    })
}

impl Session<XorShift64> {
    /// A session in Down, jitter seeded from the local discriminator.
    pub fn new(config: SessionConfig, now: Instant) -> Result<Self, ConfigError> {
        Session::with_rng(config, now, XorShift64::new(u64::from(config.local_discriminator)))
    }
}

impl<R: RandomSource> Session<R> {
    /// A session in Down (§6.8.1 initial values) that draws jitter from `rng`.
    /// An active session's first packet is due at `now`.
    pub fn with_rng(config: SessionConfig, now: Instant, rng: R) -> Result<Self, ConfigError> {
        let config = validate(config)?;
        let adv_tx = config.desired_min_tx.max(SLOW_TX_INTERVAL);
        Ok(Session {
            config,
            rng,
            state: State::Down,
            local_diag: Diagnostic::None,
            remote_state: State::Down,
            remote_discr: 0,
            // §6.8.1: bfd.RemoteMinRxInterval starts at 1 µs.
            remote_min_rx: Duration::from_micros(1),
            remote_desired_min_tx: Duration::ZERO,
            remote_detect_mult: 0,
            remote_demand: false,
            adv_tx,
            adv_rx: config.required_min_rx,
            eff_tx: adv_tx,
            eff_rx: config.required_min_rx,
            poll: Poll::Idle,
            send_final: false,
            send_now: false,
            urgent_at: now,
            next_tx: now,
            last_rx: None,
            tx_slack: Duration::ZERO,
        })
    }

    /// The configuration (intervals rounded down to whole microseconds).
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// `bfd.SessionState`.
    pub fn state(&self) -> State {
        self.state
    }

    /// `bfd.LocalDiag`: why our state last changed.
    pub fn local_diag(&self) -> Diagnostic {
        self.local_diag
    }

    /// `bfd.RemoteSessionState`: the state in the last accepted packet.
    pub fn remote_state(&self) -> State {
        self.remote_state
    }

    /// `bfd.RemoteDiscr`: 0 until heard, and again after a Detection Time of silence.
    pub fn remote_discriminator(&self) -> u32 {
        self.remote_discr
    }

    /// `bfd.DetectMult` of the remote as last heard (0 before).
    pub fn remote_detect_mult(&self) -> u8 {
        self.remote_detect_mult
    }

    /// The interval the remote sends at (§6.8.4): the larger of our Required
    /// Min RX in force and its Desired Min TX; zero before it is heard.
    pub fn receive_interval(&self) -> Duration {
        if self.remote_detect_mult == 0 {
            return Duration::ZERO;
        }
        self.eff_rx.max(self.remote_desired_min_tx)
    }

    /// Whether our Poll Sequence is in progress (§6.5).
    pub fn poll_in_progress(&self) -> bool {
        self.poll != Poll::Idle
    }

    /// The negotiated periodic transmit interval before jitter (§6.8.7).
    pub fn transmit_interval(&self) -> Duration {
        transmit_interval(self.eff_tx, self.remote_min_rx)
    }

    /// The Detection Time in force (§6.8.4), or None before the remote is
    /// heard or when our Required Min RX is zero.
    pub fn detection_time(&self) -> Option<Duration> {
        if self.remote_detect_mult == 0 || self.eff_rx.is_zero() {
            return None;
        }
        Some(detection_time(
            self.remote_detect_mult,
            self.eff_rx,
            self.remote_desired_min_tx,
        ))
    }

    /// When the Detection Time runs out without a packet.
    pub fn detection_deadline(&self) -> Option<Instant> {
        Some(self.last_rx? + self.detection_time()?)
    }

    /// §6.8.7: a passive session stays silent until it knows the remote.
    fn may_transmit(&self) -> bool {
        !(self.config.passive && self.remote_discr == 0)
    }

    /// §6.8.7: no periodic packets when the remote wants none (Required Min
    /// RX zero), or in Demand mode on the remote outside a Poll Sequence.
    fn periodic_allowed(&self) -> bool {
        let remote_demand_active = self.remote_demand && self.state == State::Up && self.remote_state == State::Up;
        let remote_wants_none = self.remote_min_rx.is_zero();
        let demand_silenced = remote_demand_active && self.poll == Poll::Idle;
        !remote_wants_none && !demand_silenced
    }

    /// The earliest instant the caller must act: a packet to send (call
    /// [`Session::poll_transmit`]) or the detection deadline (call
    /// [`Session::on_timer`]). None when nothing is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next = self.detection_deadline();
        if self.may_transmit() {
            let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
            if self.send_final || self.send_now {
                consider(self.urgent_at);
            }
            if self.periodic_allowed() {
                consider(self.next_tx);
            }
        }
        next
    }

    /// The next packet to send at `now`, if any: an answer with Final or a
    /// state change at once, otherwise a periodic one when due (§6.8.7).
    /// Call until None. Immediate packets leave the periodic schedule alone
    /// (§6.5: a Final is "independent of any periodic BFD Control packets");
    /// a periodic one re-arms it with a fresh jittered interval.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<ControlPacket> {
        if !self.may_transmit() {
            return None;
        }
        let periodic_due = now >= self.next_tx && self.periodic_allowed();
        if !(self.send_final || self.send_now || periodic_due) {
            return None;
        }
        let final_ = self.send_final;
        let packet = ControlPacket {
            diag: self.local_diag,
            state: self.state,
            // §6.5: never P and F together; the Poll resumes on the next packet.
            poll: self.poll != Poll::Idle && !final_,
            final_,
            control_plane_independent: false,
            authentication: false,
            demand: false,
            multipoint: false,
            detect_mult: self.config.detect_mult,
            my_discriminator: self.config.local_discriminator,
            your_discriminator: self.remote_discr,
            desired_min_tx: micros_u32(self.adv_tx),
            required_min_rx: micros_u32(self.adv_rx),
            required_min_echo_rx: 0,
        };
        self.send_final = false;
        self.send_now = false;
        if periodic_due {
            self.next_tx = now + self.jittered_interval();
        }
        Some(packet)
    }

    fn jittered_interval(&mut self) -> Duration {
        let interval = self.transmit_interval();
        jittered_with_slack(interval, self.config.detect_mult, self.tx_slack, &mut self.rng)
    }

    /// Declares that the caller may call [`Session::poll_transmit`] up to
    /// `slack` after [`Session::next_deadline`] (to serve many sessions per
    /// wakeup): periodic intervals are then drawn at least `slack` short of
    /// the RFC 5880 §6.8.7 maximum, so the late packet is still on time.
    pub fn set_transmit_slack(&mut self, slack: Duration) {
        self.tx_slack = slack;
    }

    /// Handles an expired detection timer (RFC 5880 §6.8.4): when the
    /// Detection Time passes without a packet, forget the remote
    /// (`bfd.RemoteDiscr` = 0, §6.8.1) and, from Init or Up, go Down with
    /// diag 1. Harmless to call early or often.
    pub fn on_timer(&mut self, now: Instant) -> Option<Event> {
        let deadline = self.detection_deadline()?;
        if now < deadline {
            return None;
        }
        self.last_rx = None;
        self.remote_discr = 0;
        self.remote_state = State::Down;
        self.remote_demand = false;
        match self.state {
            State::Init | State::Up => Some(self.go_down(now, Diagnostic::ControlDetectionTimeExpired, false)),
            State::Down | State::AdminDown => None,
        }
    }

    /// The RFC 5880 §6.8.6 reception procedure for a packet addressed to this
    /// session. Returns the state change it caused, if any; a discarded
    /// packet changes nothing (but see [`Discard::AdminDown`]).
    pub fn receive(&mut self, now: Instant, packet: &ControlPacket) -> Result<Option<Event>, Discard> {
        check(packet)?;
        let ours = self.config.local_discriminator;
        if packet.your_discriminator != 0 && packet.your_discriminator != ours {
            return Err(Discard::WrongYourDiscriminator {
                got: packet.your_discriminator,
                ours,
            });
        }
        let interval_before = self.transmit_interval();
        self.remote_discr = packet.my_discriminator;
        self.remote_state = packet.state;
        self.remote_demand = packet.demand;
        self.remote_min_rx = Duration::from_micros(u64::from(packet.required_min_rx));
        self.remote_desired_min_tx = Duration::from_micros(u64::from(packet.desired_min_tx));
        self.remote_detect_mult = packet.detect_mult;
        if packet.final_ {
            self.end_poll_round();
        }
        self.on_interval_change(now, interval_before);

        if self.state == State::AdminDown {
            return Err(Discard::AdminDown);
        }
        self.last_rx = Some(now);
        let event = match (self.state, packet.state) {
            (State::Init | State::Up, State::AdminDown) => {
                Some(self.go_down(now, Diagnostic::NeighborSignaledSessionDown, true))
            }
            (State::Down, State::Down) => Some(self.set_state(now, State::Init, Diagnostic::None)),
            (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                Some(self.set_state(now, State::Up, Diagnostic::None))
            }
            (State::Up, State::Down) => Some(self.go_down(now, Diagnostic::NeighborSignaledSessionDown, false)),
            _ => None,
        };
        if packet.poll {
            // §6.8.6: answer a Poll with Final "as soon as practicable".
            self.send_final = true;
            self.mark_urgent(now);
        }
        Ok(event)
    }

    /// Changes our intervals (RFC 5880 §6.8.3). While Init or Up this starts
    /// a Poll Sequence, and a slower TX or a faster RX only takes effect once
    /// the remote answered with Final.
    pub fn set_timers(
        &mut self,
        now: Instant,
        desired_min_tx: Duration,
        required_min_rx: Duration,
    ) -> Result<(), ConfigError> {
        let config = validate(SessionConfig {
            desired_min_tx,
            required_min_rx,
            ..self.config
        })?;
        self.config = config;
        self.update_advertised(now);
        Ok(())
    }

    /// Changes `bfd.DetectMult`. It travels in every packet and the remote
    /// computes its Detection Time from the latest one (§6.8.4), so no Poll
    /// Sequence is needed.
    pub fn set_detect_mult(&mut self, detect_mult: u8) -> Result<(), ConfigError> {
        self.config = validate(SessionConfig {
            detect_mult,
            ..self.config
        })?;
        Ok(())
    }

    /// Takes the session administratively down (RFC 5880 §6.8.16): state
    /// AdminDown, diag 7, sent at once and then periodically so the remote
    /// learns it. None if it already was.
    pub fn set_admin_down(&mut self, now: Instant) -> Option<Event> {
        if self.state == State::AdminDown {
            return None;
        }
        let from = self.state;
        self.set_state(now, State::AdminDown, Diagnostic::AdministrativelyDown);
        self.last_rx = None;
        Some(Event::AdminDown { from })
    }

    /// Lets the session come up again (RFC 5880 §6.8.16): AdminDown → Down.
    pub fn set_admin_up(&mut self, now: Instant) {
        if self.state == State::AdminDown {
            self.set_state(now, State::Down, Diagnostic::None);
        }
    }

    fn go_down(&mut self, now: Instant, diag: Diagnostic, remote_admin_down: bool) -> Event {
        let from = self.state;
        self.set_state(now, State::Down, diag);
        Event::Down {
            from,
            diag,
            remote_admin_down,
        }
    }

    fn set_state(&mut self, now: Instant, to: State, diag: Diagnostic) -> Event {
        let from = self.state;
        self.state = to;
        self.local_diag = diag;
        self.send_now = true;
        self.mark_urgent(now);
        if matches!(to, State::Down | State::AdminDown) {
            self.poll = Poll::Idle;
        }
        self.update_advertised(now);
        match to {
            State::Init => Event::Init,
            State::Up => Event::Up,
            State::AdminDown => Event::AdminDown { from },
            State::Down => Event::Down {
                from,
                diag,
                remote_admin_down: false,
            },
        }
    }

    fn mark_urgent(&mut self, now: Instant) {
        self.urgent_at = now;
    }

    /// Recomputes what we advertise from the configuration and state
    /// (§6.8.3), starting a Poll Sequence when it changed in Init or Up.
    fn update_advertised(&mut self, now: Instant) {
        let interval_before = self.transmit_interval();
        let tx = if self.state == State::Up {
            self.config.desired_min_tx
        } else {
            self.config.desired_min_tx.max(SLOW_TX_INTERVAL)
        };
        let rx = self.config.required_min_rx;
        if (tx, rx) != (self.adv_tx, self.adv_rx) {
            self.adv_tx = tx;
            self.adv_rx = rx;
            match self.state {
                State::Init | State::Up => {
                    self.eff_tx = self.eff_tx.min(tx);
                    self.eff_rx = self.eff_rx.max(rx);
                    self.poll = match self.poll {
                        Poll::Idle => Poll::Active,
                        Poll::Active | Poll::ActiveRestart => Poll::ActiveRestart,
                    };
                }
                State::Down | State::AdminDown => {}
            }
        }
        if matches!(self.state, State::Down | State::AdminDown) {
            // Nothing the remote relies on: new values apply at once.
            self.eff_tx = self.adv_tx;
            self.eff_rx = self.adv_rx;
        }
        self.on_interval_change(now, interval_before);
    }

    /// A Final arrived (§6.5): our Poll Sequence ends, and the values it
    /// carried take full effect, unless they changed again meanwhile.
    fn end_poll_round(&mut self) {
        match self.poll {
            Poll::Idle => {}
            Poll::Active => {
                self.poll = Poll::Idle;
                self.eff_tx = self.adv_tx;
                self.eff_rx = self.adv_rx;
            }
            Poll::ActiveRestart => self.poll = Poll::Active,
        }
    }

    /// When the interval shrank, the next periodic packet must not wait
    /// for the old, longer one.
    fn on_interval_change(&mut self, now: Instant, before: Duration) {
        if self.transmit_interval() < before {
            let sooner = now + self.jittered_interval();
            self.next_tx = self.next_tx.min(sooner);
        }
    }
}
