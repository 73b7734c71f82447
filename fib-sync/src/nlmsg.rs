//! NETLINK_ROUTE messages in and out by their concrete kind: the route, link
//! and address messages fib-sync reads, the requests it sends. Going through
//! `RouteNetlinkMessage` linked in the parser and emitter of every rtnetlink
//! kind (traffic control, neighbours, rules, ...), code an idle daemon holds
//! resident all the same (issue 14, S3).

use netlink_packet_core::{Emitable, ErrorBuffer, NetlinkBuffer, Parseable, NLMSG_DONE, NLMSG_ERROR};
use netlink_packet_route::address::{AddressMessage, AddressMessageBuffer};
use netlink_packet_route::route::{RouteMessage, RouteMessageBuffer};

use crate::fib::FibEvent;

/// `struct nlmsghdr`.
const NETLINK_HEADER_LEN: usize = 16;

pub(crate) const RTM_GETLINK: u16 = 18;
pub(crate) const RTM_NEWADDR: u16 = 20;
pub(crate) const RTM_DELADDR: u16 = 21;
pub(crate) const RTM_GETADDR: u16 = 22;
pub(crate) const RTM_NEWROUTE: u16 = 24;
pub(crate) const RTM_DELROUTE: u16 = 25;
pub(crate) const RTM_GETROUTE: u16 = 26;

/// What a received message says, as far as fib-sync reads it.
#[derive(Debug)]
pub(crate) enum Body {
    /// NLMSG_DONE: the end of a dump.
    Done,
    /// NLMSG_ERROR: `None` acknowledges a request, else the (positive) errno.
    Error(Option<i32>),
    NewRoute(RouteMessage),
    DelRoute(RouteMessage),
    /// RTM_NEWLINK / RTM_DELLINK, read from the bytes (`None`: malformed).
    Link(Option<FibEvent>),
    NewAddress(AddressMessage),
    DelAddress(AddressMessage),
    /// Another kind, or one that did not decode: skipped.
    Other,
}

/// One received message: its header's sequence number and flags, and its body.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) seq: u32,
    pub(crate) flags: u16,
    pub(crate) body: Body,
}

/// The netlink messages of a datagram, as byte slices (header included).
pub(crate) fn raw_messages(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut off = 0usize;
    std::iter::from_fn(move || {
        if buf.len().saturating_sub(off) < NETLINK_HEADER_LEN {
            return None;
        }
        let len = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]) as usize;
        if len < NETLINK_HEADER_LEN || off + len > buf.len() {
            return None;
        }
        let msg = &buf[off..off + len];
        off += (len + 3) & !3;
        Some(msg)
    })
}

/// Decodes one message (header included); `None` if even its header is bad.
/// Never panics: a body that does not decode is logged and becomes `Other`.
pub(crate) fn decode(msg: &[u8]) -> Option<Received> {
    let nl = NetlinkBuffer::new_checked(msg).ok()?;
    let (kind, seq, flags) = (nl.message_type(), nl.sequence_number(), nl.flags());
    let payload = nl.payload();
    let body = match kind {
        NLMSG_DONE => Ok(Body::Done),
        NLMSG_ERROR => ErrorBuffer::new_checked(payload).map(|e| Body::Error(e.code().map(|c| -c.get()))),
        RTM_NEWROUTE | RTM_DELROUTE => RouteMessageBuffer::new_checked(&payload)
            .and_then(|b| RouteMessage::parse(&b))
            .map(|r| match kind {
                RTM_NEWROUTE => Body::NewRoute(r),
                _ => Body::DelRoute(r),
            }),
        RTM_NEWADDR | RTM_DELADDR => AddressMessageBuffer::new_checked(&payload)
            .and_then(|b| AddressMessage::parse(&b))
            .map(|a| match kind {
                RTM_NEWADDR => Body::NewAddress(a),
                _ => Body::DelAddress(a),
            }),
        _ => match crate::linkmsg::link_event(msg) {
            Some(link) => Ok(Body::Link(link)),
            None => Ok(Body::Other),
        },
    };
    let body = body.unwrap_or_else(|e| {
        tracing::debug!("skipping undecodable netlink message (type {kind}): {e}");
        Body::Other
    });
    Some(Received { seq, flags, body })
}

/// The messages of a datagram; ones without a valid header are skipped.
pub(crate) fn messages(buf: &[u8]) -> impl Iterator<Item = Received> + '_ {
    raw_messages(buf).filter_map(decode)
}

/// A request body of `len` zero bytes: a dump of every link (`ifinfomsg`) or
/// address (`ifaddrmsg`) of any family.
pub(crate) struct Zeroed(pub(crate) usize);

impl Emitable for Zeroed {
    fn buffer_len(&self) -> usize {
        self.0
    }

    fn emit(&self, buffer: &mut [u8]) {
        buffer[..self.0].fill(0);
    }
}

/// Appends a request of `kind` with `body` to `out` (padded to 4 bytes).
pub(crate) fn encode(out: &mut Vec<u8>, kind: u16, body: &impl Emitable, flags: u16, seq: u32) {
    let len = NETLINK_HEADER_LEN + body.buffer_len();
    let start = out.len();
    out.resize(start + ((len + 3) & !3), 0);
    let mut nl = NetlinkBuffer::new(&mut out[start..start + len]);
    nl.set_length(len as u32);
    nl.set_message_type(kind);
    nl.set_flags(flags);
    nl.set_sequence_number(seq);
    nl.set_port_number(0);
    body.emit(nl.payload_mut());
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::NLM_F_REQUEST;

    #[test]
    fn a_request_decodes_as_what_was_sent() {
        let mut out = Vec::new();
        let mut r = RouteMessage::default();
        r.header.destination_prefix_length = 26;
        encode(&mut out, RTM_NEWROUTE, &r, NLM_F_REQUEST, 7);
        encode(&mut out, RTM_GETLINK, &Zeroed(16), NLM_F_REQUEST, 8);
        assert_eq!(out.len() % 4, 0);
        let got: Vec<Received> = messages(&out).collect();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].seq, got[0].flags), (7, NLM_F_REQUEST));
        assert!(matches!(&got[0].body, Body::NewRoute(m) if m.header.destination_prefix_length == 26));
        // A request for links is not a link message.
        assert!(matches!(got[1].body, Body::Other), "{:?}", got[1].body);
    }

    #[test]
    fn errors_acks_and_done() {
        let mut msg = vec![0u8; NETLINK_HEADER_LEN + 4 + NETLINK_HEADER_LEN];
        let len = msg.len() as u32;
        msg[0..4].copy_from_slice(&len.to_ne_bytes());
        msg[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        msg[8..12].copy_from_slice(&5u32.to_ne_bytes());
        msg[16..20].copy_from_slice(&(-17i32).to_ne_bytes());
        let m = decode(&msg).unwrap();
        assert!(matches!(m.body, Body::Error(Some(17))) && m.seq == 5);
        msg[16..20].copy_from_slice(&0i32.to_ne_bytes());
        assert!(matches!(decode(&msg).unwrap().body, Body::Error(None)));
        msg[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        assert!(matches!(decode(&msg).unwrap().body, Body::Done));
    }

    #[test]
    fn garbage_does_not_panic() {
        assert_eq!(messages(&[0xff; 40]).count(), 0);
        assert!(messages(&[16, 0, 0, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).count() <= 1);
        assert_eq!(messages(&[]).count(), 0);
        let mut out = Vec::new();
        let mut r = RouteMessage::default();
        r.header.destination_prefix_length = 26;
        encode(&mut out, RTM_NEWROUTE, &r, 0, 1);
        for cut in 0..out.len() {
            let _ = messages(&out[..cut]).count();
        }
    }
}
