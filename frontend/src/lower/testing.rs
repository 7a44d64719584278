//! Test support for every lowering module: instructions from Dockerfile
//! text and a fixed platform. It uses no lowering module but `platform`,
//! so the tests of any module above that may use it.

use super::platform::Platform;
use crate::instructions::{self, Instruction};
use crate::parser;

/// Every instruction of `src`, which must parse and type-check.
pub(super) fn instructions(src: &str) -> Vec<Instruction> {
    let ast = parser::parse(src).unwrap_or_else(|e| panic!("{src:?}: {}", e.message));
    ast.nodes.iter().map(|n| instructions::from_node(n).unwrap_or_else(|e| panic!("{src:?}: {e}"))).collect()
}

/// The one instruction of `src`.
pub(super) fn instruction(src: &str) -> Instruction {
    let mut all = instructions(src);
    assert_eq!(all.len(), 1, "{src:?} is not one instruction");
    all.remove(0)
}

/// A fixed platform, so tests do not depend on the machine.
pub(super) fn linux_amd64() -> Platform {
    Platform::parse("linux/amd64").expect("a known platform")
}
