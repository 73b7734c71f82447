#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| bgp_proto::fuzzing::message_of_type(data));
