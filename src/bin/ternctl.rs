//! ternctl: inspect a running ternd and decode BGP messages.
fn main() {
    eprintln!("ternctl: not yet implemented");
    std::process::exit(2);
}
