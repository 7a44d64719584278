//! Parses arbitrary bytes as JSON image metadata: as rbuild's own image
//! config (`ImageConfig::from_json`), and as an OCI image manifest and image
//! index through `oci-spec` (the types rbuild reads registries' and
//! archives' manifests with). Checks that nothing panics, and that a config
//! that parses survives a round trip: serialising it and parsing that gives
//! the same config, and serialising again gives the same bytes (the image ID
//! is the sha256 of those bytes, so they must be stable).

#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_spec::image::{ImageIndex, ImageManifest};
use rbuild_oci::config::ImageConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = ImageConfig::from_json(data) {
        let bytes = config.to_json();
        let again = ImageConfig::from_json(&bytes).expect("a serialised config parses");
        assert_eq!(again, config, "the config changed in a round trip through JSON");
        assert_eq!(again.to_json(), bytes, "serialising the same config twice gave different bytes");
    }
    if let Ok(manifest) = ImageManifest::from_reader(data) {
        let _ = manifest.to_string();
    }
    if let Ok(index) = ImageIndex::from_reader(data) {
        let _ = index.to_string();
    }
});
