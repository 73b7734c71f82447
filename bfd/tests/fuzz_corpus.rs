//! Stable-toolchain harness for the cargo-fuzz target `bfd_control`: runs
//! its entry point over the committed corpus (`fuzz/corpus/bfd_control/`)
//! and over deterministic pseudo-random, structured and mutated inputs, so
//! CI exercises it without nightly. Any panic fails the test.

use std::path::PathBuf;

use bfd::fuzzing::control;
use bfd::{encode, ControlPacket, Diagnostic, RandomSource, State, XorShift64};

fn corpus() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/bfd_control");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files.into_iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn bytes(rng: &mut XorShift64, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next_u32() as u8).collect()
}

#[test]
fn corpus_inputs_do_not_panic() {
    let corpus = corpus();
    assert!(corpus.len() >= 10, "the corpus is too small: {}", corpus.len());
    for data in &corpus {
        control(data);
    }
}

#[test]
fn random_bytes_do_not_panic() {
    let mut rng = XorShift64::new(0xbfd);
    for _ in 0..3000 {
        let len = (rng.next_u32() % 300) as usize;
        control(&bytes(&mut rng, len));
    }
}

/// Streams of well-formed packets with random fields reach deep into the
/// state machine, where random bytes rarely get.
#[test]
fn random_valid_packet_streams_do_not_panic() {
    let mut rng = XorShift64::new(5880);
    for _ in 0..1500 {
        let mut data = Vec::new();
        for _ in 0..(rng.next_u32() % 40) {
            let r = rng.next_u32();
            let packet = ControlPacket {
                diag: Diagnostic::from_code(r as u8),
                state: State::from_code((r >> 8) as u8),
                poll: r & (1 << 10) != 0,
                final_: r & (1 << 11) != 0,
                control_plane_independent: false,
                authentication: false,
                demand: r & (1 << 12) != 0,
                multipoint: false,
                detect_mult: 1 + (r >> 13) as u8 % 5,
                my_discriminator: 2,
                your_discriminator: (r >> 16) & 1,
                desired_min_tx: rng.next_u32() % 2_000_000,
                required_min_rx: rng.next_u32() % 2_000_000,
                required_min_echo_rx: 0,
            };
            // Mostly packets (top bits 0/1), sometimes timer changes or admin toggles.
            let kind = match rng.next_u32() % 16 {
                0 => 0x80,
                1 => 0xc0,
                n if n < 8 => 0x00,
                _ => 0x40,
            };
            data.push(kind | (rng.next_u32() % 64) as u8);
            data.extend_from_slice(&encode(&packet));
        }
        control(&data);
    }
}

/// Corpus entries with a few octets changed, cut or repeated.
#[test]
fn mutated_corpus_does_not_panic() {
    let corpus = corpus();
    let mut rng = XorShift64::new(5881);
    for _ in 0..3000 {
        let mut data = corpus[rng.next_u32() as usize % corpus.len()].clone();
        match rng.next_u32() % 4 {
            0 => {
                let cut = rng.next_u32() as usize % (data.len() + 1);
                data.truncate(cut);
            }
            1 => {
                let copy = data.clone();
                data.extend_from_slice(&copy);
            }
            _ => {}
        }
        if !data.is_empty() {
            for _ in 0..1 + rng.next_u32() % 8 {
                let at = rng.next_u32() as usize % data.len();
                data[at] = rng.next_u32() as u8;
            }
        }
        control(&data);
    }
}
