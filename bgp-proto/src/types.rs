//! Address families and the negotiated context that drives decode and encode.

use std::fmt;

/// Address Family Identifier (IANA), kept as a number so unknown ones survive.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Afi(pub u16);

impl Afi {
    pub const IPV4: Afi = Afi(1);
    pub const IPV6: Afi = Afi(2);
}

/// Subsequent Address Family Identifier (IANA).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Safi(pub u8);

impl Safi {
    pub const UNICAST: Safi = Safi(1);
    pub const MULTICAST: Safi = Safi(2);
}

/// An AFI/SAFI pair.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Family {
    pub afi: Afi,
    pub safi: Safi,
}

impl Family {
    pub const IPV4_UNICAST: Family = Family::new(Afi::IPV4, Safi::UNICAST);
    pub const IPV6_UNICAST: Family = Family::new(Afi::IPV6, Safi::UNICAST);

    pub const fn new(afi: Afi, safi: Safi) -> Family {
        Family { afi, safi }
    }

    /// Maximum prefix length of this family's addresses, if the family carries plain prefixes.
    pub fn max_prefix_len(&self) -> Option<u8> {
        match (self.afi, self.safi) {
            (Afi::IPV4, Safi::UNICAST | Safi::MULTICAST) => Some(32),
            (Afi::IPV6, Safi::UNICAST | Safi::MULTICAST) => Some(128),
            _ => None,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let afi = match self.afi {
            Afi::IPV4 => "ipv4".to_string(),
            Afi::IPV6 => "ipv6".to_string(),
            Afi(n) => format!("afi{n}"),
        };
        let safi = match self.safi {
            Safi::UNICAST => "unicast".to_string(),
            Safi::MULTICAST => "multicast".to_string(),
            Safi(n) => format!("safi{n}"),
        };
        write!(f, "{afi}-{safi}")
    }
}

/// A small set of families (sessions negotiate a handful at most).
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct FamilySet(Vec<Family>);

impl FamilySet {
    pub fn new() -> FamilySet {
        FamilySet(Vec::new())
    }

    pub fn insert(&mut self, family: Family) {
        if !self.0.contains(&family) {
            self.0.push(family);
        }
    }

    pub fn contains(&self, family: Family) -> bool {
        self.0.contains(&family)
    }

    pub fn iter(&self) -> impl Iterator<Item = Family> + '_ {
        self.0.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Family> for FamilySet {
    fn from_iter<T: IntoIterator<Item = Family>>(iter: T) -> Self {
        let mut set = FamilySet::new();
        for f in iter {
            set.insert(f);
        }
        set
    }
}

/// What was negotiated for one direction of a session; it drives decoding
/// (receive direction) or encoding (send direction) of UPDATEs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// Both sides announced the 4-octet AS capability (RFC 6793): AS numbers
    /// in AS_PATH and AGGREGATOR are 4 octets.
    pub four_octet_as: bool,
    /// Largest message allowed: 4096, or 65535 with RFC 8654 extended messages.
    pub max_message_len: usize,
    /// Families whose NLRI carry a 4-octet path identifier (RFC 7911) in this direction.
    pub add_path: FamilySet,
    /// The peer is in another AS: malformed LOCAL_PREF, ORIGINATOR_ID and
    /// CLUSTER_LIST are then discarded, not withdrawn (RFC 7606 §7.5, §7.9, §7.10).
    pub external: bool,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            four_octet_as: true,
            max_message_len: crate::framing::MAX_MESSAGE_LEN,
            add_path: FamilySet::new(),
            external: false,
        }
    }
}

impl Context {
    /// Context before any capability is known: 2-octet AS, 4096-byte messages.
    pub fn legacy() -> Context {
        Context {
            four_octet_as: false,
            ..Context::default()
        }
    }

    pub fn has_add_path(&self, family: Family) -> bool {
        self.add_path.contains(family)
    }
}
