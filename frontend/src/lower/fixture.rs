//! Test support for the modules that lower instructions: a [`StageCtx`]
//! (options, global scope, stage names) and a [`StageState`] to lower them
//! in. Built on `state`, so only modules above it use it in their tests.

use std::collections::BTreeMap;

use super::options::LowerOptions;
use super::state::{StageCtx, StageState};
use super::testing::linux_amd64;
use crate::graph::ImageMeta;
use crate::shell::Lexer;
use crate::vars::Vars;

/// What a [`StageCtx`] borrows: options, the global scope, stage names.
pub(super) struct Fixture {
    pub(super) lexer: Lexer,
    pub(super) opts: LowerOptions,
    pub(super) globals: Vars,
    pub(super) names: BTreeMap<String, usize>,
    /// The index of the stage lowered: after the ones [`Fixture::stages`] lists.
    pub(super) index: usize,
}

impl Fixture {
    pub(super) fn new() -> Fixture {
        Fixture {
            lexer: Lexer::new('\\'),
            opts: LowerOptions {
                build_args: BTreeMap::new(),
                target: None,
                platform: linux_amd64(),
                build_platform: linux_amd64(),
                allow_insecure: false,
                allow_network_host: false,
                default_network: crate::graph::Network::Default,
                named_contexts: Default::default(),
            },
            globals: Vars::default(),
            names: BTreeMap::new(),
            index: 0,
        }
    }

    pub(super) fn build_args(mut self, args: &[(&str, &str)]) -> Fixture {
        self.opts.build_args = args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self
    }

    pub(super) fn globals(mut self, vars: &[(&str, &str)]) -> Fixture {
        self.globals =
            Vars::from(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>());
        self
    }

    /// Names the stages before the one lowered, in order (`""` for none).
    pub(super) fn stages(mut self, names: &[&str]) -> Fixture {
        self.index = names.len();
        for (i, n) in names.iter().enumerate().filter(|(_, n)| !n.is_empty()) {
            self.names.insert(n.to_string(), i);
        }
        self
    }

    /// The context of the stage lowered.
    pub(super) fn ctx(&self) -> StageCtx<'_> {
        StageCtx {
            lexer: &self.lexer,
            opts: &self.opts,
            globals: &self.globals,
            names: &self.names,
            index: self.index,
        }
    }
}

/// A stage starting from scratch with an empty build environment.
pub(super) fn empty_state() -> StageState {
    StageState::new(ImageMeta::default(), Vars::default(), Vec::new())
}
