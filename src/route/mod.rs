//! What a route is: its attributes as the RIB keeps them, and the policy
//! language (import/export chains) that inspects and changes them.

mod attrs;
pub mod policy;

pub use attrs::RouteAttrs;
