//! RFC 4271 §8 session finite state machine (being written).
