//! ternd: the tern BGP daemon.
fn main() {
    eprintln!("ternd: not yet implemented");
    std::process::exit(2);
}
