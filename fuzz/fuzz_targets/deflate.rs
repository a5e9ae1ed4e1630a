#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringgate_fuzz::deflate(data));
