//! Any byte string fed to the package reader must give Ok or Err, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use melange2_apk::PackageReader;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = PackageReader::new(data, "fuzz.apk") {
        let _ = r.checksum();
        let _ = r.read_data(|_, content| {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::Read::take(content, 1 << 20), &mut sink);
            Ok(())
        });
    }
    let _ = melange2_apk::pkginfo::PkgInfo::parse(&String::from_utf8_lossy(data));
});
