//! Layers on disk: applying a layer tar into an overlay-format snapshot
//! directory, writing an overlay upper directory out as a deterministic
//! layer tar, and reading a stack of snapshot directories as one tree.
