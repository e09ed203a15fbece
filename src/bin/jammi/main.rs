//! The `jammi` command (SPEC §8). For now it only reports its version.

fn main() {
    println!("jammi {}", env!("CARGO_PKG_VERSION"));
}
