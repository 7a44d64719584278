//! Cache keys: a step's key is the sha256 of a versioned, canonical,
//! length-prefixed encoding of the op's output-relevant fields, its parent's
//! key and the digests of everything it reads. See docs/dev/cache-keys.md.

use rbuild_cache::index::KeyInput;
use rbuild_oci::digest::{Digest, Hasher};

/// Bump when the encoding changes: old entries are then simply missed.
pub const KEY_VERSION: &str = "rbuild-step-key/1";

/// Builds one key and remembers its named inputs (for miss explanations).
pub struct KeyBuilder {
    hasher: Hasher,
    inputs: Vec<KeyInput>,
}

impl KeyBuilder {
    pub fn new(op: &str) -> KeyBuilder {
        let mut k = KeyBuilder { hasher: Hasher::new(), inputs: Vec::new() };
        k.raw(KEY_VERSION);
        k.raw(op);
        k
    }

    fn raw(&mut self, s: &str) {
        // Length-prefixed, so ("ab","c") and ("a","bc") never collide.
        self.hasher.update(&(s.len() as u64).to_le_bytes());
        self.hasher.update(s.as_bytes());
    }

    /// A field of the op itself (argv, dest, flags…).
    pub fn field(&mut self, name: &str, value: &str) -> &mut Self {
        self.raw(name);
        self.raw(value);
        self.record("field", name, value.to_string());
        self
    }

    /// A list field.
    pub fn list(&mut self, name: &str, values: &[String]) -> &mut Self {
        self.raw(name);
        self.hasher.update(&(values.len() as u64).to_le_bytes());
        for v in values {
            self.raw(v);
        }
        self.record("list", name, serde_json::to_string(values).unwrap_or_default());
        self
    }

    fn record(&mut self, kind: &str, name: &str, value: String) {
        self.inputs.push(KeyInput { kind: kind.to_string(), name: name.to_string(), value });
    }

    /// Something the step reads, recorded for explaining misses.
    pub fn input(&mut self, kind: &str, name: &str, value: &str) -> &mut Self {
        self.raw(kind);
        self.raw(name);
        self.raw(value);
        self.inputs.push(KeyInput {
            kind: kind.to_string(),
            name: name.to_string(),
            value: value.to_string(),
        });
        self
    }

    pub fn parent(&mut self, parent: &Digest) -> &mut Self {
        self.input("parent", "", &parent.to_string())
    }

    pub fn finish(self) -> (Digest, Vec<KeyInput>) {
        (self.hasher.finish(), self.inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_sensitive_to_every_part() {
        let make = |a: &str, b: &str| {
            let mut k = KeyBuilder::new("run");
            k.field("argv", a).field("env", b);
            k.finish().0
        };
        assert_eq!(make("x", "y"), make("x", "y"));
        assert_ne!(make("x", "y"), make("xy", ""));
        assert_ne!(make("x", "y"), make("x", "z"));
        let mut with_parent = KeyBuilder::new("run");
        with_parent.parent(&Digest::of(b"p"));
        let (_, inputs) = with_parent.finish();
        assert_eq!(inputs[0].kind, "parent");
    }
}
