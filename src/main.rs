//! The `rbuild` command line.

fn main() {
    println!("rbuild");
}
