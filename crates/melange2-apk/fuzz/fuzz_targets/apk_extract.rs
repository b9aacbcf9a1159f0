//! Extraction of arbitrary packages never writes outside the target directory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use melange2_apk::PackageReader;

fuzz_target!(|data: &[u8]| {
    let Ok(base) = tempfile::tempdir() else { return };
    let target = base.path().join("root");
    if let Ok(r) = PackageReader::new(data, "fuzz.apk") {
        let _ = r.extract_to(&target);
    }
    for entry in std::fs::read_dir(base.path()).into_iter().flatten().flatten() {
        assert_eq!(entry.file_name(), "root", "wrote outside the target directory");
    }
});
