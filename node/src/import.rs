//! Product import from CSV and XLSX: header aliases in English and Bahasa Indonesia,
//! rupiah written the Indonesian way (`Rp12.500`), and per-row errors that never stop
//! the rows that are fine.

use std::path::Path;

use calamine::{Data, Reader, open_workbook_auto_from_rs};
use kasir_crdt::Qty;
use serde::Serialize;

use crate::api::ProductInput;
use crate::error::NodeError;
use crate::node::Node;

/// One row that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// Spreadsheet row number (the header is row 1).
    pub row: usize,
    /// Why.
    pub error: String,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Rows written.
    pub imported: usize,
    /// Rows refused.
    pub failed: Vec<RowError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Sku,
    Name,
    Price,
    Barcode,
    Cost,
    Category,
    Unit,
    Stock,
    Tax,
}

impl Column {
    /// The column's name in an error, as the template spells it.
    fn name(self) -> &'static str {
        match self {
            Column::Sku => "sku",
            Column::Name => "nama",
            Column::Price => "harga",
            Column::Barcode => "barcode",
            Column::Cost => "modal",
            Column::Category => "kategori",
            Column::Unit => "satuan",
            Column::Stock => "stok",
            Column::Tax => "pajak",
        }
    }
}

fn column_of(header: &str) -> Option<Column> {
    let h = header.trim().to_lowercase().replace([' ', '-'], "_");
    Some(match h.as_str() {
        "sku" | "kode" | "kode_barang" | "kode_produk" | "plu" => Column::Sku,
        "name" | "nama" | "nama_barang" | "nama_produk" | "product" | "produk" => Column::Name,
        "price" | "harga" | "harga_jual" => Column::Price,
        "barcode" | "barcodes" | "ean" => Column::Barcode,
        "cost" | "modal" | "harga_beli" | "harga_pokok" => Column::Cost,
        "category" | "kategori" => Column::Category,
        "unit" | "satuan" => Column::Unit,
        "stock" | "stok" | "qty" | "jumlah" => Column::Stock,
        "tax" | "tax_code" | "pajak" | "kode_pajak" => Column::Tax,
        _ => return None,
    })
}

/// Reads rupiah by the one rule of [`kasir_crdt::money`] (`12.500`, `Rp 12.500`,
/// `25,000`, `12.500,00`; never sen).
pub fn parse_rupiah(s: &str) -> Result<i64, String> {
    kasir_crdt::money::parse_rupiah(s).map_err(|e| e.to_string())
}

fn cell_text(d: &Data) -> String {
    match d {
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string().replace('.', ","),
        Data::String(s) => s.clone(),
        Data::Bool(b) => b.to_string(),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::DateTime(d) => d.to_string(),
        Data::Error(e) => format!("#{e:?}"),
        Data::Empty => String::new(),
    }
}

fn build_input(columns: &[Option<Column>], cells: &[String]) -> Result<ProductInput, String> {
    let mut input = ProductInput::default();
    let mut has_price = false;
    for (col, value) in columns.iter().zip(cells) {
        let value = value.trim();
        let Some(col) = col else { continue };
        if value.is_empty() {
            continue;
        }
        let cell = |e: String| format!("column {}: {e}", col.name());
        match col {
            Column::Sku => input.sku = value.to_owned(),
            Column::Name => input.name = value.to_owned(),
            Column::Price => {
                input.price = parse_rupiah(value).map_err(cell)?;
                has_price = true;
            }
            Column::Barcode => {
                input.barcodes = value
                    .split([';', '|', ' '])
                    .filter(|b| !b.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            Column::Cost => input.cost = Some(parse_rupiah(value).map_err(cell)?),
            Column::Category => input.category = Some(value.to_owned()),
            Column::Unit => input.unit = Some(value.to_owned()),
            Column::Stock => {
                input.stock = Some(value.parse::<Qty>().map_err(|e| cell(e.to_string()))?);
            }
            Column::Tax => {
                let code: kasir_crdt::tax::TaxCode = value.parse().map_err(cell)?;
                input.tax_code = Some(code.as_str().to_owned());
            }
        }
    }
    if input.sku.is_empty() {
        return Err("missing sku".into());
    }
    if input.name.is_empty() {
        return Err("missing name".into());
    }
    if !has_price {
        return Err("missing price".into());
    }
    Node::validate_product_input(&input).map_err(|e| e.to_string())?;
    Ok(input)
}

/// Parsed rows: (row number, input or error).
pub type ParsedRows = Vec<(usize, Result<ProductInput, String>)>;

fn from_table(
    header: Vec<String>,
    rows: impl Iterator<Item = (usize, Vec<String>)>,
) -> Result<ParsedRows, NodeError> {
    let columns: Vec<Option<Column>> = header.iter().map(|h| column_of(h)).collect();
    for needed in [Column::Sku, Column::Name, Column::Price] {
        if !columns.contains(&Some(needed)) {
            return Err(NodeError::Invalid(format!(
                "the header row must name sku, name and price columns (found: {})",
                header.join(", ")
            )));
        }
    }
    Ok(rows
        .filter(|(_, cells)| cells.iter().any(|c| !c.trim().is_empty()))
        .map(|(n, cells)| (n, build_input(&columns, &cells)))
        .collect())
}

/// Reads a CSV (comma or semicolon separated, as Indonesian Excel exports it) or an
/// XLSX/XLS/ODS file (first sheet).
pub fn read_file(path: &Path) -> Result<ParsedRows, NodeError> {
    let bytes =
        std::fs::read(path).map_err(NodeError::io(format!("reading {}", path.display())))?;
    read_bytes(&path.display().to_string(), &bytes)
}

/// [`read_file`] of a file's bytes (an upload): `name`'s extension says which kind.
pub fn read_bytes(name: &str, bytes: &[u8]) -> Result<ParsedRows, NodeError> {
    let ext = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_lowercase();
    match ext.as_str() {
        "xlsx" | "xlsm" | "xls" | "ods" => read_sheet(name, bytes),
        _ => read_csv(name, bytes),
    }
}

fn read_csv(name: &str, bytes: &[u8]) -> Result<ParsedRows, NodeError> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_start_matches('\u{feff}');
    let first_line = text.lines().next().unwrap_or("");
    let delimiter = if first_line.matches(';').count() > first_line.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header: Vec<String> = match records.next() {
        Some(Ok(h)) => h.iter().map(str::to_owned).collect(),
        Some(Err(e)) => return Err(NodeError::Invalid(format!("{name}: {e}"))),
        None => return Err(NodeError::Invalid(format!("{name} is empty"))),
    };
    // Row numbers are the file's line numbers, as a spreadsheet shows them: the csv
    // reader skips blank lines, so counting records would misnumber every row after one.
    // A record's position may point at the line break before it, so skip those first.
    let bytes = text.as_bytes();
    let newlines: Vec<usize> = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i)
        .collect();
    let line_of = |pos: Option<&csv::Position>, i: usize| match pos {
        Some(p) => {
            let mut start = usize::try_from(p.byte())
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
                start += 1;
            }
            newlines.partition_point(|&nl| nl < start) + 1
        }
        None => i + 2,
    };
    let rows: Vec<(usize, Vec<String>)> = records
        .enumerate()
        .map(|(i, r)| match r {
            Ok(r) => (
                line_of(r.position(), i),
                r.iter().map(str::to_owned).collect(),
            ),
            // A broken record becomes a row with no sku, reported as an error for that row.
            Err(e) => (line_of(e.position(), i), vec!["\u{0}".into()]),
        })
        .collect();
    from_table(header, rows.into_iter())
}

fn read_sheet(name: &str, bytes: &[u8]) -> Result<ParsedRows, NodeError> {
    let mut wb = open_workbook_auto_from_rs(std::io::Cursor::new(bytes))
        .map_err(|e| NodeError::Invalid(format!("{name} is not a readable spreadsheet: {e}")))?;
    let range = wb
        .worksheet_range_at(0)
        .ok_or_else(|| NodeError::Invalid(format!("{name} has no sheets")))?
        .map_err(|e| NodeError::Invalid(format!("{name}: {e}")))?;
    let first_row = range.start().map(|(r, _)| r as usize).unwrap_or(0);
    let mut rows = range.rows().enumerate();
    let header: Vec<String> = match rows.next() {
        Some((_, cells)) => cells.iter().map(cell_text).collect(),
        None => return Err(NodeError::Invalid(format!("{name} is empty"))),
    };
    let data: Vec<(usize, Vec<String>)> = rows
        .map(|(i, cells)| (first_row + i + 1, cells.iter().map(cell_text).collect()))
        .collect();
    from_table(header, data.into_iter())
}

/// Imports parsed rows in batches, calling `progress(done, total)` after each batch.
pub fn import(
    node: &mut Node,
    rows: ParsedRows,
    mut progress: impl FnMut(usize, usize),
) -> Result<ImportReport, NodeError> {
    let total = rows.len();
    let mut failed = Vec::new();
    let mut good = Vec::new();
    for (row, parsed) in rows {
        match parsed {
            Ok(input) => good.push((row, input)),
            Err(error) => failed.push(RowError {
                row,
                error: error.replace('\u{0}', "malformed CSV record"),
            }),
        }
    }
    let mut imported = 0;
    let mut done = failed.len();
    for batch in good.chunks(2_000) {
        let inputs: Vec<ProductInput> = batch.iter().map(|(_, i)| i.clone()).collect();
        node.add_products(&inputs)?;
        imported += inputs.len();
        done += inputs.len();
        progress(done, total);
    }
    failed.sort_by_key(|f| f.row);
    Ok(ImportReport { imported, failed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rupiah_as_shops_write_it() {
        assert_eq!(parse_rupiah("12500"), Ok(12_500));
        assert_eq!(parse_rupiah("12.500"), Ok(12_500));
        assert_eq!(parse_rupiah("Rp 1.250.000"), Ok(1_250_000));
        assert_eq!(parse_rupiah("12.500,00"), Ok(12_500));
        assert!(parse_rupiah("12.500,50").is_err());
        assert_eq!(
            parse_rupiah("25,000"),
            Ok(25_000),
            "an en-US export's thousands"
        );
        assert!(parse_rupiah("-5").is_err());
        assert!(parse_rupiah("abc").is_err());
    }

    #[test]
    fn headers_in_bahasa() {
        assert_eq!(column_of("Nama Barang"), Some(Column::Name));
        assert_eq!(column_of("HARGA"), Some(Column::Price));
        assert_eq!(column_of("stok"), Some(Column::Stock));
        assert_eq!(column_of("whatever"), None);
    }
}
