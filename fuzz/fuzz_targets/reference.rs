//! Parses arbitrary text (lossily decoded as UTF-8) as an image reference
//! with `Reference::parse`. Checks that parsing never panics, and that a
//! reference that parses prints in both its short (`familiar()`) and fully
//! qualified (`canonical()`) forms as text that parses back to the very
//! same reference.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rbuild_oci::reference::Reference;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(reference) = Reference::parse(&text) else {
        return;
    };
    for printed in [reference.familiar(), reference.canonical()] {
        match Reference::parse(&printed) {
            Ok(again) => assert_eq!(again, reference, "{text:?} printed as {printed:?} parses differently"),
            Err(e) => panic!("{text:?} printed as {printed:?} does not parse: {e}"),
        }
    }
});
