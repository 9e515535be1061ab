//! The ESC/POS bytes of representative receipts: decoded back into commands and printed
//! lines by a small decoder written here (independent of the encoder), checked against
//! the printer's width in columns and dots and against the text form line for line, and
//! snapshotted through one `check()` helper.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod support;

use expect_test::{Expect, expect};
use kasir_crdt::money::Qty;
use kasir_crdt::store::StoreProfile;
use kasir_crdt::tax::TaxRule;
use kasir_devices::encode::{EncodeError, PrinterProfile, encode};
use kasir_devices::receipt::{ReceiptOptions, layout, render_text};
use qrcode::{Color, EcLevel, QrCode};
use support::*;

/// What the decoder saw.
#[derive(Default)]
struct Decoded {
    /// One line per command or printed text line.
    dump: String,
    /// The printed text lines, as the paper shows them (sizes ignored).
    lines: Vec<String>,
    /// QR payloads printed natively.
    native_qr: Vec<String>,
    /// Raster images: rows of bits.
    rasters: Vec<Vec<Vec<bool>>>,
}

/// Printer state the decoder tracks to measure lines.
struct State {
    font_b: bool,
    width_factor: usize,
    line: String,
    qr_size: usize,
    qr_level: EcLevel,
    qr_data: Option<String>,
}

fn fnv(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// Decodes the ESC/POS subset Kasir emits; panics on anything else (a stray byte means
/// text leaked into commands or the reverse). Asserts every printed line and image fits
/// `printer`.
fn decode(bytes: &[u8], printer: &PrinterProfile) -> Decoded {
    let mut d = Decoded::default();
    let mut s = State {
        font_b: false,
        width_factor: 1,
        line: String::new(),
        qr_size: 3,
        qr_level: EcLevel::L,
        qr_data: None,
    };
    let out = |d: &mut Decoded, text: String| {
        d.dump.push_str(&text);
        d.dump.push('\n');
    };
    let mut i = 0;
    let mut raster_end = None;
    let arg = |i: usize, n: usize| -> u8 {
        *bytes
            .get(i + n)
            .unwrap_or_else(|| panic!("command at {i} cut short"))
    };
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            0x20..=0x7E => {
                s.line.push(b as char);
                i += 1;
            }
            b'\n' => {
                let cols = s.line.chars().count() * s.width_factor;
                let cell = if s.font_b { 9 } else { 12 };
                assert!(
                    cols <= printer.columns && cols * cell <= printer.dots,
                    "line {:?} takes {cols} columns ({} dots), printer has {} ({} dots)",
                    s.line,
                    cols * cell,
                    printer.columns,
                    printer.dots
                );
                out(&mut d, format!("{:?}", s.line));
                d.lines.push(std::mem::take(&mut s.line));
                i += 1;
            }
            0x1B => {
                let cmd = arg(i, 1);
                match cmd {
                    b'@' => {
                        out(&mut d, "ESC @".into());
                        s.font_b = false;
                        s.width_factor = 1;
                        i += 2;
                    }
                    b't' | b'R' | b'E' | b'a' | b'd' | b'M' => {
                        let n = arg(i, 2);
                        if cmd == b'M' {
                            s.font_b = n == 1;
                        }
                        out(&mut d, format!("ESC {} {n}", cmd as char));
                        i += 3;
                    }
                    b'p' => {
                        out(
                            &mut d,
                            format!("ESC p {} {} {}", arg(i, 2), arg(i, 3), arg(i, 4)),
                        );
                        i += 5;
                    }
                    other => panic!("unexpected ESC {other:#04x} at {i}"),
                }
                assert!(s.line.is_empty(), "command in the middle of a line at {i}");
            }
            0x1D => {
                let cmd = arg(i, 1);
                match cmd {
                    b'!' => {
                        let n = arg(i, 2);
                        s.width_factor = usize::from(n >> 4) + 1;
                        out(&mut d, format!("GS ! {n:#04x}"));
                        i += 3;
                    }
                    b'V' => {
                        let m = arg(i, 2);
                        if m == b'A' || m == b'B' {
                            out(&mut d, format!("GS V {} {}", m as char, arg(i, 3)));
                            i += 4;
                        } else {
                            out(&mut d, format!("GS V {m}"));
                            i += 3;
                        }
                    }
                    b'(' => {
                        assert_eq!(arg(i, 2), b'k', "only GS ( k is expected");
                        let len = usize::from(arg(i, 3)) + 256 * usize::from(arg(i, 4));
                        let body = &bytes[i + 5..i + 5 + len];
                        match (body[0], body[1]) {
                            (49, 65) => out(&mut d, format!("QR model {}", body[2] - 48)),
                            (49, 67) => {
                                s.qr_size = usize::from(body[2]);
                                out(&mut d, format!("QR module {} dots", body[2]));
                            }
                            (49, 69) => {
                                s.qr_level = match body[2] {
                                    48 => EcLevel::L,
                                    49 => EcLevel::M,
                                    50 => EcLevel::Q,
                                    _ => EcLevel::H,
                                };
                                out(&mut d, format!("QR level {:?}", s.qr_level));
                            }
                            (49, 80) => {
                                let data = String::from_utf8(body[3..].to_vec()).unwrap();
                                out(&mut d, format!("QR store {} bytes", data.len()));
                                s.qr_data = Some(data);
                            }
                            (49, 81) => {
                                let data = s.qr_data.take().expect("QR printed before stored");
                                let modules =
                                    QrCode::with_error_correction_level(&data, s.qr_level)
                                        .unwrap()
                                        .width();
                                assert!(
                                    modules * s.qr_size <= printer.dots,
                                    "QR of {modules} modules x {} dots is wider than {}",
                                    s.qr_size,
                                    printer.dots
                                );
                                out(&mut d, format!("QR print ({modules} modules)"));
                                d.native_qr.push(data);
                            }
                            other => panic!("unexpected GS ( k function {other:?}"),
                        }
                        i += 5 + len;
                    }
                    b'v' => {
                        assert_eq!(arg(i, 2), b'0');
                        let x = usize::from(arg(i, 4)) + 256 * usize::from(arg(i, 5));
                        let y = usize::from(arg(i, 6)) + 256 * usize::from(arg(i, 7));
                        assert!(x * 8 <= printer.dots, "raster {} dots wide", x * 8);
                        let data = &bytes[i + 8..i + 8 + x * y];
                        out(
                            &mut d,
                            format!("GS v 0 raster {}x{} dots, fnv {:08x}", x * 8, y, fnv(data)),
                        );
                        let rows = data.chunks(x).map(|row| {
                            (0..x * 8)
                                .map(|b| row[b / 8] & (0x80 >> (b % 8)) != 0)
                                .collect()
                        });
                        // Bands of one image follow each other directly.
                        if raster_end != Some(i) {
                            d.rasters.push(Vec::new());
                        }
                        raster_end = Some(i + 8 + x * y);
                        d.rasters.last_mut().unwrap().extend(rows);
                        i += 8 + x * y;
                    }
                    other => panic!("unexpected GS {other:#04x} at {i}"),
                }
                assert!(s.line.is_empty(), "command in the middle of a line at {i}");
            }
            other => panic!("unexpected byte {other:#04x} at {i}"),
        }
    }
    assert!(
        s.line.is_empty(),
        "text after the last line feed: {:?}",
        s.line
    );
    d
}

/// The modules of a raster QR image, sampled at module centres inside the dark
/// bounding box (the finder patterns make its corners dark).
fn sample_modules(image: &[Vec<bool>], modules: usize) -> Vec<Color> {
    let dark_rows: Vec<usize> = (0..image.len())
        .filter(|y| image[*y].iter().any(|p| *p))
        .collect();
    let top = dark_rows[0];
    let bottom = *dark_rows.last().unwrap();
    let left = image
        .iter()
        .filter_map(|r| r.iter().position(|p| *p))
        .min()
        .unwrap();
    let right = image
        .iter()
        .filter_map(|r| r.iter().rposition(|p| *p))
        .max()
        .unwrap();
    let size = right + 1 - left;
    assert_eq!(size, bottom + 1 - top, "a QR image is square");
    assert_eq!(size % modules, 0, "whole dots per module");
    let scale = size / modules;
    let mut colors = Vec::with_capacity(modules * modules);
    for my in 0..modules {
        for mx in 0..modules {
            let dark = image[top + my * scale + scale / 2][left + mx * scale + scale / 2];
            colors.push(if dark { Color::Dark } else { Color::Light });
        }
    }
    colors
}

/// Lays out, encodes, decodes; checks widths, that the paper shows exactly the text form
/// (up to alignment padding), that QR codes carry `opts.qr`; compares the decoded
/// commands with the snapshot.
fn check(
    store: &StoreProfile,
    sale: &kasir_crdt::records::Sale,
    opts: &ReceiptOptions,
    printer: &PrinterProfile,
    expect: Expect,
) {
    let receipt = layout(store, sale, opts).unwrap();
    let bytes = encode(&receipt, printer).unwrap();
    assert_eq!(&bytes[..2], b"\x1b@", "starts by initialising the printer");
    let decoded = decode(&bytes, printer);

    let text = render_text(store, sale, opts).unwrap();
    let printed: Vec<&str> = decoded
        .lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    let wanted: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(printed, wanted, "the paper shows the text form");

    let qrs = decoded.native_qr.len() + decoded.rasters.len();
    assert_eq!(
        qrs,
        usize::from(opts.qr.is_some()),
        "one QR per receipt with a payload"
    );
    if let Some(payload) = &opts.qr {
        let code = QrCode::with_error_correction_level(payload, EcLevel::M).unwrap();
        if printer.native_qr {
            assert_eq!(decoded.native_qr, std::slice::from_ref(payload));
        } else {
            assert_eq!(
                sample_modules(&decoded.rasters[0], code.width()),
                code.to_colors(),
                "the raster image is the payload's QR code"
            );
        }
    }
    expect.assert_eq(&decoded.dump);
}

fn opts(width: usize) -> ReceiptOptions {
    ReceiptOptions {
        width,
        ..ReceiptOptions::default()
    }
}

#[test]
fn escpos_58mm_no_tax_with_native_qris() {
    let o = ReceiptOptions {
        qr: Some(QRIS.into()),
        open_drawer: true,
        ..opts(32)
    };
    check(
        &warung(),
        &small_sale(),
        &o,
        &PrinterProfile::mm58(),
        expect![[r#"
            ESC @
            ESC t 0
            ESC E 1
            GS ! 0x11
            " WARUNG BU SRI"
            ESC E 0
            GS ! 0x00
            "   Jl. Kaliurang Km 5 No. 12,"
            "       Sleman, Yogyakarta"
            "      Telp. 0812-2233-4455"
            "--------------------------------"
            "No: T1-250612-0042"
            "12/06/2025 14:05 WIB    Ksr: Ani"
            "Till: T1"
            "--------------------------------"
            "Indomie Goreng"
            "  3 x 3.500               10.500"
            "Aqua 600ml"
            "  2 x 4.000                8.000"
            "  Diskon                  -1.000"
            "--------------------------------"
            ESC E 1
            GS ! 0x01
            "TOTAL                     17.500"
            ESC E 0
            GS ! 0x00
            "TUNAI                     20.000"
            "KEMBALI                    2.500"
            "--------------------------------"
            "          Terima kasih"
            ""
            ESC a 1
            QR model 2
            QR module 7 dots
            QR level M
            QR store 197 bytes
            QR print (45 modules)
            ESC a 0
            ""
            ESC d 4
        "#]],
    );
}

#[test]
fn escpos_80mm_ppn_inclusive_raster_qr_drawer_and_cut() {
    let printer = PrinterProfile {
        native_qr: false,
        ..PrinterProfile::mm80()
    };
    let s = sale(
        vec![
            item("Indomie Goreng Ayam", Qty::units(3), 3_500, 0),
            item("Aqua 600ml", Qty::units(2), 4_000, 1_000),
        ],
        TaxRule::ppn_12_dpp_11_12(true),
        vec![pay("cash", 20_000)],
    );
    let o = ReceiptOptions {
        qr: Some("https://struk.kasir.id/T1-250612-0042".into()),
        open_drawer: true,
        ..opts(48)
    };
    check(
        &minimarket(),
        &s,
        &o,
        &printer,
        expect![[r#"
            ESC @
            ESC t 0
            ESC p 0 25 250
            ESC E 1
            GS ! 0x11
            "    TOKO MAKMUR JAYA"
            ESC E 0
            GS ! 0x00
            "          Jl. Merdeka No. 10, Bandung"
            "             NPWP 0123456789012345"
            "------------------------------------------------"
            "No: T1-250612-0042"
            "12/06/2025 14:05 WIB                    Ksr: Ani"
            "Till: T1"
            "------------------------------------------------"
            "Indomie Goreng Ayam"
            "  3 x 3.500                               10.500"
            "Aqua 600ml"
            "  2 x 4.000                                8.000"
            "  Diskon                                  -1.000"
            "------------------------------------------------"
            ESC E 1
            GS ! 0x01
            "TOTAL                                     17.500"
            ESC E 0
            GS ! 0x00
            "TUNAI                                     20.000"
            "KEMBALI                                    2.500"
            "------------------------------------------------"
            "DPP                                       15.766"
            "DPP Nilai Lain 11/12                      14.452"
            "PPN 12%                                    1.734"
            "Harga sudah termasuk PPN"
            "------------------------------------------------"
            "                  Terima kasih"
            ""
            GS v 0 raster 408x128 dots, fnv 624f7ced
            GS v 0 raster 408x104 dots, fnv fad1319d
            ""
            ESC d 4
            GS V A 1
        "#]],
    );
}

#[test]
fn escpos_58mm_font_b_long_names_pbjt_service_reprint() {
    let mut rule = TaxRule::pbjt(1000, false);
    rule.service_bp = 500;
    let mut store = StoreProfile::named("Kedai Kopi Senja Sejahtera Abadi Makmur");
    store.address = Some("Ruko Galaxy Blok B-7\nJl. Raya Darmo Permai, Surabaya".into());
    store.npwp = Some("0987654321098765".into());
    store.tax_rule = rule;
    let s = sale(
        vec![
            item(
                "Es Kopi Susu Gula Aren Ekstra Shot Oat Milk Less Ice",
                Qty::units(2),
                28_000,
                0,
            ),
            item(
                "Croissant Almond Crème Brûlée",
                Qty::units(1),
                32_000,
                2_000,
            ),
        ],
        rule,
        vec![pay("qris", 100_000)],
    );
    let o = ReceiptOptions {
        status: Some("dibatalkan".into()),
        reprint: true,
        ..opts(42)
    };
    check(
        &store,
        &s,
        &o,
        &PrinterProfile::mm58_font_b(),
        expect![[r#"
            ESC @
            ESC t 0
            ESC M 1
            ESC E 1
            GS ! 0x11
            "  KEDAI KOPI SENJA"
            "   SEJAHTERA ABADI"
            "       MAKMUR"
            ESC E 0
            GS ! 0x00
            "           Ruko Galaxy Blok B-7"
            "     Jl. Raya Darmo Permai, Surabaya"
            "          NPWP 0987654321098765"
            "------------------------------------------"
            "No: T1-250612-0042"
            "12/06/2025 14:05 WIB              Ksr: Ani"
            "Till: T1"
            "------------------------------------------"
            "Es Kopi Susu Gula Aren Ekstra Shot Oat"
            "Milk Less Ice"
            "  2 x 28.000                        56.000"
            "Croissant Almond Creme Brulee"
            "  1 x 32.000                        32.000"
            "  Diskon                            -2.000"
            "------------------------------------------"
            "Subtotal                            86.000"
            "Service 5%                           4.300"
            "PBJT 10%                             9.030"
            ESC E 1
            GS ! 0x01
            "TOTAL                               99.330"
            ESC E 0
            GS ! 0x00
            "QRIS                               100.000"
            "KEMBALI                                670"
            "------------------------------------------"
            "DPP                                 90.300"
            "PBJT 10%                             9.030"
            "------------------------------------------"
            ESC E 1
            "            *** DIBATALKAN ***"
            ESC E 0
            "                 SALINAN"
            "               Terima kasih"
            ESC d 4
        "#]],
    );
}

#[test]
fn escpos_80mm_many_lines_native_qr_42_columns_on_512_dots() {
    let s = sale(
        many_lines(12),
        TaxRule::ppn_11(false),
        vec![pay("card", 2_000_000)],
    );
    let o = ReceiptOptions {
        qr: Some("https://struk.kasir.id/T1-250612-0042".into()),
        ..opts(42)
    };
    check(
        &warung(),
        &s,
        &o,
        &PrinterProfile::mm80_512(),
        expect![[r#"
            ESC @
            ESC t 0
            ESC E 1
            GS ! 0x11
            "    WARUNG BU SRI"
            ESC E 0
            GS ! 0x00
            "    Jl. Kaliurang Km 5 No. 12, Sleman,"
            "                Yogyakarta"
            "           Telp. 0812-2233-4455"
            "------------------------------------------"
            "No: T1-250612-0042"
            "12/06/2025 14:05 WIB              Ksr: Ani"
            "Till: T1"
            "------------------------------------------"
            "Beras Pandan Wangi 5kg"
            "  1 x 3.000                          3.000"
            "Minyak Goreng Bimoli Klasik 2 Liter"
            "  2 x 7.250                         14.500"
            "Gula Pasir Gulaku 1kg"
            "  3 x 11.500                        34.500"
            "Telur Ayam Negeri"
            "  1,25 x 15.750                     19.688"
            "Kecap Manis Bango Refill 550ml"
            "  1 x 20.000                        20.000"
            "Teh Celup Sariwangi isi 25"
            "  2 x 24.250                        48.500"
            "Sabun Mandi Lifebuoy 110g"
            "  3 x 28.500                        85.500"
            "Susu Kental Manis Frisian Flag"
            "  4 x 3.000                         12.000"
            "Beras Pandan Wangi 5kg"
            "  1,25 x 7.250                       9.063"
            "Minyak Goreng Bimoli Klasik 2 Liter"
            "  2 x 11.500                        23.000"
            "Gula Pasir Gulaku 1kg"
            "  3 x 15.750                        47.250"
            "Telur Ayam Negeri"
            "  4 x 20.000                        80.000"
            "------------------------------------------"
            "Subtotal                           397.001"
            "PPN 11%                             43.670"
            ESC E 1
            GS ! 0x01
            "TOTAL                              440.671"
            ESC E 0
            GS ! 0x00
            "KARTU                            2.000.000"
            "KEMBALI                          1.559.329"
            "------------------------------------------"
            "DPP                                397.001"
            "PPN 11%                             43.670"
            "------------------------------------------"
            "               Terima kasih"
            ""
            ESC a 1
            QR model 2
            QR module 8 dots
            QR level M
            QR store 37 bytes
            QR print (29 modules)
            ESC a 0
            ""
            ESC d 4
            GS V A 1
        "#]],
    );
}

#[test]
fn escpos_control_bytes_in_names_never_reach_the_printer() {
    let mut store = StoreProfile::named("Toko \x1b@\x1dV\x00 Jahat");
    store.receipt_footer = Some("\x10\x04\x01 terima kasih \x1bp\x00".into());
    let s = sale(
        vec![item(
            "Kopi \x1b!\x30\x1dVA\x00 Tubruk",
            Qty::units(1),
            5_000,
            0,
        )],
        TaxRule::none(),
        vec![pay("cash\x1b", 5_000)],
    );
    check(
        &store,
        &s,
        &opts(32),
        &PrinterProfile::mm58(),
        expect![[r#"
            ESC @
            ESC t 0
            ESC E 1
            GS ! 0x11
            " TOKO @ V JAHAT"
            ESC E 0
            GS ! 0x00
            "--------------------------------"
            "No: T1-250612-0042"
            "12/06/2025 14:05 WIB    Ksr: Ani"
            "Till: T1"
            "--------------------------------"
            "Kopi !0 VA Tubruk"
            "  1 x 5.000                5.000"
            "--------------------------------"
            ESC E 1
            GS ! 0x01
            "TOTAL                      5.000"
            ESC E 0
            GS ! 0x00
            "CASH                       5.000"
            "--------------------------------"
            "         terima kasih p"
            ESC d 4
        "#]],
    );
}

#[test]
fn escpos_many_lines_every_profile_fits_and_matches_text() {
    let s = sale(
        many_lines(60),
        TaxRule::ppn_11(true),
        vec![pay("cash", 5_000_000)],
    );
    for printer in ["58", "58b", "80", "80b", "80-512"] {
        let printer = PrinterProfile::by_name(printer).unwrap();
        for qr in [None, Some(QRIS.to_owned())] {
            let o = ReceiptOptions {
                qr,
                ..opts(printer.columns)
            };
            let receipt = layout(&minimarket(), &s, &o).unwrap();
            for native_qr in [true, false] {
                let p = PrinterProfile {
                    native_qr,
                    ..printer.clone()
                };
                let decoded = decode(&encode(&receipt, &p).unwrap(), &p);
                let text = render_text(&minimarket(), &s, &o).unwrap();
                assert_eq!(
                    decoded.lines.iter().filter(|l| !l.is_empty()).count(),
                    text.lines().count()
                );
            }
        }
    }
}

#[test]
fn escpos_receipt_wider_than_the_printer_is_refused() {
    let receipt = layout(&warung(), &small_sale(), &opts(48)).unwrap();
    let err = encode(&receipt, &PrinterProfile::mm58()).unwrap_err();
    assert!(matches!(
        err,
        EncodeError::TooWide {
            receipt: 48,
            printer: 32
        }
    ));
    assert_eq!(
        err.to_string(),
        "a 48-column receipt does not fit a 32-column printer"
    );
    let impossible = PrinterProfile {
        columns: 48,
        ..PrinterProfile::mm58()
    };
    let receipt = layout(&warung(), &small_sale(), &opts(32)).unwrap();
    assert!(matches!(
        encode(&receipt, &impossible),
        Err(EncodeError::BadProfile(_))
    ));
}

/// A dynamic QRIS slip: the amount large, the QR carrying exactly the acquirer's
/// payload (native on 58 mm, raster on a printer without native QR), the deadline in
/// the store's zone.
#[test]
fn escpos_qris_slip_carries_the_payload_and_the_deadline() {
    use kasir_devices::receipt::qris_slip;
    // 12/06/2025 14:10 WIB.
    let expires = 1_749_712_200_000;
    let slip = qris_slip(&warung(), 36_000, QRIS, expires, 32).unwrap();
    let bytes = encode(&slip, &PrinterProfile::mm58()).unwrap();
    let decoded = decode(&bytes, &PrinterProfile::mm58());
    assert_eq!(decoded.native_qr, vec![QRIS.to_owned()]);
    let lines: Vec<&str> = decoded.lines.iter().map(|l| l.trim()).collect();
    for wanted in ["WARUNG BU SRI", "Rp36.000", "Berlaku s.d. 14:10 WIB"] {
        assert!(lines.contains(&wanted), "{wanted:?} not in {lines:?}");
    }
    let mut raster_only = PrinterProfile::mm80();
    raster_only.native_qr = false;
    let slip = qris_slip(&warung(), 36_000, QRIS, expires, 48).unwrap();
    let decoded = decode(&encode(&slip, &raster_only).unwrap(), &raster_only);
    let code = QrCode::with_error_correction_level(QRIS, EcLevel::M).unwrap();
    assert_eq!(
        sample_modules(&decoded.rasters[0], code.width()),
        code.to_colors()
    );
}
