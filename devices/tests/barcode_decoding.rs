//! Barcodes: GTIN check digits, in-store weighed and priced codes, and the wedge
//! scanner detector.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use kasir_crdt::money::Qty;
use kasir_devices::barcode::{
    BarcodeError, Symbology, WedgeConfig, WeighedAmount, WeighedLayout, WeighedValue, check_digit,
    decode_weighed, detect_scans, validate,
};

/// `body` with its check digit appended.
fn with_check(body: &str) -> String {
    let digits: Vec<u8> = body.bytes().map(|b| b - b'0').collect();
    format!("{body}{}", check_digit(&digits))
}

#[test]
fn barcode_check_digits_accept_valid_and_refuse_damaged_codes() {
    assert_eq!(validate("4006381333931"), Ok(Symbology::Ean13));
    assert_eq!(validate("8992761166052"), Ok(Symbology::Ean13));
    assert_eq!(validate(" 96385074 "), Ok(Symbology::Ean8));
    assert_eq!(validate("036000291452"), Ok(Symbology::UpcA));
    assert_eq!(
        validate("4006381333932"),
        Err(BarcodeError::CheckDigit {
            code: "4006381333932".into(),
            found: 2,
            expected: 1
        })
    );
    assert!(matches!(
        validate("96385075"),
        Err(BarcodeError::CheckDigit { .. })
    ));
    assert!(matches!(
        validate("036000291453"),
        Err(BarcodeError::CheckDigit { .. })
    ));
    for bad in ["", "123", "40063813339311", "40063813339A1", "INDOMIE"] {
        assert_eq!(
            validate(bad),
            Err(BarcodeError::NotGtin(bad.into())),
            "{bad}"
        );
    }
    // Every single-digit error is caught.
    let good = "8992761166052";
    for pos in 0..13 {
        for d in b'0'..=b'9' {
            let mut b = good.as_bytes().to_vec();
            if b[pos] == d {
                continue;
            }
            b[pos] = d;
            let code = String::from_utf8(b).unwrap();
            assert!(validate(&code).is_err(), "{code}");
        }
    }
}

#[test]
fn barcode_weighed_codes_decode_to_plu_and_grams_or_price() {
    let grams = WeighedLayout::default();
    let code = with_check("210012301250");
    let w = decode_weighed(&code, &grams).unwrap().unwrap();
    assert_eq!(w.plu, "00123");
    assert_eq!(w.amount, WeighedAmount::Qty(Qty(1_250)), "1,25 kg");

    let priced = WeighedLayout::priced();
    let w = decode_weighed(&with_check("250004248500"), &priced)
        .unwrap()
        .unwrap();
    assert_eq!(
        (w.plu.as_str(), w.amount),
        ("00042", WeighedAmount::Price(48_500))
    );

    // A scale printing hundreds of rupiah after a price check digit: 2X PPPP K VVVVV C.
    let hundreds = WeighedLayout {
        prefixes: vec![20],
        plu_digits: 4,
        skip_digits: 1,
        value_digits: 5,
        value: WeighedValue::Price { multiplier: 100 },
    };
    let w = decode_weighed(&with_check("200777900385"), &hundreds)
        .unwrap()
        .unwrap();
    assert_eq!(
        (w.plu.as_str(), w.amount),
        ("0777", WeighedAmount::Price(38_500))
    );
    // Prefix 21 is not this store's.
    assert_eq!(
        decode_weighed(&with_check("210777900385"), &hundreds),
        Ok(None)
    );
}

#[test]
fn barcode_ordinary_and_damaged_codes_are_told_apart() {
    let layout = WeighedLayout::default();
    // Ordinary products: not in-store codes, looked up as barcodes.
    assert_eq!(decode_weighed("8992761166052", &layout), Ok(None));
    assert_eq!(decode_weighed("96385074", &layout), Ok(None));
    assert_eq!(decode_weighed("INDOMIE", &layout), Ok(None));
    // An in-store code with a bad check digit is an error, not a product.
    let mut bad = with_check("210012301250").into_bytes();
    bad[12] = if bad[12] == b'9' { b'0' } else { bad[12] + 1 };
    let bad = String::from_utf8(bad).unwrap();
    assert!(matches!(
        decode_weighed(&bad, &layout),
        Err(BarcodeError::CheckDigit { .. })
    ));
}

/// `code` typed every `gap` ms from `start`, then Enter after `gap`.
fn typed(code: &str, start: u64, gap: u64) -> Vec<(char, u64)> {
    let mut t = start;
    let mut events = Vec::new();
    for c in code.chars().chain(['\n']) {
        events.push((c, t));
        t += gap;
    }
    events
}

#[test]
fn wedge_scanner_bursts_are_scans_and_typing_is_not() {
    let cfg = WedgeConfig::default();
    let scan = typed("8992761166052", 1_000, 4);
    let found = detect_scans(&scan, cfg);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].code, "8992761166052");
    assert_eq!((found[0].first, found[0].enter), (0, 13));

    // A cashier typing a SKU and pressing Enter.
    assert!(detect_scans(&typed("INDOMIE", 0, 120), cfg).is_empty());
    // A fast but short burst (a hotkey) is not a scan.
    assert!(detect_scans(&typed("12", 0, 2), cfg).is_empty());
    // Enter pressed by hand long after a burst.
    let mut late = typed("8992761166052", 0, 3);
    late.last_mut().unwrap().1 += 500;
    assert!(detect_scans(&late, cfg).is_empty());

    // Typing, then a scan straight after: only the scanned part is the code.
    let mut mixed = typed("cari", 0, 150);
    mixed.pop(); // no Enter after the typing
    mixed.extend(typed("96385074", 2_000, 5));
    mixed.extend(typed("036000291452", 3_000, 2));
    let found = detect_scans(&mixed, cfg);
    let codes: Vec<&str> = found.iter().map(|s| s.code.as_str()).collect();
    assert_eq!(codes, ["96385074", "036000291452"]);
    assert_eq!(found[0].first, 4);

    // Stricter settings.
    let strict = WedgeConfig {
        min_len: 12,
        max_gap_ms: 3,
    };
    assert!(detect_scans(&typed("96385074", 0, 2), strict).is_empty());
    assert!(detect_scans(&typed("8992761166052", 0, 5), strict).is_empty());
    assert_eq!(detect_scans(&typed("8992761166052", 0, 3), strict).len(), 1);
}
