#![allow(missing_docs)]
//! `kasir product import` reads the files Indonesian shops actually have: CSV with commas
//! or semicolons, Bahasa headers (`kode;nama;harga;stok`), `Rp12.500` prices, a UTF-8 BOM,
//! and XLSX workbooks. It prints `{"imported","failed":[{"row","error"}]}` with one error per
//! bad row (row numbers as a spreadsheet shows them) while the good rows go in, sets stock
//! from the `stok` column, imports 5,000 rows in full, and refuses a file without
//! sku/name/price columns without importing anything.

use std::path::{Path, PathBuf};
use std::process::Command;

use kasir_testkit::Till;
use kasir_testkit::process::kasir_bin;
use serde_json::{Value, json};

fn write(till: &Till, name: &str, bytes: &[u8]) -> PathBuf {
    let path = till.path().join(name);
    std::fs::write(&path, bytes).expect("write import file");
    path
}

fn import(till: &Till, file: &Path) -> Value {
    till.ok(&["product", "import", file.to_str().expect("utf-8 path")])
}

fn product(till: &Till, sku: &str) -> Value {
    let found = till.ok(&["product", "search", sku, "--limit", "1"]);
    let p = found["products"][0].clone();
    assert_eq!(p["sku"], sku, "search {sku}: {found}");
    p
}

fn on_hand(till: &Till, sku: &str) -> f64 {
    till.ok(&["stock", "--sku", sku])["stock"][0]["on_hand"]
        .as_f64()
        .expect("on_hand")
}

fn product_count(till: &Till) -> u64 {
    till.ok(&["status"])["products"]
        .as_u64()
        .expect("products count")
}

#[test]
fn comma_csv_with_english_headers() {
    let till = Till::init();
    let csv = "sku,name,price,barcode,cost,stock,unit\n\
               INDOMIE,Indomie Goreng,3500,8998866200301,2800,120,pcs\n\
               TELUR,Telur Ayam,\"2.000\",,,30,butir\n\
               GULA,\"Gula Pasir, 1 kg\",\"Rp 17.500\",,,,\n\
               MINYAK,Minyak Goreng 2L,\"38.900,00\",8991002101630 8991002101647,,12,\n";
    let file = write(&till, "products.csv", csv.as_bytes());
    let report = import(&till, &file);
    assert_eq!(report, json!({"imported": 4, "failed": []}));

    let p = product(&till, "INDOMIE");
    assert_eq!(p["name"], "Indomie Goreng");
    assert_eq!(p["price"], 3500);
    assert_eq!(p["barcodes"], json!(["8998866200301"]));
    assert_eq!(product(&till, "TELUR")["price"], 2000);
    assert_eq!(product(&till, "GULA")["name"], "Gula Pasir, 1 kg");
    assert_eq!(product(&till, "GULA")["price"], 17_500);
    let minyak = product(&till, "MINYAK");
    assert_eq!(minyak["price"], 38_900);
    assert_eq!(
        minyak["barcodes"],
        json!(["8991002101630", "8991002101647"])
    );
    // Found by its second barcode, and sellable by it.
    let sale = till.ok(&["sell", "--item", "8991002101647x2"]);
    assert_eq!(sale["total"], 77_800);

    assert_eq!(
        till.ok(&["stock"]),
        json!({"stock": [
            {"sku": "GULA", "on_hand": 0.0, "oversold": false},
            {"sku": "INDOMIE", "on_hand": 120.0, "oversold": false},
            {"sku": "MINYAK", "on_hand": 10.0, "oversold": false},
            {"sku": "TELUR", "on_hand": 30.0, "oversold": false},
        ]})
    );
}

#[test]
fn semicolon_csv_in_bahasa_with_bom_and_rupiah_prices() {
    let till = Till::init();
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(
        "kode;nama;harga;stok\r\n\
         KOPI;Kopi Kapal Api 65g;Rp12.500;24\r\n\
         BERAS;Beras Pandan Wangi (kg);Rp14.000;50,5\r\n\
         TEH;Teh Botol Sosro;;10\r\n\
         ROTI;Roti Tawar;12,5;5\r\n\
         SABUN;Sabun Lifebuoy;Rp4.250;\r\n\
         ;Tanpa Kode;1000;1\r\n\
         SUSU;;9000;1\r\n\
         ES;Es Batu;Rp1.000;banyak\r\n"
            .as_bytes(),
    );
    let file = write(&till, "produk.csv", &bytes);
    let report = import(&till, &file);
    assert_eq!(report["imported"], 3, "{report}");
    let failed = report["failed"].as_array().expect("failed array");
    let rows: Vec<u64> = failed
        .iter()
        .map(|f| f["row"].as_u64().expect("row number"))
        .collect();
    assert_eq!(rows, [4, 5, 7, 8, 9], "{report}");
    let error = |row: u64| -> String {
        failed.iter().find(|f| f["row"] == row).expect("row")["error"]
            .as_str()
            .expect("error text")
            .to_owned()
    };
    assert!(error(4).contains("missing price"), "{report}");
    assert!(error(5).contains("12,5"), "{report}");
    assert!(error(7).contains("missing sku"), "{report}");
    assert!(error(8).contains("missing name"), "{report}");
    assert!(error(9).contains("banyak"), "{report}");

    // The BOM did not end up in the first header, so `kode` was recognised.
    let kopi = product(&till, "KOPI");
    assert_eq!(kopi["name"], "Kopi Kapal Api 65g");
    assert_eq!(kopi["price"], 12_500);
    assert_eq!(product(&till, "SABUN")["price"], 4_250);
    assert_eq!(on_hand(&till, "KOPI"), 24.0);
    assert_eq!(on_hand(&till, "BERAS"), 50.5, "a decimal comma in stok");
    assert_eq!(on_hand(&till, "SABUN"), 0.0);
    assert_eq!(product_count(&till), 3, "failed rows wrote nothing");
    let line = till.fails(&["sell", "--item", "TEH"]);
    assert!(line.contains("unknown SKU"), "{line}");

    // Importing again updates in place: stock is set to `stok`, not added.
    till.ok(&["sell", "--item", "KOPIx4"]);
    assert_eq!(on_hand(&till, "KOPI"), 20.0);
    let again = import(&till, &file);
    assert_eq!(again["imported"], 3);
    assert_eq!(on_hand(&till, "KOPI"), 24.0);
    assert_eq!(product_count(&till), 3);
}

#[test]
fn row_numbers_count_blank_lines_as_rows() {
    let till = Till::init();
    let csv = "sku,name,price\nA,Apel,1000\n\nB,Bayam,x\n,,\nC,Cabai,\n";
    let file = write(&till, "gaps.csv", csv.as_bytes());
    let report = import(&till, &file);
    assert_eq!(report["imported"], 1, "{report}");
    let rows: Vec<u64> = report["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .map(|f| f["row"].as_u64().expect("row"))
        .collect();
    assert_eq!(rows, [4, 6], "rows as a spreadsheet numbers them: {report}");
}

#[test]
fn xlsx_workbook_with_numeric_and_text_cells() {
    let till = Till::init();
    let path = till.path().join("produk.xlsx");
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in [
        "Kode Barang",
        "Nama Barang",
        "Harga Jual",
        "Stok",
        "Barcode",
        "Satuan",
    ]
    .iter()
    .enumerate()
    {
        ws.write_string(0, c as u16, *h).expect("header");
    }
    // Row 2: numbers as Excel stores them, including a 13-digit barcode.
    ws.write_string(1, 0, "INDOMIE").expect("cell");
    ws.write_string(1, 1, "Indomie Goreng").expect("cell");
    ws.write_number(1, 2, 3500).expect("cell");
    ws.write_number(1, 3, 48).expect("cell");
    ws.write_number(1, 4, 8_998_866_200_301_f64).expect("cell");
    // Row 3: price typed as text the Indonesian way, weighed stock.
    ws.write_string(2, 0, "BERAS").expect("cell");
    ws.write_string(2, 1, "Beras Rojolele").expect("cell");
    ws.write_string(2, 2, "Rp 13.750").expect("cell");
    ws.write_number(2, 3, 25.5).expect("cell");
    ws.write_string(2, 5, "kg").expect("cell");
    // Row 4: no price.
    ws.write_string(3, 0, "TEH").expect("cell");
    ws.write_string(3, 1, "Teh Pucuk").expect("cell");
    // Row 5: blank. Row 6: a price with sen.
    ws.write_string(5, 0, "ROTI").expect("cell");
    ws.write_string(5, 1, "Roti Sobek").expect("cell");
    ws.write_number(5, 2, 12.5).expect("cell");
    // Row 7: fine again.
    ws.write_number(6, 0, 1001).expect("cell");
    ws.write_string(6, 1, "Gula Aren").expect("cell");
    ws.write_number(6, 2, 22_000).expect("cell");
    wb.save(&path).expect("save xlsx");

    let report = import(&till, &path);
    assert_eq!(report["imported"], 3, "{report}");
    let failed = report["failed"].as_array().expect("failed");
    assert_eq!(failed.len(), 2, "{report}");
    assert_eq!(failed[0]["row"], 4);
    assert!(
        failed[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("missing price")),
        "{report}"
    );
    assert_eq!(failed[1]["row"], 6);
    assert!(
        failed[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("12,5")),
        "{report}"
    );

    let indomie = product(&till, "INDOMIE");
    assert_eq!(indomie["price"], 3500);
    assert_eq!(
        indomie["barcodes"],
        json!(["8998866200301"]),
        "a numeric barcode keeps every digit"
    );
    assert_eq!(product(&till, "BERAS")["price"], 13_750);
    assert_eq!(product(&till, "1001")["name"], "Gula Aren");
    assert_eq!(on_hand(&till, "INDOMIE"), 48.0);
    assert_eq!(on_hand(&till, "BERAS"), 25.5);
    let sale = till.ok(&["sell", "--item", "8998866200301x2", "--item", "BERASx0.5"]);
    assert_eq!(sale["total"], 7000 + 6875);
    assert_eq!(on_hand(&till, "INDOMIE"), 46.0);
}

#[test]
fn five_thousand_rows_import_in_full() {
    let till = Till::init();
    let mut csv = String::from("kode;nama;harga;stok;barcode\n");
    for i in 0..5_000 {
        csv.push_str(&format!(
            "SKU{i:05};Produk Grosir Nomor {i} Ukuran Sedang;Rp{}.{:03};{};899{i:010}\n",
            1 + i / 1000,
            (i * 7) % 1000,
            i % 50
        ));
    }
    let file = write(&till, "besar.csv", csv.as_bytes());
    let report = import(&till, &file);
    assert_eq!(report, json!({"imported": 5000, "failed": []}));
    assert_eq!(product_count(&till), 5000);
    let stock = till.ok(&["stock"]);
    let rows = stock["stock"].as_array().expect("stock");
    assert_eq!(rows.len(), 5000);
    let total: f64 = rows
        .iter()
        .map(|r| r["on_hand"].as_f64().expect("on_hand"))
        .sum();
    assert_eq!(total, (0..5000).map(|i| f64::from(i % 50)).sum::<f64>());
    let last = product(&till, "SKU04999");
    assert_eq!(last["name"], "Produk Grosir Nomor 4999 Ukuran Sedang");
    assert_eq!(last["price"], 5_000 + (4999 * 7) % 1000);
    assert_eq!(last["barcodes"], json!(["8990000004999"]));
    assert_eq!(on_hand(&till, "SKU04999"), 49.0);
    let found = till.ok(&["product", "search", "grosir 2718"]);
    assert_eq!(found["products"][0]["sku"], "SKU02718", "{found}");
}

#[test]
fn files_without_the_needed_columns_import_nothing() {
    let till = Till::init();
    let stock_before = till.ok(&["stock"]);
    for (name, body) in [
        ("no-price.csv", "sku,name,stok\nA,Apel,3\n"),
        ("no-header.csv", "A,Apel,1000\nB,Bayam,2000\n"),
        ("other.csv", "id;judul;nilai\n1;x;2\n"),
    ] {
        let file = write(&till, name, body.as_bytes());
        let line = till.fails(&["product", "import", file.to_str().expect("utf-8 path")]);
        assert!(line.contains("sku, name and price"), "{name}: {line}");
    }
    let empty = write(&till, "empty.csv", b"");
    assert!(
        till.fails(&["product", "import", empty.to_str().expect("path")])
            .contains("empty")
    );
    let not_xlsx = write(&till, "rusak.xlsx", b"PK\x03\x04 this is no workbook");
    let line = till.fails(&["product", "import", not_xlsx.to_str().expect("path")]);
    assert!(line.contains("not a readable spreadsheet"), "{line}");
    let line = till.fails(&[
        "product",
        "import",
        till.path().join("missing.csv").to_str().expect("path"),
    ]);
    assert!(line.contains("missing.csv"), "{line}");
    // An XLSX whose header lacks a price column is refused the same way.
    let path = till.path().join("tanpa-harga.xlsx");
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "kode").expect("cell");
    ws.write_string(0, 1, "nama").expect("cell");
    ws.write_string(1, 0, "A").expect("cell");
    ws.write_string(1, 1, "Apel").expect("cell");
    wb.save(&path).expect("save");
    let line = till.fails(&["product", "import", path.to_str().expect("path")]);
    assert!(line.contains("sku, name and price"), "{line}");

    assert_eq!(product_count(&till), 0);
    assert_eq!(till.ok(&["product", "search", ""]), json!({"products": []}));
    assert_eq!(till.ok(&["stock"]), stock_before);
}

#[test]
fn human_report_lists_failed_rows() {
    let till = Till::init();
    let file = write(
        &till,
        "campur.csv",
        b"sku,name,price\nA,Apel,1000\nB,Bayam,\n",
    );
    let out = Command::new(kasir_bin())
        .arg("--data")
        .arg(till.path())
        .args(["product", "import"])
        .arg(&file)
        .env("KASIR_LOG", "warn")
        .output()
        .expect("run kasir");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 produk diimpor, 1 gagal"), "{text}");
    assert!(text.contains("baris 3: missing price"), "{text}");
}
