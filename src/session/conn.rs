//! A session's TCP side: the outgoing connect (TCP-MD5, TTL/GTSM, source
//! address), the reader that frames messages and the writer that sends
//! control messages first, then what the RIB queued.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bgp_proto::framing::{next_message_len, MAX_EXTENDED_MESSAGE_LEN};
use bgp_proto::fsm::ConnId;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

use super::settings::PeerSettings;
use super::sockopt;
use crate::messages::{ConnEvent, OutFlow, WriterMsg};

pub(super) struct Conn {
    pub(super) writer: mpsc::UnboundedSender<WriterMsg>,
    pub(super) reader: tokio::task::JoinHandle<()>,
    pub(super) local: Option<SocketAddr>,
}

/// Opens the outgoing connection, from `source_address` if set.
pub(super) async fn connect(s: &PeerSettings) -> std::io::Result<TcpStream> {
    let socket = match s.address {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(key) = &s.password {
        sockopt::set_md5(
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
pub(super) fn apply_ttl(s: &PeerSettings, fd: std::os::fd::RawFd) -> std::io::Result<()> {
    let v6 = s.address.is_ipv6();
    if let Some(hops) = s.gtsm_hops {
        sockopt::set_ttl(fd, v6, 255)?;
        sockopt::set_min_ttl(fd, v6, (256 - hops.max(1) as u16) as u8)?;
    } else if let Some(ttl) = s.ttl {
        sockopt::set_ttl(fd, v6, ttl)?;
    }
    Ok(())
}

/// Free space the reader starts with before each read, and the most it
/// grows to: a read that fills the space doubles it (a burst of UPDATEs),
/// one that does not halves it again. A reflector holds thousands of
/// readers whose peers send a few messages a minute: 8 KiB each was 33 MiB
/// at 5,000 clients.
const READ_MIN: usize = 1024;
const READ_MAX: usize = 64 * 1024;

/// Reads the byte stream and hands whole messages to the peer task.
pub(super) async fn reader(id: ConnId, mut rd: OwnedReadHalf, events: mpsc::Sender<ConnEvent>) {
    let mut want = READ_MIN;
    let mut buf = BytesMut::with_capacity(want);
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
        if buf.capacity() - buf.len() < want {
            buf.reserve(want);
        }
        let room = buf.capacity() - buf.len();
        match rd.read_buf(&mut buf).await {
            Ok(0) => {
                let _ = events.send(ConnEvent::Closed(id, "closed by peer".into())).await;
                return;
            }
            Ok(n) if n == room => want = (want * 2).min(READ_MAX),
            Ok(_) => want = (want / 2).max(READ_MIN),
            Err(e) => {
                let _ = events.send(ConnEvent::Closed(id, e.to_string())).await;
                return;
            }
        }
    }
}

/// Bytes gathered into one write from the RIB's queue.
const WRITE_BATCH: usize = 64 * 1024;

/// Buffers gathered into one write at most (a writev's slices).
const WRITE_SLICES: usize = 64;

/// Writes every buffer in order with vectored writes, without copying them.
async fn write_all_bytes(
    wr: &mut OwnedWriteHalf,
    pending: &mut std::collections::VecDeque<Bytes>,
) -> std::io::Result<()> {
    use bytes::Buf;
    while !pending.is_empty() {
        let slices: Vec<std::io::IoSlice<'_>> = pending.iter().map(|b| std::io::IoSlice::new(b)).collect();
        let mut written = wr.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let Some(front) = pending.front_mut() else { break };
            if written >= front.len() {
                written -= front.len();
                pending.pop_front();
            } else {
                front.advance(written);
                written = 0;
            }
        }
    }
    Ok(())
}

/// Writes control messages first, then what the RIB queued.
pub(super) async fn writer(
    _id: ConnId,
    mut wr: OwnedWriteHalf,
    mut control: mpsc::UnboundedReceiver<WriterMsg>,
    events: mpsc::Sender<ConnEvent>,
) {
    let mut rib: Option<(mpsc::Receiver<Bytes>, Arc<OutFlow>)> = None;
    loop {
        // Control messages (OPEN, KEEPALIVE, NOTIFICATION) first.
        let (first, from_rib) = tokio::select! {
            biased;
            m = control.recv() => match m {
                Some(WriterMsg::Send(b)) => (b, false),
                Some(WriterMsg::Attach(rx, flow)) => {
                    rib = Some((rx, flow));
                    continue;
                }
                Some(WriterMsg::Close) | None => {
                    let _ = wr.shutdown().await;
                    return;
                }
            },
            b = async {
                match rib.as_mut() {
                    Some((rx, _)) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => match b {
                Some(b) => (b, true),
                None => { rib = None; continue; }
            },
        };
        // Whatever else the RIB queued goes in the same write (fewer
        // syscalls), by reference: the RIB shares one encoding among peers,
        // and a copy per peer waiting on a full socket cost up to 64 KiB
        // each at thousands of peers.
        let mut from_queue = if from_rib { first.len() } else { 0 };
        let mut pending = std::collections::VecDeque::from([first]);
        if let Some((rx, _)) = rib.as_mut() {
            while from_queue < WRITE_BATCH && pending.len() < WRITE_SLICES {
                match rx.try_recv() {
                    Ok(more) => {
                        from_queue += more.len();
                        pending.push_back(more);
                    }
                    Err(_) => break,
                }
            }
        }
        if write_all_bytes(&mut wr, &mut pending).await.is_err() {
            return;
        }
        if let Some((_, flow)) = &rib {
            // SeqCst pairs with the RIB's flag-then-recheck (drain_backlog_only):
            // either it sees these bytes gone, or this sees its flag.
            flow.unsent.fetch_sub(from_queue, Ordering::SeqCst);
            if flow.want_writable.swap(false, Ordering::SeqCst) {
                let _ = events.send(ConnEvent::Writable).await;
            }
        }
    }
}
