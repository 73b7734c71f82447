//! What a route is: its attributes as the RIB keeps them, and the policy
//! language (import/export chains) that inspects and changes them.

mod attrs;
pub mod policy;

pub use attrs::RouteAttrs;

use bgp_proto::attributes::Community;

/// RFC 9494 §4.4: marks a route kept past its peer's restart time.
pub const LLGR_STALE: Community = Community(0xFFFF_0006);
/// RFC 9494 §4.5: the route must not be kept in long-lived stale state.
pub const NO_LLGR: Community = Community(0xFFFF_0007);
