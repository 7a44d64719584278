//! What the writer gives each node it creates: owner, mode and time, the
//! time possibly "now" (the time of the write, which no description of a
//! step can know in advance).

/// A modification time to give a node: a known one, or the time of the
/// write itself (which no description of the step can know in advance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    At((i64, i64)),
    Now,
}

/// Owner, mode (permission bits with setuid/setgid/sticky) and time of a
/// node the writer creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeMeta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Stamp,
}
