//! One task per configured peer: runs the bgp-proto FSM, owns the TCP
//! connection(s), turns received UPDATEs into RIB messages and writes what
//! the RIB queued. A peer never blocks another: each has its own task,
//! reader and writer, and its outbound queue is bounded (the RIB coalesces
//! the rest, see `rib`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bgp_proto::capability::{AddPathMode, Capability, ExtendedNextHop, GracefulRestart, GracefulRestartFamily};
use bgp_proto::framing::{next_message_len, FrameError, MAX_EXTENDED_MESSAGE_LEN};
use bgp_proto::fsm::{Action, ConnId, DownReason, Event, Fsm, FsmConfig, Negotiated, State};
use bgp_proto::notification::Notification;
use bgp_proto::{Context, DecodeError, Family, FamilySet, Message, MessageType, Reason, Treatment};
use bytes::{Bytes, BytesMut};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::policy::Chain;
use crate::rib::{NextHopMode, PeerId, PeerInfo, PeerOut, PeerSignal, PrefixLimit, RibMsg};
use crate::route::RouteAttrs;

/// Everything a peer task needs, resolved from the configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerSettings {
    pub id: PeerId,
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    pub asn: u32,
    pub local_asn: u32,
    pub router_id: Ipv4Addr,
    pub passive: bool,
    pub hold_time: u16,
    pub keepalive_time: u16,
    pub connect_retry: Duration,
    pub source_address: Option<IpAddr>,
    pub ttl: Option<u8>,
    pub next_hop: NextHopMode,
    pub rr_client: bool,
    pub families: Vec<Family>,
    pub add_path: Option<AddPathMode>,
    pub allowas_in: u8,
    pub graceful_restart: Option<u16>,
    pub hostname: Option<String>,
    pub shutdown_message: Option<String>,
    /// TCP-MD5 key (RFC 2385).
    pub password: Option<String>,
    /// GTSM (RFC 5082): send with TTL 255, accept only TTL >= 256 - hops.
    pub gtsm_hops: Option<u8>,
    pub import: Chain,
    pub export: Chain,
    pub max_prefixes: Option<MaxPrefixes>,
    /// Accepted from a `[[dynamic_peers]]` range: the task ends with its session.
    pub dynamic: bool,
}

/// Prefix limit settings (RFC 4486).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPrefixes {
    pub limit: u32,
    pub warning_percent: u8,
    /// Reconnect this long after the limit tripped; `None`: stay down.
    pub restart_after: Option<Duration>,
}

/// What `ternctl show peers` shows of a peer.
#[derive(Clone, Debug, Serialize)]
pub struct PeerStatus {
    pub name: String,
    pub address: String,
    pub asn: u32,
    pub state: String,
    /// Seconds in the current state.
    #[serde(skip)]
    pub since: Option<Instant>,
    pub since_unix: u64,
    pub last_error: Option<String>,
    pub hold_time: Option<u16>,
    pub peer_router_id: Option<String>,
    pub peer_hostname: Option<String>,
    pub families: Vec<String>,
    pub local_address: Option<String>,
    pub messages_in: u64,
    pub messages_out: u64,
    pub updates_in: u64,
    pub malformed_updates: u64,
}

impl PeerStatus {
    fn new(s: &PeerSettings) -> PeerStatus {
        PeerStatus {
            name: s.name.clone(),
            address: s.address.to_string(),
            asn: s.asn,
            state: State::Idle.as_str().to_string(),
            since: Some(Instant::now()),
            since_unix: unix_now(),
            last_error: None,
            hold_time: None,
            peer_router_id: None,
            peer_hostname: None,
            families: Vec::new(),
            local_address: None,
            messages_in: 0,
            messages_out: 0,
            updates_in: 0,
            malformed_updates: 0,
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Commands to a peer task.
#[derive(Debug)]
pub enum PeerCmd {
    /// A connection from the peer's address, accepted by a listener.
    Incoming(TcpStream),
    /// Stop the session (Cease / Administrative Shutdown) and end the task.
    Stop(Option<String>),
}

/// The daemon's handle on a peer task.
#[derive(Clone, Debug)]
pub struct PeerHandle {
    pub settings: PeerSettings,
    pub cmd: mpsc::Sender<PeerCmd>,
    pub status: Arc<Mutex<PeerStatus>>,
}

/// Events from connection helpers to the peer task.
enum ConnEvent {
    Connected(ConnId, TcpStream),
    ConnectFailed(ConnId, String),
    Message(ConnId, Bytes),
    FrameError(ConnId, FrameError),
    Closed(ConnId, String),
    /// The writer found the RIB waiting for room.
    Writable,
}

/// Messages to a connection's writer.
enum WriterMsg {
    Send(Bytes),
    /// From now on also drain the RIB's queue for this session.
    Attach(mpsc::Receiver<Bytes>, Arc<AtomicBool>),
    Close,
}

struct Conn {
    writer: mpsc::UnboundedSender<WriterMsg>,
    reader: tokio::task::JoinHandle<()>,
    local: Option<SocketAddr>,
}

/// Starts the task of one peer.
pub fn spawn(settings: PeerSettings, rib: mpsc::Sender<RibMsg>) -> PeerHandle {
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let status = Arc::new(Mutex::new(PeerStatus::new(&settings)));
    let handle = PeerHandle {
        settings: settings.clone(),
        cmd: cmd_tx,
        status: status.clone(),
    };
    tokio::spawn(async move {
        let mut task = PeerTask::new(settings, rib, status);
        task.run(cmd_rx).await;
    });
    handle
}

/// Our capabilities for this peer.
fn capabilities(s: &PeerSettings) -> Vec<Capability> {
    let families: Vec<Family> = s.families.clone();
    let mut caps: Vec<Capability> = families.iter().map(|f| Capability::Multiprotocol(*f)).collect();
    caps.push(Capability::RouteRefresh);
    caps.push(Capability::ExtendedMessage);
    if let Some(time) = s.graceful_restart {
        caps.push(Capability::GracefulRestart(GracefulRestart {
            restarting: false,
            notification: false,
            restart_time: time.min(4095),
            families: families
                .iter()
                .map(|f| GracefulRestartFamily {
                    family: *f,
                    forwarding_preserved: false,
                })
                .collect(),
        }));
    }
    caps.push(Capability::FourOctetAs(s.local_asn));
    // RFC 8950: on an IPv6 session, IPv4 routes may carry IPv6 next hops.
    if s.address.is_ipv6() && families.contains(&Family::IPV4_UNICAST) {
        caps.push(Capability::ExtendedNextHop(vec![ExtendedNextHop {
            family: Family::IPV4_UNICAST,
            next_hop_afi: bgp_proto::Afi::IPV6,
        }]));
    }
    if let Some(mode) = s.add_path {
        caps.push(Capability::AddPath(families.iter().map(|f| (*f, mode)).collect()));
    }
    if let Some(host) = &s.hostname {
        caps.push(Capability::Fqdn {
            hostname: host.as_bytes().to_vec(),
            domain: Vec::new(),
        });
    }
    caps
}

struct PeerTask {
    s: PeerSettings,
    fsm: Fsm,
    rib: mpsc::Sender<RibMsg>,
    status: Arc<Mutex<PeerStatus>>,
    conns: HashMap<ConnId, Conn>,
    events_tx: mpsc::Sender<ConnEvent>,
    events_rx: mpsc::Receiver<ConnEvent>,
    /// The connection carrying the established session and its contexts.
    established: Option<(ConnId, Context, bool)>,
    stopping: bool,
    signals_tx: mpsc::UnboundedSender<PeerSignal>,
    signals_rx: mpsc::UnboundedReceiver<PeerSignal>,
    /// After the prefix limit tripped: when to start again.
    restart_at: Option<Instant>,
    /// Graceful restart negotiated on the current session: the peer's
    /// families with preserved state and its restart time (RFC 4724 §3).
    graceful: Option<(FamilySet, u16)>,
}

impl PeerTask {
    fn new(s: PeerSettings, rib: mpsc::Sender<RibMsg>, status: Arc<Mutex<PeerStatus>>) -> PeerTask {
        let mut cfg = FsmConfig::new(s.local_asn, s.asn, s.router_id);
        cfg.hold_time = s.hold_time;
        cfg.keepalive_time = Some(s.keepalive_time);
        cfg.connect_retry_time = s.connect_retry;
        cfg.passive = s.passive;
        cfg.capabilities = capabilities(&s);
        cfg.jitter_seed ^= s.id as u64 * 0x9e37_79b9;
        cfg.idle_hold_time = Duration::from_secs(1);
        cfg.max_idle_hold_time = Duration::from_secs(60);
        let (events_tx, events_rx) = mpsc::channel(1024);
        let (signals_tx, signals_rx) = mpsc::unbounded_channel();
        PeerTask {
            signals_tx,
            signals_rx,
            restart_at: None,
            graceful: None,
            fsm: Fsm::new(cfg),
            s,
            rib,
            status,
            conns: HashMap::new(),
            events_tx,
            events_rx,
            established: None,
            stopping: false,
        }
    }

    async fn run(&mut self, mut cmds: mpsc::Receiver<PeerCmd>) {
        self.feed(Event::ManualStart).await;
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
                    Some(PeerCmd::Incoming(stream)) => self.incoming(stream).await,
                    Some(PeerCmd::Stop(msg)) => self.stop(msg).await,
                    None => {
                        cmds_open = false;
                        self.stop(None).await;
                    }
                },
                Some(ev) = self.events_rx.recv() => self.connection_event(ev).await,
                Some(signal) = self.signals_rx.recv() => self.signal(signal).await,
                _ = async {
                    match self.restart_at {
                        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                        None => std::future::pending().await,
                    }
                } => {
                    self.restart_at = None;
                    if !self.stopping {
                        info!(peer = %self.s.name, "prefix limit hold-down over: starting again");
                        self.feed(Event::ManualStart).await;
                    }
                }
                _ = sleep => {
                    if let Some((timer, _)) = self.fsm.next_timer() {
                        self.feed(timer.expiry_event()).await;
                    }
                }
            }
            if self.stopping && self.conns.is_empty() {
                break;
            }
            // A dynamic peer exists only while its session does.
            if self.s.dynamic
                && self.conns.is_empty()
                && self.established.is_none()
                && self.fsm.state() != State::Established
            {
                break;
            }
        }
        self.set_state();
    }

    /// RFC 4486 §4: over the prefix limit: Cease / Maximum Number of Prefixes
    /// Reached (data: AFI, SAFI, the limit), then stay down for `restart_after`.
    async fn signal(&mut self, signal: PeerSignal) {
        let PeerSignal::MaxPrefixes { limit } = signal;
        let mut data = Vec::with_capacity(7);
        data.extend_from_slice(&Family::IPV4_UNICAST.afi.0.to_be_bytes());
        data.push(Family::IPV4_UNICAST.safi.0);
        data.extend_from_slice(&limit.to_be_bytes());
        let n = Notification {
            code: bgp_proto::error::code::CEASE,
            subcode: bgp_proto::notification::cease::MAX_PREFIXES,
            data,
        };
        warn!(peer = %self.s.name, "prefix limit {limit} exceeded: closing the session");
        self.feed(Event::AutomaticStop(n)).await;
        // No automatic restart: the hold-down below decides when to try again.
        self.feed(Event::ManualStop).await;
        self.restart_at = self
            .s
            .max_prefixes
            .and_then(|m| m.restart_after)
            .map(|d| Instant::now() + d);
        self.status.lock().unwrap_or_else(|e| e.into_inner()).last_error =
            Some(format!("maximum number of prefixes ({limit}) reached"));
    }

    async fn stop(&mut self, message: Option<String>) {
        self.stopping = true;
        let event = match message.or_else(|| self.s.shutdown_message.clone()) {
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
    async fn feed(&mut self, event: Event) {
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
        let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if st.state != state.as_str() {
            st.state = state.as_str().to_string();
            st.since = Some(Instant::now());
            st.since_unix = unix_now();
        }
    }

    async fn act(&mut self, action: Action) {
        match action {
            Action::Connect(id) => {
                if self.stopping {
                    return;
                }
                let events = self.events_tx.clone();
                let s = self.s.clone();
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
                info!(peer = %self.s.name, "sending NOTIFICATION {}", n.describe());
                self.send(id, &Message::Notification(n));
            }
            Action::CloseConnection(id) => self.close(id),
            Action::Established(id, negotiated) => self.established(id, *negotiated).await,
            Action::SessionDown { reason } => self.session_down(reason).await,
        }
    }

    fn send(&mut self, id: ConnId, msg: &Message) {
        let ctx = match &self.established {
            Some((eid, _, _)) if *eid == id => self.fsm.negotiated().map(|n| n.tx_context()).unwrap_or_default(),
            _ => Context::default(),
        };
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        match msg.to_bytes(&ctx) {
            Ok(b) => {
                let _ = conn.writer.send(WriterMsg::Send(Bytes::from(b)));
                self.status.lock().unwrap_or_else(|e| e.into_inner()).messages_out += 1;
            }
            Err(e) => warn!(peer = %self.s.name, "cannot encode {:?}: {e}", msg.message_type()),
        }
    }

    fn close(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.remove(&id) {
            let _ = conn.writer.send(WriterMsg::Close);
            conn.reader.abort();
        }
    }

    async fn incoming(&mut self, stream: TcpStream) {
        if self.stopping {
            return;
        }
        let id = self.fsm.new_conn_id();
        debug!(peer = %self.s.name, "incoming connection {:?}", stream.peer_addr().ok());
        self.attach(id, stream);
        self.feed(Event::TcpConnectionConfirmed(id)).await;
    }

    /// Starts the reader and writer of a connection.
    fn attach(&mut self, id: ConnId, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        if let Err(e) = apply_ttl(&self.s, stream.as_raw_fd()) {
            warn!(peer = %self.s.name, "setting TTL options: {e}");
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
                self.feed(Event::TcpCrAcked(id)).await;
            }
            ConnEvent::ConnectFailed(id, e) => {
                debug!(peer = %self.s.name, "connect failed: {e}");
                self.status.lock().unwrap_or_else(|e| e.into_inner()).last_error = Some(format!("connect: {e}"));
                self.feed(Event::TcpConnectionFails(id)).await;
            }
            ConnEvent::Closed(id, why) => {
                if self.conns.contains_key(&id) {
                    debug!(peer = %self.s.name, "connection closed: {why}");
                    self.conns.remove(&id);
                    self.feed(Event::TcpConnectionFails(id)).await;
                }
            }
            ConnEvent::FrameError(id, e) => {
                let reason = match e {
                    FrameError::BadMarker => Reason::BadMarker,
                    FrameError::BadLength(l) => Reason::BadLength(l),
                };
                let err = DecodeError::new(reason, 0);
                let err = match e {
                    FrameError::BadLength(l) => err.with_data(l.to_be_bytes().to_vec()),
                    FrameError::BadMarker => err,
                };
                self.feed(Event::BgpHeaderErr(id, err)).await;
            }
            ConnEvent::Message(id, bytes) => self.message(id, bytes).await,
            ConnEvent::Writable => {
                if self.established.is_some() {
                    let _ = self.rib.send(RibMsg::Writable(self.s.id)).await;
                }
            }
        }
    }

    async fn message(&mut self, id: ConnId, bytes: Bytes) {
        if !self.conns.contains_key(&id) {
            return;
        }
        self.status.lock().unwrap_or_else(|e| e.into_inner()).messages_in += 1;
        let (ctx, four_octet) = match &self.established {
            Some((eid, ctx, four)) if *eid == id => (ctx.clone(), *four),
            _ => (Context::default(), true),
        };
        let ty = bytes.get(18).copied().and_then(MessageType::from_u8);
        let decoded = match bgp_proto::decode(&bytes, &ctx) {
            Ok(d) => d,
            Err(e) => {
                warn!(peer = %self.s.name, "malformed {:?} message: {e}", ty);
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
                if self.established.is_some() {
                    let _ = self.rib.send(RibMsg::RouteRefresh(self.s.id, rr.family)).await;
                }
            }
            Message::Update(update) => {
                self.feed(Event::UpdateMsg(id)).await;
                if self.established.as_ref().map(|e| e.0) != Some(id) {
                    return;
                }
                self.status.lock().unwrap_or_else(|e| e.into_inner()).updates_in += 1;
                if let Treatment::AfiSafiDisable(family) = decoded.treatment {
                    // RFC 7606 §7.11 allows session reset instead of disabling
                    // one family; tern resets, reporting the attribute error.
                    warn!(peer = %self.s.name, "malformed MP attribute for {family}: resetting the session");
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
                    self.status.lock().unwrap_or_else(|e| e.into_inner()).malformed_updates += 1;
                    for e in &decoded.errors {
                        warn!(
                            peer = %self.s.name,
                            "RFC 7606 {}: attribute {} at offset {}: {}",
                            e.treatment.as_str(), e.type_code, e.offset, e.reason
                        );
                    }
                }
                self.update_to_rib(update, decoded.treatment, four_octet).await;
            }
        }
    }

    /// Splits an UPDATE into RIB messages: withdrawals, then one announcement per family.
    async fn update_to_rib(&mut self, update: bgp_proto::update::Update, treatment: Treatment, four_octet: bool) {
        let peer = self.s.id;
        if let Some(family) = update.as_end_of_rib() {
            let _ = self.rib.send(RibMsg::EndOfRib(peer, family)).await;
            return;
        }
        let mut withdrawn: HashMap<Family, Vec<bgp_proto::Nlri>> = HashMap::new();
        for (f, n) in update.withdrawn_routes() {
            withdrawn.entry(f).or_default().push(*n);
        }
        let mut announced: HashMap<Family, Vec<bgp_proto::Nlri>> = HashMap::new();
        for (f, n) in update.announced() {
            let target = if treatment == Treatment::TreatAsWithdraw {
                &mut withdrawn
            } else {
                &mut announced
            };
            target.entry(f).or_default().push(*n);
        }
        for (family, nlri) in withdrawn {
            let _ = self.rib.send(RibMsg::Withdraw { peer, family, nlri }).await;
        }
        for (family, nlri) in announced {
            let mut attrs = RouteAttrs::from_update(&update, family, four_octet);
            if self.s.asn != self.s.local_asn {
                // RFC 7606 §7.5 / RFC 4271 §5.1.5: LOCAL_PREF from an external peer is discarded.
                attrs.local_pref = None;
            }
            let _ = self
                .rib
                .send(RibMsg::Announce {
                    peer,
                    family,
                    attrs,
                    nlri,
                })
                .await;
        }
    }

    async fn established(&mut self, id: ConnId, n: Negotiated) {
        let local = self.conns.get(&id).and_then(|c| c.local);
        let rx = n.rx_context();
        let tx = n.tx_context();
        self.established = Some((id, rx, n.four_octet_as));
        self.graceful = match (&self.s.graceful_restart, &n.graceful_restart) {
            (Some(_), Some(gr)) => Some((gr.families.iter().map(|f| f.family).collect(), gr.restart_time)),
            _ => None,
        };
        info!(
            peer = %self.s.name,
            address = %self.s.address,
            "session Established (hold time {}s, families {})",
            n.hold_time,
            n.families.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(",")
        );
        {
            let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
            st.hold_time = Some(n.hold_time);
            st.peer_router_id = Some(n.peer_id.to_string());
            st.peer_hostname = n.peer_hostname.clone();
            st.families = n.families.iter().map(|f| f.to_string()).collect();
            st.local_address = local.map(|l| l.ip().to_string());
            st.last_error = None;
        }
        let Some(local) = local else {
            warn!(peer = %self.s.name, "established on a connection without a local address");
            return;
        };
        let (qtx, qrx) = mpsc::channel(64);
        let flag = Arc::new(AtomicBool::new(false));
        if let Some(conn) = self.conns.get(&id) {
            let _ = conn.writer.send(WriterMsg::Attach(qrx, flag.clone()));
        }
        let families: FamilySet = n.families.iter().filter(|f| self.s.families.contains(f)).collect();
        let info = PeerInfo {
            id: self.s.id,
            name: self.s.name.clone(),
            address: self.s.address,
            local_address: local.ip(),
            asn: n.peer_asn,
            local_asn: self.s.local_asn,
            router_id: n.peer_id,
            rr_client: self.s.rr_client,
            next_hop: self.s.next_hop,
            tx,
            rx_four_octet_as: n.four_octet_as,
            families,
            allowas_in: self.s.allowas_in,
            ipv4_via_ipv6: n
                .extended_next_hop
                .iter()
                .any(|e| e.family == Family::IPV4_UNICAST && e.next_hop_afi == bgp_proto::Afi::IPV6),
            import: self.s.import.clone(),
            export: self.s.export.clone(),
            max_prefixes: self.s.max_prefixes.map(|m| PrefixLimit {
                limit: m.limit,
                warning: (m.limit as u64 * m.warning_percent as u64 / 100) as u32,
            }),
        };
        let _ = self
            .rib
            .send(RibMsg::PeerUp(
                info,
                PeerOut {
                    queue: qtx,
                    want_writable: flag,
                    signals: self.signals_tx.clone(),
                },
            ))
            .await;
    }

    async fn session_down(&mut self, reason: DownReason) {
        let was_up = self.established.take().is_some();
        let graceful = self.graceful.take();
        if was_up {
            info!(peer = %self.s.name, "session down: {reason}");
            // RFC 4724 §4.2: a session that ends without a NOTIFICATION, with
            // a peer that announced graceful restart, keeps its routes (stale).
            let msg = match (graceful, &reason) {
                (Some((families, restart_time)), DownReason::ConnectionClosed) if !families.is_empty() => {
                    RibMsg::PeerDownGraceful {
                        peer: self.s.id,
                        families,
                        restart_time: Duration::from_secs(restart_time as u64),
                    }
                }
                _ => RibMsg::PeerDown(self.s.id),
            };
            let _ = self.rib.send(msg).await;
        } else {
            debug!(peer = %self.s.name, "session attempt failed: {reason}");
        }
        self.status.lock().unwrap_or_else(|e| e.into_inner()).last_error = Some(reason.to_string());
    }
}

/// Opens the outgoing connection, from `source_address` if set.
async fn connect(s: &PeerSettings) -> std::io::Result<TcpStream> {
    let socket = match s.address {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(key) = &s.password {
        crate::sockopt::set_md5(
            socket.as_raw_fd(),
            s.address.is_ipv6(),
            s.address,
            None,
            Some(key.as_bytes()),
        )?;
    }
    apply_ttl(s, socket.as_raw_fd())?;
    if let Some(src) = s.source_address {
        socket.bind(SocketAddr::new(src, 0))?;
    }
    let connecting = socket.connect(SocketAddr::new(s.address, s.port));
    match tokio::time::timeout(s.connect_retry.max(Duration::from_secs(1)), connecting).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")),
    }
}

/// TTL of our segments: 255 with GTSM (and the minimum accepted TTL, RFC 5082 §3),
/// else the configured multihop TTL.
fn apply_ttl(s: &PeerSettings, fd: std::os::fd::RawFd) -> std::io::Result<()> {
    let v6 = s.address.is_ipv6();
    if let Some(hops) = s.gtsm_hops {
        crate::sockopt::set_ttl(fd, v6, 255)?;
        crate::sockopt::set_min_ttl(fd, v6, (256 - hops.max(1) as u16) as u8)?;
    } else if let Some(ttl) = s.ttl {
        crate::sockopt::set_ttl(fd, v6, ttl)?;
    }
    Ok(())
}

/// Bytes of free space the reader keeps before each read.
const READ_CHUNK: usize = 8 * 1024;

/// Reads the byte stream and hands whole messages to the peer task.
async fn reader(id: ConnId, mut rd: OwnedReadHalf, events: mpsc::Sender<ConnEvent>) {
    // Small to start with: a reflector holds thousands of these; it grows
    // for a burst of UPDATEs and the space is reused.
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        loop {
            match next_message_len(&buf, MAX_EXTENDED_MESSAGE_LEN) {
                Ok(Some(n)) => {
                    let msg = buf.split_to(n).freeze();
                    if events.send(ConnEvent::Message(id, msg)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = events.send(ConnEvent::FrameError(id, e)).await;
                    return;
                }
            }
        }
        if buf.capacity() - buf.len() < READ_CHUNK {
            buf.reserve(READ_CHUNK);
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => {
                let _ = events.send(ConnEvent::Closed(id, "closed by peer".into())).await;
                return;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = events.send(ConnEvent::Closed(id, e.to_string())).await;
                return;
            }
        }
    }
}

/// Bytes gathered into one write from the RIB's queue.
const WRITE_BATCH: usize = 64 * 1024;

/// Writes control messages first, then what the RIB queued.
async fn writer(
    _id: ConnId,
    mut wr: OwnedWriteHalf,
    mut control: mpsc::UnboundedReceiver<WriterMsg>,
    events: mpsc::Sender<ConnEvent>,
) {
    let mut rib: Option<(mpsc::Receiver<Bytes>, Arc<AtomicBool>)> = None;
    loop {
        let next = tokio::select! {
            biased;
            m = control.recv() => m,
            b = async {
                match rib.as_mut() {
                    Some((rx, _)) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => match b {
                Some(b) => Some(WriterMsg::Send(b)),
                None => { rib = None; continue; }
            },
        };
        match next {
            Some(WriterMsg::Send(b)) => {
                // Coalesce whatever else the RIB queued into one write (fewer syscalls).
                let mut batch = Vec::new();
                if let Some((rx, _)) = rib.as_mut() {
                    while batch.len() + b.len() < WRITE_BATCH {
                        match rx.try_recv() {
                            Ok(more) => {
                                if batch.is_empty() {
                                    batch.extend_from_slice(&b);
                                }
                                batch.extend_from_slice(&more);
                            }
                            Err(_) => break,
                        }
                    }
                }
                let data: &[u8] = if batch.is_empty() { &b } else { &batch };
                if wr.write_all(data).await.is_err() {
                    return;
                }
                if let Some((_, flag)) = &rib {
                    if flag.swap(false, Ordering::AcqRel) {
                        let _ = events.send(ConnEvent::Writable).await;
                    }
                }
            }
            Some(WriterMsg::Attach(rx, flag)) => rib = Some((rx, flag)),
            Some(WriterMsg::Close) | None => {
                let _ = wr.shutdown().await;
                return;
            }
        }
    }
}
