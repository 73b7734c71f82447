//! Issue 14: a table passing through ternd (one eBGP peer to another) leaves
//! in about as many UPDATEs as it came in: prefixes that share an attribute
//! set are packed together, also when they arrive over TCP in a stream.

use bgp_proto::attributes::{AsPath, AttrValue, Community, Origin, PathAttribute};
use tern_testkit::inproc::*;

const ALL: &str = "import = [\"all\"]\nexport = [\"all\"]\n";

#[test]
fn a_streamed_table_leaves_in_about_one_update_per_attribute_set() {
    let node = Node::start(&format!(
        "{}{ALL}{}{ALL}[[policy]]\nname = \"all\"\ndefault = \"accept\"\n",
        ebgp_peer("src", "127.0.0.2", 65001),
        ebgp_peer("sink", "127.0.0.3", 65002)
    ));
    let mut sink = node.connect("127.0.0.3", 65002).expect("sink");
    read_until(&mut sink, "the sink's initial table", |s| s.end_of_rib);
    let mut src = node.connect("127.0.0.2", 65001).expect("src");
    let (sets, per_set) = (200u32, 100u32);
    for s in 0..sets {
        let prefixes: Vec<_> = (0..per_set)
            .map(|i| {
                let n = s * per_set + i;
                net(&format!("10.{}.{}.0/24", n / 256, n % 256))
            })
            .collect();
        let attrs = [
            PathAttribute::new(AttrValue::Origin(Origin::Igp)),
            PathAttribute::new(AttrValue::AsPath(AsPath::sequence(vec![65001]))),
            // A community (transitive, passed on) makes each set distinct.
            PathAttribute::new(AttrValue::Communities(vec![Community(65001 << 16 | s)])),
        ];
        src.announce_with(&prefixes, "192.168.1.12".parse().unwrap(), &attrs)
            .expect("announce");
    }
    let total = (sets * per_set) as usize;
    let seen = read_until(&mut sink, "the whole table", |s| s.announced.len() >= total);
    let updates = seen.updates.iter().filter(|u| u.as_end_of_rib().is_none()).count();
    println!("{sets} attribute sets of {per_set} prefixes in: {updates} UPDATEs out");
    // One per set, plus one per 1,024-prefix slice of the sink's queue that
    // cuts a set in two. (Before prefix-id ordering: 1,193.)
    let bound = sets as usize + total / 1024 + 1;
    assert!(
        updates <= bound,
        "{updates} UPDATEs for {sets} attribute sets (at most {bound})"
    );
}
