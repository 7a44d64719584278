//! BuildKit's `Node.Dump()` text for the tree, used to compare this parser
//! with BuildKit's test corpus byte for byte: one `(keyword ["flags"]
//! "arg" …)` line per instruction, strings quoted as Go quotes them.

use super::ast::{Ast, Node};
use super::go_quote::push_go_quoted;
use super::shapes::Keyword;

impl Ast {
    /// The tree in BuildKit's dump format, without a trailing newline.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for (index, node) in self.nodes.iter().enumerate() {
            if index > 0 {
                out.push('\n');
            }
            out.push('(');
            out.push_str(&node.dump());
            out.push(')');
        }
        out
    }
}

impl Node {
    /// One instruction in BuildKit's dump format, without the surrounding
    /// parentheses: `copy ["--from=a"] "x" "y"`.
    pub fn dump(&self) -> String {
        let mut out = self.keyword.clone();
        if !self.flags.is_empty() {
            out.push_str(" [");
            for (index, flag) in self.flags.iter().enumerate() {
                if index > 0 {
                    out.push(' ');
                }
                push_go_quoted(&mut out, flag);
            }
            out.push(']');
        }
        match Keyword::from_lowercase(&self.keyword) {
            Some(Keyword::Onbuild) => {
                if let Some(trigger) = &self.next {
                    out.push_str(" (");
                    out.push_str(&trigger.dump());
                    out.push(')');
                }
            }
            // BuildKit drops the arguments of unknown instructions but still
            // prints one empty argument for them.
            None => out.push_str(" \"\""),
            Some(_) => {
                for arg in &self.args {
                    out.push(' ');
                    push_go_quoted(&mut out, arg);
                }
            }
        }
        // Go trims the dump of each node; only an odd keyword can need it.
        let trimmed = out.trim();
        if trimmed.len() == out.len() { out } else { trimmed.to_string() }
    }
}
