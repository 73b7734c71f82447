//! UPDATE message (RFC 4271 §4.3): decoding with the RFC 7606 treatment
//! decided per attribute, encoding, and packing many prefixes that share one
//! attribute set into as few messages as fit.
//!
//! ```text
//! +-----------------------------------------------------+
//! |   Withdrawn Routes Length (2 octets)                |
//! +-----------------------------------------------------+
//! |   Withdrawn Routes (variable)                       |
//! +-----------------------------------------------------+
//! |   Total Path Attribute Length (2 octets)            |
//! +-----------------------------------------------------+
//! |   Path Attributes (variable)                        |
//! +-----------------------------------------------------+
//! |   Network Layer Reachability Information (variable) |
//! +-----------------------------------------------------+
//! ```

use std::net::Ipv4Addr;

use crate::attributes::{
    decode_value, flags, type_code, AsPath, AttrValue, Checked, MpNextHop, MpReach, MpUnreach, Origin, PathAttribute,
};
use crate::error::{AttributeError, DecodeError, EncodeError, Reason, Treatment};
use crate::framing::HEADER_LEN;
use crate::header::{finish_header, write_header, MessageType};
use crate::nlri::{decode_prefixes, AddressKind, Nlri};
use crate::types::{Context, Family};

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Update {
    /// IPv4 unicast prefixes withdrawn in the Withdrawn Routes field.
    pub withdrawn: Vec<Nlri>,
    /// Attributes in the order received (or to be sent).
    pub attributes: Vec<PathAttribute>,
    /// IPv4 unicast prefixes announced in the NLRI field.
    pub nlri: Vec<Nlri>,
}

/// A decoded UPDATE and what RFC 7606 says to do with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedUpdate {
    /// With [`Treatment::AttributeDiscard`], malformed attributes are already removed.
    pub update: Update,
    /// The strongest treatment any problem requires (RFC 7606 §3 h).
    pub treatment: Treatment,
    /// Every problem found, with its offset.
    pub errors: Vec<AttributeError>,
}

impl ParsedUpdate {
    /// Prefixes to install: none when the UPDATE is treated as a withdraw
    /// or its family is disabled.
    pub fn announced(&self) -> Vec<(Family, Nlri)> {
        match self.treatment {
            Treatment::None | Treatment::AttributeDiscard => self.update.announced().map(|(f, n)| (f, *n)).collect(),
            Treatment::TreatAsWithdraw | Treatment::AfiSafiDisable(_) => Vec::new(),
        }
    }

    /// Prefixes to remove: the withdrawn ones, plus the announced ones when
    /// RFC 7606 §2 "treat-as-withdraw" applies.
    pub fn withdrawn(&self) -> Vec<(Family, Nlri)> {
        let mut out: Vec<(Family, Nlri)> = self.update.withdrawn_routes().map(|(f, n)| (f, *n)).collect();
        if self.treatment == Treatment::TreatAsWithdraw {
            out.extend(self.update.announced().map(|(f, n)| (f, *n)));
        }
        out
    }
}

impl Update {
    /// End-of-RIB marker (RFC 4724 §2): an empty UPDATE for IPv4 unicast, an
    /// UPDATE with only an empty MP_UNREACH_NLRI for other families.
    pub fn end_of_rib(family: Family) -> Update {
        if family == Family::IPV4_UNICAST {
            return Update::default();
        }
        Update {
            attributes: vec![PathAttribute::new(AttrValue::MpUnreach(MpUnreach {
                family,
                withdrawn: Vec::new(),
            }))],
            ..Update::default()
        }
    }

    /// The family this UPDATE marks the End-of-RIB of, if it is such a marker.
    pub fn as_end_of_rib(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        match self.attributes.as_slice() {
            [] => Some(Family::IPV4_UNICAST),
            [PathAttribute {
                value: AttrValue::MpUnreach(mp),
                ..
            }] if mp.withdrawn.is_empty() => Some(mp.family),
            _ => None,
        }
    }

    pub fn attribute(&self, type_code: u8) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .map(|a| &a.value)
            .find(|v| v.type_code() == type_code)
    }

    pub fn origin(&self) -> Option<Origin> {
        match self.attribute(type_code::ORIGIN) {
            Some(AttrValue::Origin(o)) => Some(*o),
            _ => None,
        }
    }

    pub fn as_path(&self) -> Option<&AsPath> {
        match self.attribute(type_code::AS_PATH) {
            Some(AttrValue::AsPath(p)) => Some(p),
            _ => None,
        }
    }

    pub fn next_hop(&self) -> Option<Ipv4Addr> {
        match self.attribute(type_code::NEXT_HOP) {
            Some(AttrValue::NextHop(a)) => Some(*a),
            _ => None,
        }
    }

    pub fn mp_reach(&self) -> Option<&MpReach> {
        match self.attribute(type_code::MP_REACH_NLRI) {
            Some(AttrValue::MpReach(m)) => Some(m),
            _ => None,
        }
    }

    pub fn mp_unreach(&self) -> Option<&MpUnreach> {
        match self.attribute(type_code::MP_UNREACH_NLRI) {
            Some(AttrValue::MpUnreach(m)) => Some(m),
            _ => None,
        }
    }

    /// Every announced prefix with its family (NLRI field, then MP_REACH_NLRI).
    pub fn announced(&self) -> impl Iterator<Item = (Family, &Nlri)> {
        let body = self.nlri.iter().map(|n| (Family::IPV4_UNICAST, n));
        let mp = self
            .mp_reach()
            .into_iter()
            .flat_map(|m| m.nlri.iter().map(move |n| (m.family, n)));
        body.chain(mp)
    }

    /// Every withdrawn prefix with its family (Withdrawn Routes, then MP_UNREACH_NLRI).
    pub fn withdrawn_routes(&self) -> impl Iterator<Item = (Family, &Nlri)> {
        let body = self.withdrawn.iter().map(|n| (Family::IPV4_UNICAST, n));
        let mp = self
            .mp_unreach()
            .into_iter()
            .flat_map(|m| m.withdrawn.iter().map(move |n| (m.family, n)));
        body.chain(mp)
    }

    /// Decodes an UPDATE body (after the 19-byte header).
    ///
    /// Returns `Err` only when the session must be reset; otherwise the
    /// routes plus the RFC 7606 treatment.
    pub fn decode(body: &[u8], ctx: &Context) -> Result<ParsedUpdate, DecodeError> {
        let at = |i: usize| HEADER_LEN + i;
        if body.len() < 4 {
            return Err(DecodeError::new(Reason::Truncated("UPDATE"), at(body.len())));
        }
        let v4_add_path = ctx.has_add_path(Family::IPV4_UNICAST);
        let wlen = u16::from_be_bytes([body[0], body[1]]) as usize;
        // RFC 4271 §6.3 / RFC 7606 §5.3: lengths that do not add up make the
        // NLRI impossible to locate: Malformed Attribute List, session reset.
        if 2 + wlen + 2 > body.len() {
            return Err(DecodeError::new(
                Reason::MalformedAttributeList("withdrawn routes length"),
                at(0),
            ));
        }
        let mut withdrawn = Vec::new();
        decode_prefixes(&body[2..2 + wlen], AddressKind::V4, v4_add_path, &mut withdrawn)
            .map_err(|(r, off)| DecodeError::new(r, at(2 + off)))?;
        let alen_at = 2 + wlen;
        let alen = u16::from_be_bytes([body[alen_at], body[alen_at + 1]]) as usize;
        let attrs_start = alen_at + 2;
        if attrs_start + alen > body.len() {
            return Err(DecodeError::new(
                Reason::MalformedAttributeList("total path attribute length"),
                at(alen_at),
            ));
        }
        let mut parsed = ParsedUpdate {
            update: Update {
                withdrawn,
                attributes: Vec::new(),
                nlri: Vec::new(),
            },
            treatment: Treatment::None,
            errors: Vec::new(),
        };
        let mut seen = [false; 256];
        decode_attributes(
            &body[attrs_start..attrs_start + alen],
            at(attrs_start),
            ctx,
            &mut seen,
            &mut parsed,
        )?;
        let nlri_start = attrs_start + alen;
        decode_prefixes(
            &body[nlri_start..],
            AddressKind::V4,
            v4_add_path,
            &mut parsed.update.nlri,
        )
        .map_err(|(r, off)| DecodeError::new(r, at(nlri_start + off)))?;
        check_mandatory(&seen, at(attrs_start), &mut parsed);
        Ok(parsed)
    }

    /// Appends the whole message (header included). Fails rather than
    /// truncating when it does not fit `ctx.max_message_len`.
    pub fn encode(&self, ctx: &Context, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        write_header(out, MessageType::Update);
        let wpos = out.len();
        out.extend_from_slice(&[0, 0]);
        let v4_add_path = ctx.has_add_path(Family::IPV4_UNICAST);
        self.withdrawn.iter().for_each(|n| n.encode(v4_add_path, out));
        let wlen = out.len() - wpos - 2;
        let apos = out.len();
        out.extend_from_slice(&[0, 0]);
        for a in &self.attributes {
            if let Err(e) = a.encode(ctx, out) {
                out.truncate(start);
                return Err(e);
            }
        }
        let alen = out.len() - apos - 2;
        self.nlri.iter().for_each(|n| n.encode(v4_add_path, out));
        let total = out.len() - start;
        if total > ctx.max_message_len || wlen > u16::MAX as usize || alen > u16::MAX as usize {
            out.truncate(start);
            return Err(EncodeError::MessageTooLong {
                len: total,
                max: ctx.max_message_len,
            });
        }
        out[wpos..wpos + 2].copy_from_slice(&(wlen as u16).to_be_bytes());
        out[apos..apos + 2].copy_from_slice(&(alen as u16).to_be_bytes());
        out[start + 16..start + 18].copy_from_slice(&(total as u16).to_be_bytes());
        Ok(())
    }
}

/// Walks the path attributes, applying RFC 7606 §3 and §4.
fn decode_attributes(
    mut v: &[u8],
    base: usize,
    ctx: &Context,
    seen: &mut [bool; 256],
    parsed: &mut ParsedUpdate,
) -> Result<(), DecodeError> {
    let total = v.len();
    while !v.is_empty() {
        let offset = base + total - v.len();
        let extended = v[0] & flags::EXTENDED_LENGTH != 0;
        let header_len = if extended { 4 } else { 3 };
        let value_len = match (v.len() >= header_len, extended) {
            (true, true) => Some(u16::from_be_bytes([v[2], v[3]]) as usize),
            (true, false) => Some(v[2] as usize),
            (false, _) => None,
        };
        // RFC 7606 §4: fewer octets left than an attribute header, or an
        // attribute that runs past the Total Path Attribute Length: treat-as-withdraw,
        // and the NLRI field is still located from the total length — but
        // only once the MP attributes were parsed: an MP_(UN)REACH_NLRI hidden
        // in the unparsed rest could not be withdrawn, so before any was seen
        // the session is reset (RFC 7606 §3 j, review finding 13).
        let Some(value) = value_len.and_then(|len| v.get(header_len..header_len + len)) else {
            let type_code = v.get(1).copied().unwrap_or(0);
            let mp_seen = seen[type_code::MP_REACH_NLRI as usize] || seen[type_code::MP_UNREACH_NLRI as usize];
            if !mp_seen {
                return Err(
                    DecodeError::new(Reason::MalformedAttributeList("attribute overruns the list"), offset)
                        .with_data(v.to_vec()),
                );
            }
            record(
                parsed,
                type_code,
                offset,
                Reason::AttributeLength(type_code),
                Treatment::TreatAsWithdraw,
            );
            return Ok(());
        };
        let (flag_bits, type_code) = (v[0], v[1]);
        let raw = &v[..header_len + value.len()];
        v = &v[header_len + value.len()..];
        if seen[type_code as usize] {
            // RFC 7606 §3 g: a repeated MP_(UN)REACH_NLRI resets the session;
            // any other repeat is discarded after the first.
            if matches!(type_code, type_code::MP_REACH_NLRI | type_code::MP_UNREACH_NLRI) {
                return Err(
                    DecodeError::new(Reason::MalformedAttributeList("repeated MP attribute"), offset)
                        .with_data(raw.to_vec()),
                );
            }
            record(
                parsed,
                type_code,
                offset,
                Reason::MalformedAttributeList("repeated attribute"),
                Treatment::AttributeDiscard,
            );
            continue;
        }
        seen[type_code as usize] = true;
        match decode_value(type_code, flag_bits, value, ctx) {
            Checked::Ok(value) => parsed.update.attributes.push(PathAttribute {
                flags: flag_bits,
                value,
            }),
            Checked::Malformed(reason, treatment) => record(parsed, type_code, offset, reason, treatment),
            Checked::Reset(reason) => return Err(DecodeError::new(reason, offset).with_data(raw.to_vec())),
        }
    }
    Ok(())
}

fn record(parsed: &mut ParsedUpdate, type_code: u8, offset: usize, reason: Reason, treatment: Treatment) {
    parsed.treatment = parsed.treatment.max(treatment);
    parsed.errors.push(AttributeError {
        type_code,
        offset,
        reason,
        treatment,
    });
}

/// RFC 7606 §3 d: a missing well-known mandatory attribute means
/// treat-as-withdraw. ORIGIN and AS_PATH are needed whenever routes are
/// announced; NEXT_HOP only for the NLRI field (RFC 4760 §3).
fn check_mandatory(seen: &[bool; 256], attrs_offset: usize, parsed: &mut ParsedUpdate) {
    let has_body_nlri = !parsed.update.nlri.is_empty();
    let has_mp_reach = seen[type_code::MP_REACH_NLRI as usize];
    if !has_body_nlri && !has_mp_reach {
        return;
    }
    let mut required = vec![type_code::ORIGIN, type_code::AS_PATH];
    if has_body_nlri {
        required.push(type_code::NEXT_HOP);
    }
    for t in required {
        if !seen[t as usize] {
            record(
                parsed,
                t,
                attrs_offset,
                Reason::MissingWellKnown(t),
                Treatment::TreatAsWithdraw,
            );
        }
    }
}

/// Packs prefixes sharing one attribute set into UPDATE messages.
///
/// `attributes` is the shared set without NEXT_HOP and MP_* (sorted by type
/// code); the packer adds NEXT_HOP for IPv4 unicast with an IPv4 next hop
/// (NLRI field) and MP_REACH_NLRI, first as RFC 7606 §5.1 asks, otherwise.
/// Whole messages are appended to `out`; returns how many were written.
pub fn pack_announcements(
    ctx: &Context,
    family: Family,
    next_hop: MpNextHop,
    attributes: &[PathAttribute],
    nlri: &[Nlri],
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let add_path = ctx.has_add_path(family);
    let mut attrs_bytes = Vec::with_capacity(128);
    let in_body = family == Family::IPV4_UNICAST && matches!(next_hop, MpNextHop::V4(_));
    let mut next_hop_written = false;
    for a in attributes {
        if in_body && !next_hop_written && a.type_code() > type_code::NEXT_HOP {
            write_next_hop(ctx, next_hop, &mut attrs_bytes)?;
            next_hop_written = true;
        }
        a.encode(ctx, &mut attrs_bytes)?;
    }
    if in_body && !next_hop_written {
        write_next_hop(ctx, next_hop, &mut attrs_bytes)?;
    }
    let max = ctx.max_message_len;
    let mut count = 0;
    let mut rest = nlri;
    if in_body {
        let fixed = HEADER_LEN + 4 + attrs_bytes.len();
        while !rest.is_empty() {
            let n = fit(rest, add_path, max.saturating_sub(fixed))?;
            let start = out.len();
            write_header(out, MessageType::Update);
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(attrs_bytes.len() as u16).to_be_bytes());
            out.extend_from_slice(&attrs_bytes);
            rest[..n].iter().for_each(|p| p.encode(add_path, out));
            finish_header(out, start);
            rest = &rest[n..];
            count += 1;
        }
        return Ok(count);
    }
    // MP_REACH_NLRI: flags, type, 2-octet length, AFI, SAFI, NH len, NH, reserved.
    let mut mp_head = Vec::with_capacity(40);
    mp_head.extend_from_slice(&family.afi.0.to_be_bytes());
    mp_head.push(family.safi.0);
    let probe = PathAttribute::new(AttrValue::MpReach(MpReach {
        family,
        next_hop,
        reserved: 0,
        nlri: Vec::new(),
    }));
    let mut probe_bytes = Vec::new();
    probe.encode(ctx, &mut probe_bytes)?;
    // Skip the probe's own 3-octet header (short form) and AFI/SAFI.
    mp_head.extend_from_slice(&probe_bytes[6..]);
    let fixed = HEADER_LEN + 4 + 4 + mp_head.len() + attrs_bytes.len();
    while !rest.is_empty() {
        let n = fit(
            rest,
            add_path,
            max.saturating_sub(fixed).min(u16::MAX as usize - mp_head.len()),
        )?;
        let start = out.len();
        write_header(out, MessageType::Update);
        out.extend_from_slice(&[0, 0, 0, 0]);
        let mp_start = out.len();
        out.extend_from_slice(&[
            flags::OPTIONAL_NON_TRANSITIVE | flags::EXTENDED_LENGTH,
            type_code::MP_REACH_NLRI,
            0,
            0,
        ]);
        out.extend_from_slice(&mp_head);
        rest[..n].iter().for_each(|p| p.encode(add_path, out));
        let mp_len = out.len() - mp_start - 4;
        out[mp_start + 2..mp_start + 4].copy_from_slice(&(mp_len as u16).to_be_bytes());
        out.extend_from_slice(&attrs_bytes);
        let alen = out.len() - mp_start;
        out[start + HEADER_LEN + 2..start + HEADER_LEN + 4].copy_from_slice(&(alen as u16).to_be_bytes());
        finish_header(out, start);
        rest = &rest[n..];
        count += 1;
    }
    Ok(count)
}

/// Packs withdrawals into UPDATE messages: the Withdrawn Routes field for
/// IPv4 unicast, MP_UNREACH_NLRI otherwise. Returns the number of messages.
pub fn pack_withdrawals(ctx: &Context, family: Family, nlri: &[Nlri], out: &mut Vec<u8>) -> Result<usize, EncodeError> {
    let add_path = ctx.has_add_path(family);
    let max = ctx.max_message_len;
    let mut rest = nlri;
    let mut count = 0;
    let v4 = family == Family::IPV4_UNICAST;
    let fixed = HEADER_LEN + 4 + if v4 { 0 } else { 7 };
    while !rest.is_empty() {
        let n = fit(rest, add_path, max.saturating_sub(fixed))?;
        let start = out.len();
        write_header(out, MessageType::Update);
        if v4 {
            out.extend_from_slice(&[0, 0]);
            rest[..n].iter().for_each(|p| p.encode(add_path, out));
            let wlen = out.len() - start - HEADER_LEN - 2;
            out[start + HEADER_LEN..start + HEADER_LEN + 2].copy_from_slice(&(wlen as u16).to_be_bytes());
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(&[0, 0, 0, 0]);
            let mp_start = out.len();
            out.extend_from_slice(&[
                flags::OPTIONAL_NON_TRANSITIVE | flags::EXTENDED_LENGTH,
                type_code::MP_UNREACH_NLRI,
                0,
                0,
            ]);
            out.extend_from_slice(&family.afi.0.to_be_bytes());
            out.push(family.safi.0);
            rest[..n].iter().for_each(|p| p.encode(add_path, out));
            let mp_len = out.len() - mp_start - 4;
            out[mp_start + 2..mp_start + 4].copy_from_slice(&(mp_len as u16).to_be_bytes());
            let alen = out.len() - mp_start;
            out[start + HEADER_LEN + 2..start + HEADER_LEN + 4].copy_from_slice(&(alen as u16).to_be_bytes());
        }
        finish_header(out, start);
        rest = &rest[n..];
        count += 1;
    }
    Ok(count)
}

fn write_next_hop(ctx: &Context, next_hop: MpNextHop, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let MpNextHop::V4(addr) = next_hop else {
        return Err(EncodeError::NextHopFamily);
    };
    PathAttribute::new(AttrValue::NextHop(addr)).encode(ctx, out)
}

/// How many of `nlri` fit in `room` octets; at least one must.
fn fit(nlri: &[Nlri], add_path: bool, room: usize) -> Result<usize, EncodeError> {
    let mut used = 0;
    let mut n = 0;
    for p in nlri {
        let len = p.wire_len(add_path);
        if used + len > room {
            break;
        }
        used += len;
        n += 1;
    }
    if n == 0 {
        return Err(EncodeError::AttributesTooLarge);
    }
    Ok(n)
}
