//! The variables an expansion can see, behind one small trait so callers can
//! pass whatever collection they already hold.

use std::collections::{BTreeMap, HashMap};

/// Variables visible to expansion.
///
/// Names are compared exactly (case-sensitive), as BuildKit does on Unix.
/// A variable that is present with an empty value is *set*: `${v-x}` keeps
/// it empty while `${v:-x}` replaces it.
pub trait Env {
    /// The value of `name`, or `None` when it is not set.
    fn lookup(&self, name: &str) -> Option<&str>;
}

/// Later entries win, like repeated `ENV`/`ARG` assignments.
impl Env for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// Later entries win, like repeated `ENV`/`ARG` assignments.
impl Env for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

impl Env for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Env for HashMap<String, String, S> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// Lets a borrowed collection, including a bare slice (`&pairs.as_slice()`),
/// be passed where `&dyn Env` is expected.
impl<T: Env + ?Sized> Env for &T {
    fn lookup(&self, name: &str) -> Option<&str> {
        (**self).lookup(name)
    }
}
