//! RTM_NEWLINK / RTM_DELLINK notifications read directly from the bytes.
//! fib-sync needs only a link's index, name and IFF_UP flag; the full parse
//! (every statistics and AF_SPEC attribute, error contexts formatted eagerly)
//! was most of fib-sync's CPU while thousands of pod veths came and went.

use crate::fib::FibEvent;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const IFLA_IFNAME: u16 = 3;
const IFF_UP: u32 = 1;

/// For one netlink message (header included): `None` when it is not a link
/// message (parse it the general way), `Some(event)` when it is (the event is
/// `None` if the message is malformed or lacks a name). Never panics.
pub(crate) fn link_event(msg: &[u8]) -> Option<Option<FibEvent>> {
    let kind = u16::from_ne_bytes([*msg.get(4)?, *msg.get(5)?]);
    if kind != RTM_NEWLINK && kind != RTM_DELLINK {
        return None;
    }
    Some(parse(kind, msg))
}

fn parse(kind: u16, msg: &[u8]) -> Option<FibEvent> {
    let u32_at = |at: usize| -> Option<u32> { Some(u32::from_ne_bytes(msg.get(at..at + 4)?.try_into().ok()?)) };
    let ifindex = u32_at(NLMSG_HDRLEN + 4)?;
    if kind == RTM_DELLINK {
        return Some(FibEvent::LinkDeleted { ifindex });
    }
    let up = u32_at(NLMSG_HDRLEN + 8)? & IFF_UP != 0;
    let mut at = NLMSG_HDRLEN + IFINFOMSG_LEN;
    while at + 4 <= msg.len() {
        let len = u16::from_ne_bytes([msg[at], msg[at + 1]]) as usize;
        let kind = u16::from_ne_bytes([msg[at + 2], msg[at + 3]]);
        if len < 4 || at + len > msg.len() {
            return None;
        }
        if kind == IFLA_IFNAME {
            let value = &msg[at + 4..at + len];
            let name = value.split(|b| *b == 0).next()?;
            let name = std::str::from_utf8(name).ok()?.to_string();
            return Some(FibEvent::LinkChanged { ifindex, name, up });
        }
        at += (len + 3) & !3;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link message as the kernel lays it out, with the attributes given.
    fn message(kind: u16, ifindex: u32, flags: u32, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut m = vec![0u8; NLMSG_HDRLEN];
        m[4..6].copy_from_slice(&kind.to_ne_bytes());
        let mut ifi = [0u8; IFINFOMSG_LEN];
        ifi[4..8].copy_from_slice(&ifindex.to_ne_bytes());
        ifi[8..12].copy_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&ifi);
        for (kind, value) in attrs {
            m.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
            m.extend_from_slice(&kind.to_ne_bytes());
            m.extend_from_slice(value);
            m.resize((m.len() + 3) & !3, 0);
        }
        let len = m.len() as u32;
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        m
    }

    #[test]
    fn index_name_and_up_flag_of_new_and_deleted_links() {
        let mtu: &[u8] = &1500u32.to_ne_bytes();
        let new = message(
            RTM_NEWLINK,
            7,
            IFF_UP | 0x1000,
            &[(4, mtu), (IFLA_IFNAME, b"cali1234\0")],
        );
        let event = FibEvent::LinkChanged {
            ifindex: 7,
            name: "cali1234".into(),
            up: true,
        };
        assert_eq!(link_event(&new), Some(Some(event)));
        let down = message(RTM_NEWLINK, 7, 0, &[(IFLA_IFNAME, b"eth0\0")]);
        assert!(matches!(
            link_event(&down),
            Some(Some(FibEvent::LinkChanged { up: false, .. }))
        ));
        let del = message(RTM_DELLINK, 9, 0, &[]);
        assert_eq!(link_event(&del), Some(Some(FibEvent::LinkDeleted { ifindex: 9 })));
        assert_eq!(
            link_event(&message(24, 1, 0, &[])),
            None,
            "RTM_NEWROUTE: parsed elsewhere"
        );
    }

    #[test]
    fn malformed_link_messages_never_panic() {
        let good = message(RTM_NEWLINK, 7, IFF_UP, &[(IFLA_IFNAME, b"cali1234\0")]);
        for cut in 0..good.len() {
            let _ = link_event(&good[..cut]);
        }
        let mut bad_len = good.clone();
        bad_len[NLMSG_HDRLEN + IFINFOMSG_LEN] = 200;
        assert_eq!(link_event(&bad_len), Some(None));
        let mut zero_len = good;
        zero_len[NLMSG_HDRLEN + IFINFOMSG_LEN] = 0;
        assert_eq!(link_event(&zero_len), Some(None));
    }
}
