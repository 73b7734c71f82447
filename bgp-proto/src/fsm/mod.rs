//! RFC 4271 §8 session finite state machine, sans-IO.
//!
//! The caller owns sockets and the clock; the FSM only decides. Every input is
//! an [`Event`] plus the current time, every output an [`Action`]; the timers
//! the FSM keeps are polled with [`Fsm::next_timer`] (like quinn's
//! `poll_timeout`), never announced as actions:
//!
//! ```text
//!   TCP / decoded messages / timer expiries --Event--> Fsm::handle(event, now)
//!                                                           |
//!   Connect, SendOpen, SendKeepalive, Established, ...  <--Vec<Action>
//!
//!   Fsm::next_timer() --> (Timer::Hold(c), deadline); at the deadline feed
//!                         Timer::Hold(c).expiry_event() to handle
//! ```
//!
//! The FSM tracks up to two TCP connections at once (one we initiated, one the
//! peer initiated) so that a connection collision (RFC 4271 §6.8) is resolved
//! by BGP identifier. Timers that belong to a connection carry its [`ConnId`];
//! a timer expiry that arrives after the timer was stopped or re-armed is
//! recognised by its deadline and ignored, so a caller that slept on an old
//! deadline does no harm.
//!
//! Randomness (RFC 4271 §10 jitter) comes from a small xorshift generator
//! seeded by [`FsmConfig::jitter_seed`], so a run is reproducible.

mod config;
mod event;
mod jitter;
mod negotiated;
mod open_check;
mod reason;
#[cfg(test)]
mod tests;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

pub use config::{FsmConfig, State};
pub use event::{Action, ConnId, Direction, Event, Timer};
use jitter::Jitter;
pub use negotiated::Negotiated;
use open_check::{check_open, keepalive_for};
pub use reason::{hard_reset_for, DownReason, OpenError};

use crate::capability::Capability;
use crate::error::{code, DecodeError};
use crate::notification::{cease, Notification};
use crate::open::Open;

/// Hold timer while waiting for the peer's OPEN (RFC 4271 §8.2.2: "a large
/// value", suggested 4 minutes).
pub const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);

/// How early a timer expiry may be reported and still count: callers' timer
/// wheels round, and a stale expiry is always far earlier than the new deadline.
const TIMER_SLACK: Duration = Duration::from_millis(100);

/// Whether the FSM may run a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Idle until a start event.
    Stopped,
    /// Idle, automatic restart when the IdleHold timer fires.
    Waiting,
    /// Trying to establish or established.
    Running,
}

/// How far one connection got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Outgoing TCP connect in progress.
    Connecting,
    /// TCP up, DelayOpen timer running, our OPEN not sent yet.
    DelayOpen,
    OpenSent,
    OpenConfirm,
    Established,
}

#[derive(Clone, Debug)]
struct Conn {
    id: ConnId,
    dir: Direction,
    phase: Phase,
    /// Set once the peer's OPEN was accepted on this connection.
    negotiated: Option<Negotiated>,
}

impl Conn {
    fn state(&self) -> State {
        match (self.phase, self.dir) {
            (Phase::Connecting, _) | (Phase::DelayOpen, Direction::Outgoing) => State::Connect,
            (Phase::DelayOpen, Direction::Incoming) => State::Active,
            (Phase::OpenSent, _) => State::OpenSent,
            (Phase::OpenConfirm, _) => State::OpenConfirm,
            (Phase::Established, _) => State::Established,
        }
    }

    /// Our OPEN went out on this connection, so a NOTIFICATION makes sense.
    fn open_sent(&self) -> bool {
        self.phase >= Phase::OpenSent
    }
}

/// Our OPEN for `cfg`: its capabilities, plus the BGP role if configured.
fn local_open(cfg: &FsmConfig) -> Open {
    let mut capabilities = cfg.capabilities.clone();
    if let Some(role) = cfg.role {
        if !capabilities.iter().any(|c| matches!(c, Capability::Role(_))) {
            capabilities.push(Capability::Role(role));
        }
    }
    Open::new(cfg.local_asn, cfg.hold_time, cfg.local_id, capabilities)
}

/// Where a failed connection leaves the session when it was the last one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    /// Keep listening and retry after ConnectRetry (RFC 4271 §8.2.2 OpenSent, Event 18).
    Active,
    /// Idle, automatic restart after the IdleHold backoff.
    Idle,
}

/// The BGP session state machine for one peer.
///
/// The whole contract for driving it:
/// 1. Call [`handle`](Fsm::handle) for every input (operator command, TCP
///    event, decoded message) and carry out the returned actions in order.
/// 2. After each `handle`, ask [`next_timer`](Fsm::next_timer) for the
///    earliest deadline and wait until it or the next input, whichever comes
///    first. Only `handle` arms or stops timers, so the answer holds until then.
/// 3. Once the deadline has passed, feed that timer's
///    [`expiry_event`](Timer::expiry_event) to `handle`. Up to 100 ms early
///    still counts (timer wheels round); an expiry for a timer re-armed or
///    stopped meanwhile is ignored.
///
/// `now` is the caller's monotonic clock at the moment of the event. The FSM
/// has no clock of its own: every deadline is the `now` it was armed at plus
/// a duration, so tests drive it with a fake clock.
#[derive(Clone, Debug)]
pub struct Fsm {
    cfg: FsmConfig,
    local_open: Open,
    mode: Mode,
    conns: Vec<Conn>,
    /// Armed timers and their deadlines (`None`: beyond what `Instant` can hold).
    timers: Vec<(Timer, Option<Instant>)>,
    jitter: Jitter,
    next_conn: u64,
    /// Consecutive failures, for the IdleHold backoff.
    failures: u32,
    established_since: Option<Instant>,
    last_error: Option<DownReason>,
}

impl Fsm {
    /// A stopped (Idle) FSM; feed it [`Event::ManualStart`] or [`Event::AutomaticStart`].
    pub fn new(mut cfg: FsmConfig) -> Fsm {
        if cfg.hold_time == 1 || cfg.hold_time == 2 {
            cfg.hold_time = 3;
        }
        let local_open = local_open(&cfg);
        Fsm {
            jitter: Jitter::new(cfg.jitter_seed),
            cfg,
            local_open,
            mode: Mode::Stopped,
            conns: Vec::new(),
            timers: Vec::new(),
            next_conn: 1,
            failures: 0,
            established_since: None,
            last_error: None,
        }
    }

    pub fn config(&self) -> &FsmConfig {
        &self.cfg
    }

    /// Replaces the capabilities of the OPENs sent from now on (a connection
    /// that already sent its OPEN keeps what it sent). Some are live state:
    /// the graceful-restart R and F bits change once a restart is over.
    pub fn set_capabilities(&mut self, capabilities: Vec<Capability>) {
        self.cfg.capabilities = capabilities;
        self.local_open = local_open(&self.cfg);
    }

    /// The OPEN we send.
    pub fn local_open(&self) -> &Open {
        &self.local_open
    }

    /// Session state: Idle when stopped or waiting to restart, otherwise that
    /// of the most advanced connection.
    pub fn state(&self) -> State {
        if self.mode != Mode::Running {
            return State::Idle;
        }
        self.conns
            .iter()
            .max_by_key(|c| (c.phase, c.dir == Direction::Outgoing))
            .map_or(State::Active, Conn::state)
    }

    /// State of one connection, if the FSM still tracks it.
    pub fn connection_state(&self, id: ConnId) -> Option<State> {
        self.conn(id).map(Conn::state)
    }

    /// The connection the session is established on.
    pub fn established_conn(&self) -> Option<ConnId> {
        self.conns.iter().find(|c| c.phase == Phase::Established).map(|c| c.id)
    }

    /// Negotiated parameters of the established connection, or of one in
    /// OpenConfirm (the peer's OPEN accepted, KEEPALIVE pending).
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.conns
            .iter()
            .filter(|c| c.phase >= Phase::OpenConfirm)
            .max_by_key(|c| c.phase)
            .and_then(|c| c.negotiated.as_ref())
    }

    /// Why the session last went down or failed.
    pub fn last_error(&self) -> Option<&DownReason> {
        self.last_error.as_ref()
    }

    pub fn established_since(&self) -> Option<Instant> {
        self.established_since
    }

    /// A fresh connection id, for an incoming connection the caller accepted.
    pub fn new_conn_id(&mut self) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn = self.next_conn.wrapping_add(1);
        id
    }

    /// Armed timers with their deadlines, in no particular order (for status
    /// displays and tests; to drive the FSM, [`next_timer`](Fsm::next_timer) is enough).
    pub fn timers(&self) -> impl Iterator<Item = (Timer, Instant)> + '_ {
        self.timers.iter().filter_map(|(t, d)| d.map(|d| (*t, d)))
    }

    /// The timer due first and its deadline; `None` when nothing is armed.
    /// Ask after every [`handle`](Fsm::handle): it may have armed, re-armed or
    /// stopped timers.
    pub fn next_timer(&self) -> Option<(Timer, Instant)> {
        self.timers().min_by_key(|(_, d)| *d)
    }

    /// Feeds one event that happened at `now`; returns what to do, in order.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::ManualStart => self.manual_start(now, &mut out),
            Event::AutomaticStart => {
                // RFC 4271 §8.2.2 Idle: AutomaticStart is ignored while the
                // IdleHoldTimer runs (DampPeerOscillations).
                if self.mode == Mode::Stopped {
                    self.start(now, &mut out);
                }
            }
            Event::ManualStop => self.manual_stop(None, now, &mut out),
            Event::ManualStopWithMessage(m) => self.manual_stop(Some(m), now, &mut out),
            Event::AutomaticStop(n) => self.automatic_stop(n, now, &mut out),
            Event::IdleHoldTimerExpires => {
                if self.take_timer(Timer::IdleHold, now) && self.mode == Mode::Waiting {
                    self.start(now, &mut out);
                }
            }
            Event::ConnectRetryTimerExpires => self.connect_retry_expires(now, &mut out),
            Event::HoldTimerExpires(id) => {
                if self.take_timer(Timer::Hold(id), now) && self.conn(id).is_some() {
                    let n = Notification::new(code::HOLD_TIMER_EXPIRED, 0);
                    let reason = DownReason::HoldTimerExpired;
                    self.conn_failed(id, Some(n), reason, After::Idle, now, &mut out);
                }
            }
            Event::KeepaliveTimerExpires(id) => self.keepalive_expires(id, now, &mut out),
            Event::DelayOpenTimerExpires(id) => {
                if self.take_timer(Timer::DelayOpen(id), now) && self.phase(id) == Some(Phase::DelayOpen) {
                    self.send_open(id, now, &mut out);
                }
            }
            Event::TcpCrAcked(id) => match self.conn(id) {
                Some(c) if c.dir == Direction::Outgoing && c.phase == Phase::Connecting => {
                    self.tcp_up(id, now, &mut out)
                }
                Some(_) => {}
                // A connect we abandoned completed anyway: make sure it is closed.
                None => out.push(Action::CloseConnection(id)),
            },
            Event::TcpConnectionConfirmed(id) => self.incoming(id, now, &mut out),
            Event::TcpConnectionFails(id) => {
                if let Some(c) = self.conn(id) {
                    // RFC 4271 §8.2.2: OpenConfirm and Established fall to Idle;
                    // Connect, Active and OpenSent keep listening (Active).
                    let after = if c.phase >= Phase::OpenConfirm {
                        After::Idle
                    } else {
                        After::Active
                    };
                    self.conn_failed(id, None, DownReason::ConnectionClosed, after, now, &mut out);
                }
            }
            Event::BgpOpen(id, open) => match self.phase(id) {
                Some(Phase::DelayOpen | Phase::OpenSent) => self.open_received(id, open, now, &mut out),
                Some(Phase::OpenConfirm | Phase::Established) => self.unexpected(id, "OPEN", now, &mut out),
                Some(Phase::Connecting) | None => {}
            },
            Event::BgpHeaderErr(id, err) | Event::BgpOpenMsgErr(id, err) => self.decode_failed(id, err, now, &mut out),
            Event::UpdateMsgErr(id, err) => match self.phase(id) {
                Some(Phase::Established) => self.decode_failed(id, err, now, &mut out),
                _ => self.unexpected(id, "UPDATE", now, &mut out),
            },
            Event::NotifMsg(id, n) => {
                if self.phase(id).is_some_and(|p| p > Phase::Connecting) {
                    let reason = DownReason::NotificationReceived(n);
                    self.conn_failed(id, None, reason, After::Idle, now, &mut out);
                }
            }
            Event::KeepAliveMsg(id) => match self.phase(id) {
                Some(Phase::OpenConfirm) => self.establish(id, now, &mut out),
                Some(Phase::Established) => self.restart_hold(id, now),
                _ => self.unexpected(id, "KEEPALIVE", now, &mut out),
            },
            Event::UpdateMsg(id) => match self.phase(id) {
                Some(Phase::Established) => self.restart_hold(id, now),
                _ => self.unexpected(id, "UPDATE", now, &mut out),
            },
            Event::RouteRefreshMsg(id) => match self.phase(id) {
                Some(Phase::Established) => self.restart_hold(id, now),
                _ => self.unexpected(id, "ROUTE-REFRESH", now, &mut out),
            },
        }
        out
    }

    // ----- connections -----

    fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns.iter().find(|c| c.id == id)
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.iter_mut().find(|c| c.id == id)
    }

    fn phase(&self, id: ConnId) -> Option<Phase> {
        self.conn(id).map(|c| c.phase)
    }

    fn set_phase(&mut self, id: ConnId, phase: Phase) {
        if let Some(c) = self.conn_mut(id) {
            c.phase = phase;
        }
    }

    /// Closes, without a NOTIFICATION, every connection matching `pred`.
    fn close_where(&mut self, pred: impl Fn(&Conn) -> bool, out: &mut Vec<Action>) {
        let ids: Vec<ConnId> = self.conns.iter().filter(|c| pred(c)).map(|c| c.id).collect();
        for id in ids {
            self.close_conn(id, None, out);
        }
    }

    /// Removes a connection: NOTIFICATION (if given), its timers stopped, closed.
    /// Returns it, or `None` if the FSM did not track `id`.
    fn close_conn(&mut self, id: ConnId, notification: Option<Notification>, out: &mut Vec<Action>) -> Option<Conn> {
        let pos = self.conns.iter().position(|c| c.id == id)?;
        let conn = self.conns.remove(pos);
        if let Some(n) = notification {
            let graceful = conn.negotiated.as_ref().is_some_and(|n| n.graceful_notification);
            out.push(Action::SendNotification(
                id,
                if graceful { hard_reset_for(n) } else { n },
            ));
        }
        for t in [Timer::Hold(id), Timer::Keepalive(id), Timer::DelayOpen(id)] {
            self.stop_timer(t);
        }
        out.push(Action::CloseConnection(id));
        Some(conn)
    }

    /// A connection failed. If it was the last one, the session goes to
    /// Active or Idle as the RFC 4271 §8.2.2 transition for the event says;
    /// otherwise the session carries on with the other connection.
    fn conn_failed(
        &mut self,
        id: ConnId,
        notification: Option<Notification>,
        reason: DownReason,
        after: After,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if self.close_conn(id, notification, out).is_none() || !self.conns.is_empty() {
            return;
        }
        match after {
            After::Idle => self.enter_idle(reason, true, now, out),
            After::Active => {
                self.last_error = Some(reason);
                if !self.cfg.passive && !self.is_armed(Timer::ConnectRetry) {
                    let d = self.jitter.scale(self.cfg.connect_retry_time);
                    self.start_timer(Timer::ConnectRetry, d, now);
                }
            }
        }
    }

    /// Idle from a running session; connections must already be closed.
    fn enter_idle(&mut self, reason: DownReason, restart: bool, now: Instant, out: &mut Vec<Action>) {
        let established_at = self.established_since.take();
        self.stop_timer(Timer::ConnectRetry);
        out.push(Action::SessionDown { reason: reason.clone() });
        self.last_error = Some(reason);
        if restart {
            // A session that stayed up long enough was not oscillating.
            if established_at.is_some_and(|t| now.saturating_duration_since(t) >= self.cfg.max_idle_hold_time) {
                self.failures = 0;
            }
            self.failures = self.failures.saturating_add(1);
            let d = self.jitter.scale(self.idle_hold_base());
            self.start_timer(Timer::IdleHold, d, now);
            self.mode = Mode::Waiting;
        } else {
            self.stop_timer(Timer::IdleHold);
            self.mode = Mode::Stopped;
        }
    }

    /// Backoff before the next automatic restart, before jitter:
    /// idle_hold_time * 2^(failures - 1), at most max_idle_hold_time.
    fn idle_hold_base(&self) -> Duration {
        let doublings = self.failures.saturating_sub(1).min(31);
        self.cfg
            .idle_hold_time
            .saturating_mul(1u32 << doublings)
            .min(self.cfg.max_idle_hold_time)
    }

    // ----- transitions -----

    fn manual_start(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.mode {
            Mode::Running => {}
            Mode::Waiting | Mode::Stopped => {
                self.stop_timer(Timer::IdleHold);
                self.failures = 0;
                self.start(now, out);
            }
        }
    }

    /// Idle -> Connect (active) or Active (passive), RFC 4271 §8.2.2 Idle Events 1, 3-5.
    fn start(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.mode = Mode::Running;
        if !self.cfg.passive {
            self.connect(now, out);
        }
    }

    /// Keeps a connection. Room for one more at a time: a session has one,
    /// two during a collision, and a `Vec`'s first growth would make room for
    /// four (~800 bytes more per session, 8 MB at 10,000 peers).
    fn add_conn(&mut self, conn: Conn) {
        self.conns.reserve_exact(1);
        self.conns.push(conn);
    }

    /// Starts ConnectRetry and an outgoing connection.
    fn connect(&mut self, now: Instant, out: &mut Vec<Action>) {
        let id = self.new_conn_id();
        let d = self.jitter.scale(self.cfg.connect_retry_time);
        self.start_timer(Timer::ConnectRetry, d, now);
        self.add_conn(Conn {
            id,
            dir: Direction::Outgoing,
            phase: Phase::Connecting,
            negotiated: None,
        });
        out.push(Action::Connect(id));
    }

    /// RFC 4271 §8.2.2 Connect/Active Event 9: drop the pending attempt, try again.
    fn connect_retry_expires(&mut self, now: Instant, out: &mut Vec<Action>) {
        if !self.take_timer(Timer::ConnectRetry, now) || self.mode != Mode::Running || self.cfg.passive {
            return;
        }
        self.close_where(|c| c.phase == Phase::Connecting, out);
        // With a connection past TCP setup the timer is not supposed to run.
        if self.conns.is_empty() {
            self.connect(now, out);
        }
    }

    /// TCP is up on `id` (Events 16/17): send OPEN, or wait for DelayOpen.
    fn tcp_up(&mut self, id: ConnId, now: Instant, out: &mut Vec<Action>) {
        self.stop_timer(Timer::ConnectRetry);
        match self.cfg.delay_open {
            Some(d) => {
                self.set_phase(id, Phase::DelayOpen);
                self.start_timer(Timer::DelayOpen(id), d, now);
            }
            None => self.send_open(id, now, out),
        }
    }

    /// Sends our OPEN and waits for the peer's (OpenSent, hold timer large).
    fn send_open(&mut self, id: ConnId, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::SendOpen(id, self.local_open.clone()));
        self.start_timer(Timer::Hold(id), OPEN_HOLD_TIME, now);
        self.set_phase(id, Phase::OpenSent);
    }

    /// Event 17: the peer connected to us.
    fn incoming(&mut self, id: ConnId, now: Instant, out: &mut Vec<Action>) {
        if self.conn(id).is_some() {
            // Reused id: a caller bug; the existing connection is not touched.
            return;
        }
        if self.mode != Mode::Running {
            // RFC 4271 §8.2.2 Idle: incoming connections are refused.
            out.push(Action::CloseConnection(id));
            return;
        }
        if let Some(old) = self.conns.iter().find(|c| c.phase == Phase::Established) {
            if old.negotiated.as_ref().is_some_and(|n| n.graceful_restart.is_some()) {
                // RFC 4724 §4.2: from a peer that announced graceful restart, a
                // new connection means the old TCP session is gone: "the
                // previous TCP session MUST be closed, and the new one retained".
                let old = old.id;
                self.close_conn(old, None, out);
                self.established_since = None;
                out.push(Action::SessionDown {
                    reason: DownReason::ConnectionClosed,
                });
                self.last_error = Some(DownReason::ConnectionClosed);
            } else {
                // RFC 4271 §6.8: a collision with an Established connection closes the new one.
                let n = Notification::new(code::CEASE, cease::CONNECTION_COLLISION);
                out.push(Action::SendNotification(id, n));
                out.push(Action::CloseConnection(id));
                return;
            }
        }
        // One connection per direction. An earlier incoming connection that
        // never produced an OPEN (a half-open leftover of a restarted peer, or
        // a probe that cannot pass GTSM) gives way to the new one, so it
        // cannot lock the peer out until the OpenSent hold time runs out.
        self.close_where(|c| c.dir == Direction::Incoming && c.negotiated.is_none(), out);
        if self.conns.iter().any(|c| c.dir == Direction::Incoming) {
            // The first incoming connection that sent an OPEN is kept.
            out.push(Action::CloseConnection(id));
            return;
        }
        // RFC 4271 §8.2.2 Connect, Event 17: our own attempt is abandoned.
        self.close_where(|c| c.phase == Phase::Connecting, out);
        self.add_conn(Conn {
            id,
            dir: Direction::Incoming,
            phase: Phase::Connecting,
            negotiated: None,
        });
        self.tcp_up(id, now, out);
    }

    /// Events 19/20 in OpenSent (or Connect/Active with DelayOpen running).
    fn open_received(&mut self, id: ConnId, open: Open, now: Instant, out: &mut Vec<Action>) {
        if let Err(e) = check_open(&self.cfg, &open) {
            let n = e.notification();
            let reason = DownReason::OpenRejected(e);
            self.conn_failed(id, Some(n), reason, After::Idle, now, out);
            return;
        }
        let Some(this) = self.conn(id).map(|c| c.dir) else {
            return;
        };
        // RFC 4271 §6.8: compare with every connection in OpenConfirm.
        let rival = self
            .conns
            .iter()
            .find(|c| c.id != id && c.phase == Phase::OpenConfirm)
            .map(|c| (c.id, c.dir));
        if let Some((other, other_dir)) = rival {
            let loser = self.collision_loser(open.bgp_id, (id, this), (other, other_dir));
            let n = Notification::new(code::CEASE, cease::CONNECTION_COLLISION);
            self.close_conn(loser, Some(n), out);
            if loser == id {
                return;
            }
        }
        let mut negotiated = Negotiated::new(&self.local_open, &open);
        negotiated.keepalive_time = keepalive_for(&self.cfg, negotiated.hold_time);
        if self.phase(id) == Some(Phase::DelayOpen) {
            // Event 20: the peer's OPEN ends the delay; ours goes out now.
            self.stop_timer(Timer::DelayOpen(id));
            out.push(Action::SendOpen(id, self.local_open.clone()));
        }
        out.push(Action::SendKeepalive(id));
        if negotiated.hold_time > 0 {
            let k = Duration::from_secs(u64::from(negotiated.keepalive_time));
            let k = self.jitter.scale(k);
            self.start_timer(Timer::Keepalive(id), k, now);
            let h = Duration::from_secs(u64::from(negotiated.hold_time));
            self.start_timer(Timer::Hold(id), h, now);
        } else {
            // RFC 4271 §4.2: hold time zero, no hold timer and no keepalives.
            self.stop_timer(Timer::Hold(id));
        }
        if let Some(c) = self.conn_mut(id) {
            c.phase = Phase::OpenConfirm;
            c.negotiated = Some(negotiated);
        }
    }

    /// RFC 4271 §6.8 (with RFC 6286 §2.3 for equal identifiers): which of two
    /// colliding connections is closed.
    fn collision_loser(&self, remote_id: Ipv4Addr, a: (ConnId, Direction), b: (ConnId, Direction)) -> ConnId {
        let local = u32::from(self.cfg.local_id);
        let remote = u32::from(remote_id);
        let close_ours = if local != remote {
            local < remote
        } else {
            // Equal identifiers: the connection of the larger AS survives.
            self.cfg.local_asn < self.cfg.peer_asn
        };
        let doomed = if close_ours {
            Direction::Outgoing
        } else {
            Direction::Incoming
        };
        if a.1 == doomed {
            a.0
        } else {
            b.0
        }
    }

    /// OpenConfirm, Event 26: the session is up (RFC 4271 §8.2.2).
    fn establish(&mut self, id: ConnId, now: Instant, out: &mut Vec<Action>) {
        let Some(negotiated) = self.conn(id).and_then(|c| c.negotiated.clone()) else {
            return;
        };
        if negotiated.hold_time > 0 {
            let h = Duration::from_secs(u64::from(negotiated.hold_time));
            self.start_timer(Timer::Hold(id), h, now);
        }
        // RFC 4271 §6.8: once Established, any other connection is a collision that loses.
        let others: Vec<(ConnId, bool)> = self
            .conns
            .iter()
            .filter(|c| c.id != id)
            .map(|c| (c.id, c.open_sent()))
            .collect();
        for (other, open_sent) in others {
            let n = open_sent.then(|| Notification::new(code::CEASE, cease::CONNECTION_COLLISION));
            self.close_conn(other, n, out);
        }
        self.set_phase(id, Phase::Established);
        self.established_since = Some(now);
        out.push(Action::Established(id, Box::new(negotiated)));
    }

    /// Established, Events 26/27: the peer is alive.
    fn restart_hold(&mut self, id: ConnId, now: Instant) {
        let hold = self
            .conn(id)
            .and_then(|c| c.negotiated.as_ref())
            .map_or(0, |n| n.hold_time);
        if hold > 0 {
            let h = Duration::from_secs(u64::from(hold));
            self.start_timer(Timer::Hold(id), h, now);
        }
    }

    fn keepalive_expires(&mut self, id: ConnId, now: Instant, out: &mut Vec<Action>) {
        if !self.take_timer(Timer::Keepalive(id), now) {
            return;
        }
        let Some(keepalive) = self
            .conn(id)
            .filter(|c| c.phase >= Phase::OpenConfirm)
            .and_then(|c| c.negotiated.as_ref())
            .map(|n| n.keepalive_time)
        else {
            return;
        };
        out.push(Action::SendKeepalive(id));
        if keepalive > 0 {
            let k = self.jitter.scale(Duration::from_secs(u64::from(keepalive)));
            self.start_timer(Timer::Keepalive(id), k, now);
        }
    }

    /// Events 21, 22, 28: the decode error's NOTIFICATION, then Idle.
    fn decode_failed(&mut self, id: ConnId, err: DecodeError, now: Instant, out: &mut Vec<Action>) {
        if self.phase(id).is_some_and(|p| p > Phase::Connecting) {
            let mut n = err.to_notification();
            // 7/1 exists only with Enhanced Route Refresh (RFC 7313 §5); without
            // it a bad length is a Message Header Error (RFC 4271 §6.1).
            let enhanced = self
                .conn(id)
                .and_then(|c| c.negotiated.as_ref())
                .is_some_and(|n| n.enhanced_route_refresh);
            if let (crate::error::Reason::RouteRefreshLength(len), false) = (&err.reason, enhanced) {
                n = Notification {
                    code: code::MESSAGE_HEADER,
                    subcode: 2,
                    data: len.to_be_bytes().to_vec(),
                };
            }
            let reason = DownReason::InvalidMessage(err);
            self.conn_failed(id, Some(n), reason, After::Idle, now, out);
        }
    }

    /// A message the state does not allow: FSM Error with the RFC 6608 subcode.
    fn unexpected(&mut self, id: ConnId, message: &'static str, now: Instant, out: &mut Vec<Action>) {
        let Some(conn) = self.conn(id) else {
            return;
        };
        if conn.phase == Phase::Connecting {
            return;
        }
        let state = conn.state();
        let n = Notification::new(code::FSM, state.fsm_error_subcode());
        let reason = DownReason::UnexpectedMessage { state, message };
        self.conn_failed(id, Some(n), reason, After::Idle, now, out);
    }

    /// Event 2: Cease/Administrative Shutdown on every connection that got our OPEN.
    fn manual_stop(&mut self, message: Option<String>, now: Instant, out: &mut Vec<Action>) {
        self.failures = 0;
        if self.mode != Mode::Running {
            self.stop_timer(Timer::IdleHold);
            self.mode = Mode::Stopped;
            return;
        }
        let n = match &message {
            Some(m) => Notification::shutdown(cease::ADMINISTRATIVE_SHUTDOWN, m),
            None => Notification::new(code::CEASE, cease::ADMINISTRATIVE_SHUTDOWN),
        };
        self.close_all(&n, out);
        self.enter_idle(DownReason::ManualStop(message), false, now, out);
    }

    /// Event 8: like ManualStop with the caller's NOTIFICATION, then restart after backoff.
    fn automatic_stop(&mut self, n: Notification, now: Instant, out: &mut Vec<Action>) {
        if self.mode != Mode::Running {
            return;
        }
        self.close_all(&n, out);
        self.enter_idle(DownReason::AutomaticStop(n), true, now, out);
    }

    fn close_all(&mut self, n: &Notification, out: &mut Vec<Action>) {
        let all: Vec<(ConnId, bool)> = self.conns.iter().map(|c| (c.id, c.open_sent())).collect();
        for (id, open_sent) in all {
            self.close_conn(id, open_sent.then(|| n.clone()), out);
        }
    }

    // ----- timers -----

    fn is_armed(&self, t: Timer) -> bool {
        self.timers.iter().any(|(x, _)| *x == t)
    }

    /// Arms (or re-arms) `t` to fire `d` after `now`.
    fn start_timer(&mut self, t: Timer, d: Duration, now: Instant) {
        let deadline = now.checked_add(d);
        match self.timers.iter_mut().find(|(x, _)| *x == t) {
            Some(entry) => entry.1 = deadline,
            None => self.timers.push((t, deadline)),
        }
    }

    fn stop_timer(&mut self, t: Timer) {
        self.timers.retain(|(x, _)| *x != t);
    }

    /// Disarms `t` if it is armed and due; false for a stale expiry (stopped
    /// or re-armed since), which the caller's event must not act on.
    fn take_timer(&mut self, t: Timer, now: Instant) -> bool {
        let Some(pos) = self.timers.iter().position(|(x, _)| *x == t) else {
            return false;
        };
        let due = match (self.timers[pos].1, now.checked_add(TIMER_SLACK)) {
            (Some(deadline), Some(late)) => deadline <= late,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if due {
            self.timers.remove(pos);
        }
        due
    }
}
