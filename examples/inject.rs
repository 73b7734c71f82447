//! Opens a BGP session to ternd (or BIRD) and announces N /26 blocks — the
//! load generator of bench scenario S3 (`examples/bench/s3.sh`).
//!
//! `inject CONNECT_ADDR:PORT ASN ROUTER_ID NEXT_HOP COUNT [HOLD_SECS]`: announces,
//! sends End-of-RIB, then keeps the session up (answering keepalives) for HOLD_SECS.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bgp_proto::update::Update;
use bgp_proto::{Family, Message};
use tern_testkit::testpeer::{blocks, TestPeer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        eprintln!("usage: inject CONNECT_ADDR:PORT ASN ROUTER_ID NEXT_HOP COUNT [HOLD_SECS]");
        std::process::exit(2);
    }
    let to: SocketAddr = args[1].parse()?;
    let asn: u32 = args[2].parse()?;
    let id: Ipv4Addr = args[3].parse()?;
    let next_hop: Ipv4Addr = args[4].parse()?;
    let count: u32 = args[5].parse()?;
    let hold: u64 = args.get(6).map(|s| s.parse()).transpose()?.unwrap_or(3600);
    let mut peer = TestPeer::connect(to, asn, id, Duration::from_secs(30))?;
    let prefixes = blocks(Ipv4Addr::new(10, 0, 0, 0), count);
    let start = Instant::now();
    let messages = peer.announce(&prefixes, next_hop, vec![asn])?;
    peer.send_message(&Message::Update(Update::end_of_rib(Family::IPV4_UNICAST)))?;
    eprintln!(
        "inject: sent {count} prefixes in {messages} UPDATEs in {:?}",
        start.elapsed()
    );
    let until = Instant::now() + Duration::from_secs(hold);
    while Instant::now() < until {
        let step = Instant::now() + Duration::from_secs(10);
        match peer.recv(step.min(until)) {
            Ok(_) => peer.send_message(&Message::Keepalive)?,
            Err(e) => {
                eprintln!("inject: session ended: {e}");
                break;
            }
        }
    }
    Ok(())
}
