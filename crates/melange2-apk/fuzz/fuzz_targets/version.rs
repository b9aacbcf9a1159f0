//! Version comparison is a consistent total order on arbitrary strings.
#![no_main]

use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;
use melange2_apk::version::{compare, fuzzy_match, is_valid, is_valid_strict};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let (a, b) = s.split_once('\n').unwrap_or((&s, "1.0"));
    assert_eq!(compare(a, a), Ordering::Equal);
    assert_eq!(compare(a, b), compare(b, a).reverse());
    if is_valid_strict(a) {
        assert!(is_valid(a));
    }
    if compare(a, b) == Ordering::Equal {
        assert!(fuzzy_match(a, b));
    }
});
