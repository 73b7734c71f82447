//! The session task: feeds the bgp-proto FSM with connection events,
//! timers and commands, carries out its actions (connect, send, close), and
//! talks to the RIB: session up/down, received routes, route refresh.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_proto::error::code::CEASE;
use bgp_proto::fsm::{Action, ConnId, DownReason, Event, Fsm, FsmConfig, Negotiated, State, Timer};
use bgp_proto::notification::{cease, Notification};
use bgp_proto::route_refresh::RefreshSubtype;
use bgp_proto::{Context, DecodeError, Family, FamilySet, Message, MessageType, Reason, Treatment};
use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::conn::{apply_ttl, connect, reader, writer, Conn};
use super::inbound::update_messages;
use super::settings::{capabilities, LocalRestart, PeerSettings};
use super::status::StatusCell;
use crate::messages::{
    ConnEvent, OutFlow, PeerCmd, PeerGracefulRestart, PeerInfo, PeerOut, PeerSignal, Retention, RibMsg, WriterMsg,
};
use bgp_proto::capability::LlgrFamily;

pub(super) struct PeerTask {
    pub(super) settings: PeerSettings,
    pub(super) fsm: Fsm,
    pub(super) rib: mpsc::Sender<RibMsg>,
    pub(super) status: StatusCell,
    pub(super) conns: HashMap<ConnId, Conn>,
    events_tx: mpsc::Sender<ConnEvent>,
    events_rx: mpsc::Receiver<ConnEvent>,
    /// The connection carrying the established session.
    pub(super) session: Option<Session>,
    stopping: bool,
    signals_tx: mpsc::UnboundedSender<PeerSignal>,
    signals_rx: mpsc::UnboundedReceiver<PeerSignal>,
    /// After the prefix limit tripped: when to start again.
    restart_at: Option<Instant>,
    /// Graceful restart as the peer announced it on the current session.
    peer_restart: Option<PeerRestart>,
    /// Our own restart (R and F bits of our OPEN), shared by every session.
    local_restart: Arc<LocalRestart>,
    /// The R bit the FSM's OPEN carries now.
    announced_restarting: bool,
    /// Disabled by an operator: no connection until enabled.
    pub(super) disabled: bool,
}

/// The connection an Established session runs on, and how to decode what it carries.
pub(super) struct Session {
    pub(super) conn: ConnId,
    rx: Context,
    /// The peer speaks 4-octet AS numbers (RFC 6793): no AS4_PATH merging.
    four_octet_as: bool,
    /// Families negotiated (and configured): UPDATEs for others are ignored.
    pub(super) families: FamilySet,
}

/// Graceful restart negotiated on a session (RFC 4724 §3, RFC 9494): what
/// the peer announced and how long its routes outlive the session.
struct PeerRestart {
    info: PeerGracefulRestart,
    retention: Retention,
    /// Both sent the N bit (RFC 8538).
    graceful_notification: bool,
}

impl PeerRestart {
    /// From the OPENs, when both sides announced GR or LLGR (each only if configured).
    fn negotiated(settings: &PeerSettings, n: &Negotiated) -> Option<PeerRestart> {
        let gr = n
            .graceful_restart
            .as_ref()
            .filter(|_| settings.graceful_restart.is_some());
        let ours_llgr = settings.long_lived_stale_time.unwrap_or(0);
        let llgr: Vec<&LlgrFamily> = n.llgr.iter().filter(|_| ours_llgr > 0).collect();
        if gr.is_none() && llgr.is_empty() {
            return None;
        }
        let gr_families: FamilySet = gr.iter().flat_map(|g| g.families.iter().map(|f| f.family)).collect();
        let long_lived: FamilySet = llgr.iter().map(|f| f.family).collect();
        let forwarding: FamilySet = gr
            .iter()
            .flat_map(|g| g.families.iter().filter(|f| f.forwarding_preserved).map(|f| f.family))
            .chain(llgr.iter().filter(|f| f.forwarding_preserved).map(|f| f.family))
            .collect();
        let restart_time = gr.map_or(0, |g| g.restart_time);
        // RFC 9494 §4.2: the peer's long-lived stale time, capped by ours.
        let long_lived_time = llgr.iter().map(|f| f.stale_time).min().unwrap_or(0).min(ours_llgr);
        Some(PeerRestart {
            info: PeerGracefulRestart {
                forwarding,
                restarting: gr.is_some_and(|g| g.restarting),
                long_lived: !long_lived.is_empty(),
            },
            retention: Retention {
                families: gr_families.iter().chain(long_lived.iter()).collect(),
                restart_time: Duration::from_secs(u64::from(restart_time)),
                long_lived,
                long_lived_time: Duration::from_secs(u64::from(long_lived_time)),
            },
            graceful_notification: n.graceful_notification,
        })
    }

    /// Whether the session's end keeps the peer's routes as stale: a lost
    /// connection (RFC 4724 §4.2), or with the N bit any NOTIFICATION but a
    /// Hard Reset (RFC 8538 §3). Our own stops send Hard Reset (or, without
    /// the N bit, a NOTIFICATION): those end graceful restart.
    fn keeps_routes(&self, reason: &DownReason) -> bool {
        if self.retention.families.is_empty() {
            return false;
        }
        match reason {
            DownReason::ConnectionClosed => true,
            DownReason::NotificationReceived(n) => {
                self.graceful_notification && !(n.code == CEASE && n.subcode == cease::HARD_RESET)
            }
            DownReason::ManualStop(_) | DownReason::AutomaticStop(_) => false,
            _ => self.graceful_notification,
        }
    }
}

impl PeerTask {
    pub(super) fn new(
        s: PeerSettings,
        rib: mpsc::Sender<RibMsg>,
        status: StatusCell,
        local_restart: Arc<LocalRestart>,
    ) -> PeerTask {
        let mut cfg = FsmConfig::new(s.local_asn, s.asn, s.router_id);
        cfg.hold_time = s.hold_time;
        cfg.keepalive_time = Some(s.keepalive_time);
        cfg.connect_retry_time = s.connect_retry;
        cfg.passive = s.passive;
        cfg.capabilities = capabilities(&s, &local_restart);
        let announced_restarting = local_restart.restarting();
        cfg.jitter_seed ^= s.id.0 as u64 * 0x9e37_79b9;
        cfg.idle_hold_time = Duration::from_secs(1);
        cfg.max_idle_hold_time = Duration::from_secs(60);
        let (events_tx, events_rx) = mpsc::channel(1024);
        let (signals_tx, signals_rx) = mpsc::unbounded_channel();
        PeerTask {
            signals_tx,
            signals_rx,
            restart_at: None,
            peer_restart: None,
            local_restart,
            announced_restarting,
            fsm: Fsm::new(cfg),
            settings: s,
            rib,
            status,
            conns: HashMap::new(),
            events_tx,
            events_rx,
            session: None,
            stopping: false,
            disabled: false,
        }
    }

    /// Runs the session until it is stopped (or, for a dynamic peer, until
    /// its session ends); returns connections that arrived too late to serve.
    /// The handlers' futures are boxed while they run: the task itself then
    /// holds only what waits between events (3.5 KB per session otherwise, 35 MB
    /// at 10,000 reflector clients).
    pub(super) async fn run(&mut self, mut cmds: mpsc::Receiver<PeerCmd>) -> Vec<TcpStream> {
        if self.disabled {
            self.status.update(|st| st.disabled = true);
        } else {
            Box::pin(self.feed(Event::ManualStart)).await;
        }
        let mut cmds_open = true;
        loop {
            let deadline = self.fsm.next_timer().map(|(_, d)| d);
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                cmd = cmds.recv(), if cmds_open => match cmd {
                    Some(PeerCmd::Incoming(stream)) => Box::pin(self.incoming(stream)).await,
                    Some(PeerCmd::Stop(msg)) => Box::pin(self.stop(msg)).await,
                    Some(PeerCmd::BfdDown(why)) => Box::pin(self.bfd_down(why)).await,
                    Some(PeerCmd::CloseForRestart) => self.close_for_restart(),
                    Some(PeerCmd::Act(action, reply)) => {
                        let _ = reply.send(Box::pin(self.act_on(action)).await);
                    }
                    Some(PeerCmd::Reconfigure(settings)) => Box::pin(self.reconfigure(*settings)).await,
                    None => {
                        cmds_open = false;
                        Box::pin(self.stop(None)).await;
                    }
                },
                Some(ev) = self.events_rx.recv() => Box::pin(self.connection_event(ev)).await,
                Some(signal) = self.signals_rx.recv() => Box::pin(self.signal(signal)).await,
                _ = async {
                    match self.restart_at {
                        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                        None => std::future::pending().await,
                    }
                } => {
                    self.restart_at = None;
                    if !self.stopping {
                        info!(peer = %self.settings.name, "prefix limit hold-down over: starting again");
                        Box::pin(self.feed(Event::ManualStart)).await;
                    }
                }
                _ = sleep => {
                    match self.fsm.next_timer() {
                        // Messages already read count before the hold timer
                        // (RFC 4271 §8: it restarts on their receipt; review
                        // finding 17): a task that was busy handing UPDATEs to
                        // the RIB reads them first instead of dropping a live peer.
                        Some((Timer::Hold(_), _)) if !self.events_rx.is_empty() => {
                            if let Some(ev) = self.events_rx.recv().await {
                                Box::pin(self.connection_event(ev)).await;
                            }
                        }
                        Some((timer, _)) => Box::pin(self.feed(timer.expiry_event())).await,
                        None => {}
                    }
                }
            }
            if self.stopping && self.conns.is_empty() {
                break;
            }
            // A dynamic peer exists only while its session does.
            if self.settings.dynamic
                && self.conns.is_empty()
                && self.session.is_none()
                && self.fsm.state() != State::Established
            {
                // Closing first makes the listener see this task as gone;
                // what was already queued is handed back, not reset.
                cmds.close();
                let mut unserved = Vec::new();
                while let Ok(cmd) = cmds.try_recv() {
                    if let PeerCmd::Incoming(stream) = cmd {
                        unserved.push(stream);
                    }
                }
                self.set_state();
                return unserved;
            }
        }
        self.set_state();
        Vec::new()
    }

    /// RFC 4486 §4: over the prefix limit: Cease / Maximum Number of Prefixes
    /// Reached (data: AFI, SAFI, the limit), then stay down for `restart_after`.
    async fn signal(&mut self, signal: PeerSignal) {
        let PeerSignal::MaxPrefixes { limit, family } = signal;
        let mut data = Vec::with_capacity(7);
        data.extend_from_slice(&family.afi.0.to_be_bytes());
        data.push(family.safi.0);
        data.extend_from_slice(&limit.to_be_bytes());
        let n = Notification {
            code: bgp_proto::error::code::CEASE,
            subcode: bgp_proto::notification::cease::MAX_PREFIXES,
            data,
        };
        warn!(peer = %self.settings.name, "prefix limit {limit} exceeded: closing the session");
        self.feed(Event::AutomaticStop(n)).await;
        // No automatic restart: the hold-down below decides when to try again.
        self.feed(Event::ManualStop).await;
        self.restart_at = self
            .settings
            .max_prefixes
            .and_then(|m| m.restart_after)
            .map(|d| Instant::now() + d);
        self.status
            .update(|st| st.last_error = Some(format!("maximum number of prefixes ({limit}) reached")));
    }

    /// A new connection sends an OPEN with our restart state as it is now:
    /// the R bit only while our route selection is deferred (RFC 4724 §4.1).
    fn refresh_open(&mut self) {
        let now = self.local_restart.restarting();
        if now != self.announced_restarting {
            self.announced_restarting = now;
            self.fsm
                .set_capabilities(capabilities(&self.settings, &self.local_restart));
        }
    }

    /// Our graceful restart (RFC 4724 §4.1): the connections close without a
    /// NOTIFICATION, so the peer keeps our routes while we are away.
    fn close_for_restart(&mut self) {
        self.stopping = true;
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.close(id);
        }
    }

    async fn stop(&mut self, message: Option<String>) {
        self.stopping = true;
        let event = match message.or_else(|| self.settings.shutdown_message.clone()) {
            Some(m) => Event::ManualStopWithMessage(m),
            None => Event::ManualStop,
        };
        self.feed(event).await;
        // Connections the FSM did not know yet (or already gave up) go too.
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.close(id);
        }
    }

    /// Feeds the FSM and carries out what it asks.
    pub(super) async fn feed(&mut self, event: Event) {
        let actions = self.fsm.handle(event, Instant::now());
        for action in actions {
            self.act(action).await;
        }
        self.set_state();
    }

    fn set_state(&self) {
        let state = if self.stopping && self.conns.is_empty() {
            State::Idle
        } else {
            self.fsm.state()
        };
        let was = self.status.update(|st| {
            let was = st.state;
            st.set_state(state);
            was
        });
        if (was == State::Established) != (state == State::Established) {
            self.local_restart.session_changed();
        }
    }

    async fn act(&mut self, action: Action) {
        match action {
            Action::Connect(id) => {
                if self.stopping {
                    return;
                }
                let events = self.events_tx.clone();
                let s = self.settings.clone();
                tokio::spawn(async move {
                    let ev = match connect(&s).await {
                        Ok(stream) => ConnEvent::Connected(id, stream),
                        Err(e) => ConnEvent::ConnectFailed(id, e.to_string()),
                    };
                    let _ = events.send(ev).await;
                });
            }
            Action::SendOpen(id, open) => self.send(id, &Message::Open(open)),
            Action::SendKeepalive(id) => self.send(id, &Message::Keepalive),
            Action::SendNotification(id, n) => {
                info!(peer = %self.settings.name, "sending NOTIFICATION {}", n.describe());
                self.send(id, &Message::Notification(n));
            }
            Action::CloseConnection(id) => self.close(id),
            Action::Established(id, negotiated) => self.established(id, *negotiated).await,
            Action::SessionDown { reason } => self.session_down(reason).await,
        }
    }

    pub(super) fn send(&mut self, id: ConnId, msg: &Message) {
        let ctx = match &self.session {
            Some(s) if s.conn == id => self.fsm.negotiated().map(|n| n.tx_context()).unwrap_or_default(),
            _ => Context::default(),
        };
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        match msg.to_bytes(&ctx) {
            Ok(b) => {
                let _ = conn.writer.send(WriterMsg::Send(Bytes::from(b)));
                self.status.update(|st| st.messages_out += 1);
            }
            Err(e) => warn!(peer = %self.settings.name, "cannot encode {}: {e}", msg.message_type()),
        }
    }

    pub(super) fn close(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.remove(&id) {
            let _ = conn.writer.send(WriterMsg::Close);
            conn.reader.abort();
        }
    }

    async fn incoming(&mut self, stream: TcpStream) {
        if self.stopping || self.disabled {
            return;
        }
        let id = self.fsm.new_conn_id();
        debug!(peer = %self.settings.name, "incoming connection {:?}", stream.peer_addr().ok());
        self.attach(id, stream);
        self.refresh_open();
        self.feed(Event::TcpConnectionConfirmed(id)).await;
    }

    /// Starts the reader and writer of a connection.
    fn attach(&mut self, id: ConnId, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        if let Err(e) = apply_ttl(&self.settings, stream.as_raw_fd()) {
            warn!(peer = %self.settings.name, "setting TTL options: {e}");
        }
        let local = stream.local_addr().ok();
        let (rd, wr) = stream.into_split();
        let (wtx, wrx) = mpsc::unbounded_channel();
        let events = self.events_tx.clone();
        tokio::spawn(writer(id, wr, wrx, events.clone()));
        let reader = tokio::spawn(reader(id, rd, events));
        self.conns.insert(
            id,
            Conn {
                writer: wtx,
                reader,
                local,
            },
        );
    }

    async fn connection_event(&mut self, ev: ConnEvent) {
        match ev {
            ConnEvent::Connected(id, stream) => {
                if self.stopping {
                    return;
                }
                self.attach(id, stream);
                self.refresh_open();
                self.feed(Event::TcpCrAcked(id)).await;
            }
            ConnEvent::ConnectFailed(id, e) => {
                debug!(peer = %self.settings.name, "connect failed: {e}");
                self.status.update(|st| st.last_error = Some(format!("connect: {e}")));
                self.feed(Event::TcpConnectionFails(id)).await;
            }
            ConnEvent::Closed(id, why) => {
                if self.conns.contains_key(&id) {
                    debug!(peer = %self.settings.name, "connection closed: {why}");
                    self.conns.remove(&id);
                    self.feed(Event::TcpConnectionFails(id)).await;
                }
            }
            ConnEvent::FrameError(id, e) => self.feed(Event::BgpHeaderErr(id, e.into())).await,
            ConnEvent::Message(id, bytes) => self.message(id, bytes).await,
            ConnEvent::Writable => {
                if self.session.is_some() {
                    let _ = self.rib.send(RibMsg::Writable(self.settings.id)).await;
                }
            }
        }
    }

    async fn message(&mut self, id: ConnId, bytes: Bytes) {
        if !self.conns.contains_key(&id) {
            return;
        }
        self.status.update(|st| st.messages_in += 1);
        let (ctx, four_octet) = match &self.session {
            Some(s) if s.conn == id => (s.rx.clone(), s.four_octet_as),
            _ => (Context::default(), true),
        };
        let ty = bytes.get(18).copied().and_then(MessageType::from_u8);
        let decoded = match bgp_proto::decode(&bytes, &ctx) {
            Ok(d) => d,
            Err(e) => {
                let what = ty.map_or_else(|| "message of unknown type".to_string(), |t| format!("{t} message"));
                warn!(peer = %self.settings.name, "malformed {what}: {e}");
                let event = match ty {
                    Some(MessageType::Open) => Event::BgpOpenMsgErr(id, e),
                    Some(MessageType::Update) => Event::UpdateMsgErr(id, e),
                    _ => Event::BgpHeaderErr(id, e),
                };
                self.feed(event).await;
                return;
            }
        };
        match decoded.message {
            Message::Open(open) => self.feed(Event::BgpOpen(id, open)).await,
            Message::Keepalive => self.feed(Event::KeepAliveMsg(id)).await,
            Message::Notification(n) => self.feed(Event::NotifMsg(id, n)).await,
            Message::RouteRefresh(rr) => {
                self.feed(Event::RouteRefreshMsg(id)).await;
                // RFC 7313 §5: BoRR/EoRR and reserved subtypes are not requests.
                if self.session.is_some() && rr.subtype == RefreshSubtype::Request {
                    let _ = self.rib.send(RibMsg::RouteRefresh(self.settings.id, rr.family)).await;
                }
            }
            Message::Update(update) => {
                self.feed(Event::UpdateMsg(id)).await;
                if self.session.as_ref().map(|s| s.conn) != Some(id) {
                    return;
                }
                self.status.update(|st| st.updates_in += 1);
                if let Treatment::AfiSafiDisable(family) = decoded.treatment {
                    // RFC 7606 §7.11 allows session reset instead of disabling
                    // one family; tern resets, reporting the attribute error.
                    warn!(peer = %self.settings.name, "malformed MP attribute for {family}: resetting the session");
                    let first = decoded
                        .errors
                        .iter()
                        .find(|e| matches!(e.treatment, Treatment::AfiSafiDisable(_)));
                    let err = match first {
                        Some(e) => DecodeError::new(e.reason.clone(), e.offset),
                        None => DecodeError::new(Reason::OptionalAttribute(14, "MP_REACH_NLRI"), 0),
                    };
                    self.feed(Event::UpdateMsgErr(id, err)).await;
                    return;
                }
                if decoded.treatment != Treatment::None {
                    self.status.update(|st| st.malformed_updates += 1);
                    for e in &decoded.errors {
                        warn!(
                            peer = %self.settings.name,
                            "RFC 7606 {}: attribute {} at offset {}: {}",
                            e.treatment.as_str(), e.type_code, e.offset, e.reason
                        );
                    }
                }
                let ebgp = self.settings.asn != self.settings.local_asn;
                let families = self.session.as_ref().map(|s| s.families.clone()).unwrap_or_default();
                for msg in update_messages(
                    self.settings.id,
                    &update,
                    decoded.treatment,
                    four_octet,
                    ebgp,
                    &families,
                ) {
                    let _ = self.rib.send(msg).await;
                }
            }
        }
    }

    async fn established(&mut self, id: ConnId, n: Negotiated) {
        let local = self.conns.get(&id).and_then(|c| c.local);
        let rx = n.rx_context();
        let tx = n.tx_context();
        self.session = Some(Session {
            conn: id,
            rx,
            four_octet_as: n.four_octet_as,
            families: n
                .families
                .iter()
                .filter(|f| self.settings.families.contains(f))
                .collect(),
        });
        self.peer_restart = PeerRestart::negotiated(&self.settings, &n);
        info!(
            peer = %self.settings.name,
            address = %self.settings.address,
            "session Established (hold time {}s, families {})",
            n.hold_time,
            n.families.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(",")
        );
        let graceful_restart = self.peer_restart.is_some();
        self.status.update(|st| {
            st.hold_time = Some(n.hold_time);
            st.peer_router_id = Some(n.peer_id);
            st.peer_hostname = n.peer_hostname.clone();
            st.families = n.families.iter().collect();
            st.capabilities = super::status::capability_names(&n);
            st.keepalive_time = Some(n.keepalive_time);
            st.local_address = local.map(|l| l.ip());
            st.graceful_restart = graceful_restart;
            st.last_error = None;
        });
        let Some(local) = local else {
            warn!(peer = %self.settings.name, "established on a connection without a local address");
            return;
        };
        let (qtx, qrx) = mpsc::channel(64);
        let flow = Arc::new(OutFlow::default());
        if let Some(conn) = self.conns.get(&id) {
            let _ = conn.writer.send(WriterMsg::Attach(qrx, flow.clone()));
        }
        let families: FamilySet = n
            .families
            .iter()
            .filter(|f| self.settings.families.contains(f))
            .collect();
        let info = PeerInfo {
            id: self.settings.id,
            name: self.settings.name.clone(),
            address: self.settings.address,
            local_address: local.ip(),
            asn: n.peer_asn,
            local_asn: self.settings.local_asn,
            router_id: n.peer_id,
            rr_client: self.settings.rr_client,
            next_hop: self.settings.next_hop,
            tx,
            rx_four_octet_as: n.four_octet_as,
            families,
            allowas_in: self.settings.allowas_in,
            ipv4_via_ipv6: n
                .extended_next_hop
                .iter()
                .any(|e| e.family == Family::IPV4_UNICAST && e.next_hop_afi == bgp_proto::Afi::IPV6),
            import: self.settings.import.clone(),
            export: self.settings.export.clone(),
            max_prefixes: self.settings.prefix_limit(),
            graceful_restart: self.peer_restart.as_ref().map(|r| r.info.clone()),
        };
        let _ = self
            .rib
            .send(RibMsg::PeerUp(
                info,
                PeerOut {
                    queue: qtx,
                    flow,
                    signals: self.signals_tx.clone(),
                },
            ))
            .await;
    }

    async fn session_down(&mut self, reason: DownReason) {
        let was_up = self.session.take().is_some();
        let peer_restart = self.peer_restart.take();
        if was_up {
            info!(peer = %self.settings.name, "session down: {reason}");
            // RFC 4724 §4.2: a session that ends without a NOTIFICATION, with
            // a peer that announced graceful restart, keeps its routes (stale).
            let msg = match peer_restart {
                Some(gr) if gr.keeps_routes(&reason) => RibMsg::PeerDownGraceful {
                    peer: self.settings.id,
                    retention: gr.retention,
                },
                _ => RibMsg::PeerDown(self.settings.id),
            };
            let _ = self.rib.send(msg).await;
        } else {
            debug!(peer = %self.settings.name, "session attempt failed: {reason}");
        }
        let notification =
            reason.notification_sent().is_some() || matches!(reason, DownReason::NotificationReceived(_));
        self.status.update(|st| {
            st.last_error = Some(reason.to_string());
            if notification {
                st.last_notification = Some(reason.to_string());
            }
        });
    }
}
