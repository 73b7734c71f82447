//! Stable-toolchain harness for the cargo-fuzz targets: runs every entry
//! point over the committed corpus (`fuzz/corpus/<target>/`) and over random
//! and mutated inputs, so CI exercises them without nightly.

use std::path::PathBuf;

use bgp_proto::{fuzzing, MessageType};
use proptest::prelude::*;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("framing", fuzzing::framing),
    ("message", fuzzing::message_of_type),
    ("round_trip", fuzzing::round_trip),
    ("open", |d| fuzzing::body(MessageType::Open, d)),
    ("update", |d| fuzzing::body(MessageType::Update, d)),
    ("notification", |d| fuzzing::body(MessageType::Notification, d)),
    ("route_refresh", |d| fuzzing::body(MessageType::RouteRefresh, d)),
];

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

#[test]
fn corpus_inputs_do_not_panic() {
    let mut total = 0;
    for (name, target) in TARGETS {
        let dir = corpus_dir(name);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                let data = std::fs::read(&path).unwrap();
                target(&data);
                total += 1;
            }
        }
    }
    assert!(total > 0, "the corpus is empty");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_do_not_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        for (_, target) in TARGETS {
            target(&data);
        }
    }

    /// Corpus entries with a few bytes flipped reach deeper than random bytes.
    #[test]
    fn mutated_corpus_does_not_panic(pick in any::<prop::sample::Index>(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut files = Vec::new();
        for (name, _) in TARGETS {
            if let Ok(rd) = std::fs::read_dir(corpus_dir(name)) {
                files.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()));
            }
        }
        prop_assume!(!files.is_empty());
        let mut data = std::fs::read(pick.get(&files)).unwrap();
        prop_assume!(!data.is_empty());
        for (at, byte) in &flips {
            let i = at.index(data.len());
            data[i] = *byte;
        }
        for (_, target) in TARGETS {
            target(&data);
        }
    }
}
