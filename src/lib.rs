//! The tern daemon: peer sessions, RIB, kernel sync, control socket.
