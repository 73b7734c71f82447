#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| bfd::fuzzing::control(data));
