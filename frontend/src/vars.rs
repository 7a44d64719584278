//! The variables a stage accumulates while it is lowered (global ARGs, the
//! build environment of ENV and ARG): insertion-ordered, with an index by
//! name so that thousands of ARG and ENV lines stay linear to lower.

use std::collections::HashMap;

use crate::shell::Env;

/// An ordered list of variables; setting a name again replaces its value in
/// place (BuildKit's `AddEnv`), so each name appears once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Vars {
    entries: Vec<(String, String)>,
    position: HashMap<String, usize>,
}

impl Vars {
    pub(crate) fn set(&mut self, key: &str, value: &str) {
        match self.position.get(key) {
            Some(&i) => self.entries[i].1 = value.to_string(),
            None => {
                self.position.insert(key.to_string(), self.entries.len());
                self.entries.push((key.to_string(), value.to_string()));
            }
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &(String, String)> {
        self.entries.iter()
    }
}

/// Later pairs win, as if each were set in turn.
impl From<Vec<(String, String)>> for Vars {
    fn from(pairs: Vec<(String, String)>) -> Vars {
        let mut vars = Vars::default();
        for (k, v) in &pairs {
            vars.set(k, v);
        }
        vars
    }
}

impl Env for Vars {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.position.get(name).map(|&i| self.entries[i].1.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_set_again_keeps_its_place_and_takes_the_new_value() {
        let mut vars =
            Vars::from(vec![("A".into(), "1".into()), ("B".into(), "2".into()), ("A".into(), "3".into())]);
        vars.set("C", "4");
        vars.set("B", "5");
        let pairs: Vec<_> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(pairs, ["A=3", "B=5", "C=4"]);
        assert_eq!(vars.lookup("B"), Some("5"));
        assert_eq!(vars.lookup("D"), None);
    }
}
