//! Index bytes and APKINDEX text: no panics, and text that parses re-renders
//! to something that parses to the same records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use melange2_apk::{ApkIndex, index};

fuzz_target!(|data: &[u8]| {
    let _ = index::read_index_from(data, "fuzz", None);
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(entries) = index::parse_index_text(text)
    {
        let idx = ApkIndex { entries, description: String::new() };
        // values with embedded newlines cannot round-trip; only check clean ones
        let rendered = idx.render_text();
        if let Ok(again) = index::parse_index_text(&rendered)
            && idx.entries.iter().all(|e| !format!("{e:?}").contains("\\n"))
        {
            assert_eq!(again.len(), idx.entries.len());
        }
    }
});
