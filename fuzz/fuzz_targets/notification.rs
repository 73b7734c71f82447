#![no_main]
use bgp_proto::MessageType;
libfuzzer_sys::fuzz_target!(|data: &[u8]| bgp_proto::fuzzing::body(MessageType::Notification, data));
