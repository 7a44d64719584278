//! Integration tests: the real `rbuild` binary against real contexts.
