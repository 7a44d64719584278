//! Feeds arbitrary text (invalid UTF-8 replaced lossily) to the Dockerfile
//! parser, and whatever parses on to BuildKit's dump format and to lowering
//! with a resolver that knows every image (default metadata). Checks that
//! none of the three panics, overflows the stack or hangs, whatever the
//! input: a bad Dockerfile must come back as an error, never a crash.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use rbuild_frontend::graph::ImageMeta;
use rbuild_frontend::lower::{BaseResolver, LowerOptions, ResolveError, lower};
use rbuild_frontend::parser::parse;

/// Pretends every base image exists and carries no metadata.
struct AnyImage;

impl BaseResolver for AnyImage {
    fn resolve(&mut self, _reference: &str) -> Result<ImageMeta, ResolveError> {
        Ok(ImageMeta::default())
    }
}

static OPTIONS: LazyLock<LowerOptions> = LazyLock::new(LowerOptions::default);

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(ast) = parse(&text) else {
        return;
    };
    let _ = ast.dump();
    let _ = lower(&ast, &OPTIONS, &mut AnyImage);
});
