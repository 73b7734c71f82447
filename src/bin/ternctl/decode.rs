//! `ternctl decode`: BGP messages from hex, a raw byte file or a pcap,
//! printed as people write them (prefixes, `65000:1`, AS paths, capability
//! names, NOTIFICATION texts) or as JSON.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;

use bgp_proto::attributes::{AttrValue, PathAttribute};
use bgp_proto::framing::{next_message_len, MAX_EXTENDED_MESSAGE_LEN};
use bgp_proto::open::{receive_context, Open};
use bgp_proto::route_refresh::RefreshSubtype;
use bgp_proto::{decode, Context, DecodeError, Decoded, Message, Treatment};
use serde_json::{json, Value};

/// One message to decode, with where it came from when known.
pub struct Input {
    pub bytes: Vec<u8>,
    pub flow: Option<(SocketAddr, SocketAddr)>,
}

/// The outcome for one message.
pub struct Outcome {
    pub text: String,
    pub json: Value,
    /// The message would reset the session (a NOTIFICATION must be sent).
    pub resets_session: bool,
}

/// Parses hex (whitespace, `:` and a `0x` prefix allowed) into bytes.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let clean: String = text
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    if clean.len() % 2 != 0 {
        return Err(format!("odd number of hex digits ({})", clean.len()));
    }
    (0..clean.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&clean[i..i + 2], 16)
                .map_err(|_| format!("not a hex digit pair at position {i}: {:?}", &clean[i..i + 2]))
        })
        .collect()
}

/// Splits raw bytes into messages; trailing bytes that are not a whole
/// message become one final input, so their error is reported.
pub fn split_stream(mut bytes: &[u8]) -> Vec<Input> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        match next_message_len(bytes, MAX_EXTENDED_MESSAGE_LEN) {
            Ok(Some(n)) => {
                out.push(Input {
                    bytes: bytes[..n].to_vec(),
                    flow: None,
                });
                bytes = &bytes[n..];
            }
            _ => {
                out.push(Input {
                    bytes: bytes.to_vec(),
                    flow: None,
                });
                break;
            }
        }
    }
    out
}

/// Decodes every input. For pcap flows the context of each direction is
/// negotiated from the OPENs seen on that connection; otherwise `base` is used.
pub fn decode_all(inputs: &[Input], base: &Context) -> Vec<Outcome> {
    let mut opens: HashMap<(SocketAddr, SocketAddr), Open> = HashMap::new();
    inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let ctx = input
                .flow
                .and_then(|(s, d)| Some(receive_context(opens.get(&(s, d))?, opens.get(&(d, s))?)))
                .unwrap_or_else(|| base.clone());
            let result = decode(&input.bytes, &ctx);
            if let (
                Ok(Decoded {
                    message: Message::Open(o),
                    ..
                }),
                Some(flow),
            ) = (&result, input.flow)
            {
                opens.insert(flow, o.clone());
            }
            describe(i + 1, input, &result)
        })
        .collect()
}

fn describe(n: usize, input: &Input, result: &Result<Decoded, DecodeError>) -> Outcome {
    let mut text = String::new();
    let flow = input.flow.map(|(s, d)| format!(" {s} -> {d}")).unwrap_or_default();
    let mut json = json!({ "index": n, "length": input.bytes.len() });
    if let Some((s, d)) = input.flow {
        json["src"] = json!(s.to_string());
        json["dst"] = json!(d.to_string());
    }
    match result {
        Err(e) => {
            let (code, subcode) = e.notification_code();
            let names = bgp_proto::notification::names(code, subcode);
            let _ = writeln!(
                text,
                "#{n}{flow} MALFORMED ({} octets)\n  session reset: NOTIFICATION {code}/{subcode} ({} / {}) at offset {}: {}",
                input.bytes.len(),
                names.0,
                names.1,
                e.offset,
                e.reason
            );
            json["error"] = json!({
                "notification": format!("{code}/{subcode}"),
                "name": format!("{} / {}", names.0, names.1),
                "offset": e.offset,
                "reason": e.reason.to_string(),
            });
            Outcome {
                text,
                json,
                resets_session: true,
            }
        }
        Ok(d) => {
            let kind = format!("{:?}", d.message.message_type()).to_uppercase();
            let kind = if kind == "ROUTEREFRESH" {
                "ROUTE-REFRESH".to_string()
            } else {
                kind
            };
            let _ = writeln!(text, "#{n}{flow} {kind} ({} octets)", input.bytes.len());
            json["type"] = json!(kind);
            body(&d.message, &mut text, &mut json);
            if d.treatment != Treatment::None {
                let _ = writeln!(text, "  RFC 7606: {}", d.treatment.as_str());
                for e in &d.errors {
                    let (c, s) = e.reason.notification_code();
                    let _ = writeln!(
                        text,
                        "    attribute {} at offset {}: {} ({c}/{s}) -> {}",
                        e.type_code,
                        e.offset,
                        e.reason,
                        e.treatment.as_str()
                    );
                }
                json["treatment"] = json!(d.treatment.as_str());
                json["attribute_errors"] = d
                    .errors
                    .iter()
                    .map(|e| {
                        json!({"type": e.type_code, "offset": e.offset, "reason": e.reason.to_string(), "treatment": e.treatment.as_str()})
                    })
                    .collect();
            }
            Outcome {
                text,
                json,
                resets_session: false,
            }
        }
    }
}

fn body(msg: &Message, text: &mut String, json: &mut Value) {
    match msg {
        Message::Keepalive => {}
        Message::Open(o) => {
            let _ = writeln!(
                text,
                "  version {} as {} hold-time {} router-id {}",
                o.version,
                o.asn(),
                o.hold_time,
                o.bgp_id
            );
            let caps: Vec<String> = o.capabilities().map(|c| c.describe()).collect();
            for c in &caps {
                let _ = writeln!(text, "  capability {c}");
            }
            json["open"] = json!({
                "version": o.version, "asn": o.asn(), "my_as": o.my_as, "hold_time": o.hold_time,
                "router_id": o.bgp_id.to_string(), "capabilities": caps, "extended_params": o.extended_params,
            });
        }
        Message::Notification(n) => {
            let _ = writeln!(text, "  {}", n.describe());
            if let Some(msg) = n.shutdown_message() {
                let _ = writeln!(text, "  shutdown message: {msg:?}");
            } else if !n.data.is_empty() {
                let _ = writeln!(text, "  data: {}", hex(&n.data));
            }
            json["notification"] = json!({
                "code": n.code, "subcode": n.subcode, "name": n.describe(),
                "shutdown_message": n.shutdown_message(), "data": hex(&n.data),
            });
        }
        Message::RouteRefresh(r) => {
            let sub = match r.subtype {
                RefreshSubtype::Request => "request".to_string(),
                RefreshSubtype::Begin => "begin (BoRR)".to_string(),
                RefreshSubtype::End => "end (EoRR)".to_string(),
                RefreshSubtype::Reserved(n) => format!("reserved {n}"),
            };
            let _ = writeln!(text, "  {} {sub}", r.family);
            json["route_refresh"] = json!({"family": r.family.to_string(), "subtype": sub});
        }
        Message::Update(u) => {
            if let Some(f) = u.as_end_of_rib() {
                let _ = writeln!(text, "  End-of-RIB {f}");
                json["end_of_rib"] = json!(f.to_string());
                return;
            }
            let mut attrs = Vec::new();
            for a in &u.attributes {
                let (name, value) = attribute(a);
                let _ = writeln!(text, "  {name}: {value}");
                attrs.push(json!({"name": name, "value": value, "flags": format!("0x{:02x}", a.flags)}));
            }
            let list = |v: &[bgp_proto::Nlri]| v.iter().map(nlri).collect::<Vec<_>>();
            if !u.withdrawn.is_empty() {
                let _ = writeln!(text, "  withdrawn: {}", list(&u.withdrawn).join(" "));
            }
            if !u.nlri.is_empty() {
                let _ = writeln!(text, "  nlri: {}", list(&u.nlri).join(" "));
            }
            json["attributes"] = Value::Array(attrs);
            json["withdrawn"] = json!(list(&u.withdrawn));
            json["nlri"] = json!(list(&u.nlri));
        }
    }
}

fn nlri(n: &bgp_proto::Nlri) -> String {
    match n.path_id {
        Some(id) => format!("{} (path {id})", n.prefix),
        None => n.prefix.to_string(),
    }
}

fn join<T: std::fmt::Display>(v: &[T]) -> String {
    v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" ")
}

/// Attribute name and value as text.
fn attribute(a: &PathAttribute) -> (String, String) {
    let (name, value) = match &a.value {
        AttrValue::Origin(o) => ("origin", o.as_str().to_string()),
        AttrValue::AsPath(p) => ("as-path", p.to_string()),
        AttrValue::NextHop(n) => ("next-hop", n.to_string()),
        AttrValue::Med(m) => ("med", m.to_string()),
        AttrValue::LocalPref(l) => ("local-pref", l.to_string()),
        AttrValue::AtomicAggregate => ("atomic-aggregate", String::new()),
        AttrValue::Aggregator(g) => ("aggregator", format!("{} {}", g.asn, g.address)),
        AttrValue::Communities(c) => ("communities", join(c)),
        AttrValue::OriginatorId(o) => ("originator-id", o.to_string()),
        AttrValue::ClusterList(c) => ("cluster-list", join(c)),
        AttrValue::MpReach(m) => (
            "mp-reach",
            format!(
                "{} next-hop {} nlri {}",
                m.family,
                m.next_hop,
                m.nlri.iter().map(nlri).collect::<Vec<_>>().join(" ")
            ),
        ),
        AttrValue::MpUnreach(m) => (
            "mp-unreach",
            format!(
                "{} withdrawn {}",
                m.family,
                m.withdrawn.iter().map(nlri).collect::<Vec<_>>().join(" ")
            ),
        ),
        AttrValue::ExtendedCommunities(c) => ("ext-communities", join(c)),
        AttrValue::As4Path(p) => ("as4-path", p.to_string()),
        AttrValue::As4Aggregator(g) => ("as4-aggregator", format!("{} {}", g.asn, g.address)),
        AttrValue::LargeCommunities(c) => ("large-communities", join(c)),
        AttrValue::Otc(o) => ("otc", o.to_string()),
        AttrValue::Raw { type_code, data } => {
            return (format!("attribute-{type_code}"), hex(data));
        }
    };
    (name.to_string(), value)
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_parsing() {
        assert_eq!(parse_hex("0xff 01:02").unwrap(), vec![0xff, 1, 2]);
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
    }

    #[test]
    fn update_is_shown_as_people_write_it() {
        use bgp_proto::attributes::{AsPath, Community, LargeCommunity, MpNextHop, Origin};
        let attrs = [
            AttrValue::Origin(Origin::Igp),
            AttrValue::AsPath(AsPath::sequence(vec![65001, 4_200_000_001])),
            AttrValue::Communities(vec![Community::new(65000, 1), Community::NO_EXPORT]),
            AttrValue::LargeCommunities(vec![LargeCommunity {
                global: 65000,
                local1: 1,
                local2: 2,
            }]),
        ]
        .map(PathAttribute::new);
        let nlri = [bgp_proto::Nlri::new("10.244.2.0/26".parse().unwrap())];
        let mut bytes = Vec::new();
        let nh = MpNextHop::V4("192.168.1.12".parse().unwrap());
        bgp_proto::update::pack_announcements(
            &Context::default(),
            bgp_proto::Family::IPV4_UNICAST,
            nh,
            &attrs,
            &nlri,
            &mut bytes,
        )
        .unwrap();
        let hex_msg = hex(&bytes);
        let inputs = split_stream(&parse_hex(&hex_msg).unwrap());
        let out = decode_all(&inputs, &Context::default());
        assert_eq!(out.len(), 1);
        let t = &out[0].text;
        for want in [
            "UPDATE",
            "as-path: 65001 4200000001",
            "next-hop: 192.168.1.12",
            "communities: 65000:1 no-export",
            "large-communities: 65000:1:2",
            "nlri: 10.244.2.0/26",
        ] {
            assert!(t.contains(want), "{want:?} missing in:\n{t}");
        }
        assert!(!out[0].resets_session);
    }

    #[test]
    fn malformed_message_reports_notification_and_offset() {
        // A KEEPALIVE whose length field says 20.
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&[0, 20, 4, 0]);
        let out = decode_all(&split_stream(&m), &Context::default());
        assert!(out[0].resets_session);
        assert!(out[0].text.contains("1/2"), "{}", out[0].text);
        assert!(out[0].text.contains("offset 16"), "{}", out[0].text);
    }
}
