#!/usr/bin/env bash
# Builds the Debian package: release binaries (stripped: debug info stays in
# target/release for profiling), manual pages and shell
# completions generated from the CLI definitions, then `cargo deb`.
#   bash examples/build-deb.sh        -> prints the path of target/debian/tern_*.deb
# Needs cargo-deb (`cargo install cargo-deb`).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || { echo "cargo-deb is not installed: cargo install cargo-deb" >&2; exit 2; }
cargo build --release --bins >&2
out=target/packaging
rm -rf "$out" && mkdir -p "$out/man" "$out/completions"
target/release/ternd --man-page ternd | gzip -9n > "$out/man/ternd.8.gz"
target/release/ternd --man-page tern.toml | gzip -9n > "$out/man/tern.toml.5.gz"
target/release/ternctl man-page | gzip -9n > "$out/man/ternctl.8.gz"
target/release/ternctl completions bash > "$out/completions/ternctl"
target/release/ternctl completions zsh > "$out/completions/_ternctl"
target/release/ternctl completions fish > "$out/completions/ternctl.fish"
cargo deb --no-build --strip -p tern >&2
ls -t target/debian/tern_*.deb | head -1
