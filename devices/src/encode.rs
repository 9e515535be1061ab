//! ESC/POS: a laid-out [`Receipt`] as the bytes a thermal printer prints, printer
//! profiles, and the real-time status query (`DLE EOT`).
//!
//! This is the only module that knows ESC/POS command bytes. Commands come from the
//! `escpos` crate (driven into an in-memory driver) where it has them right; the few it
//! lacks or gets wrong for cheap printers are written here by hand: the cash drawer pulse
//! (the crate sends `ESC p m` without the two pulse times, so the printer would swallow
//! the next two bytes), the raster QR fallback (`GS v 0`) and `DLE EOT`.
//!
//! What a receipt becomes:
//! - `ESC @` (initialise), `ESC t 0` (code page PC437; the text is ASCII-folded by the
//!   layout, so any code page prints it), `ESC M 1` for font-B profiles;
//! - each [`Line`] as its ASCII text padded in cells of its size, ended by `LF`, with
//!   `ESC E` (bold) and `GS !` (size) switched only when they change;
//! - a QR code as native `GS ( k` (model 2, level M) centred with `ESC a 1`, or, for
//!   printers without native QR ([`PrinterProfile::native_qr`] false), as a centred
//!   `GS v 0` raster of the matrix drawn by the `qrcode` crate;
//! - the drawer pulse `ESC p 0 25 250` (only if the profile has a drawer port);
//! - the end: `ESC d n` to feed past the tear bar, then `GS V A` partial or full cut if
//!   the profile has a cutter.
//!
//! **Invariant:** every text byte sent is printable ASCII (`0x20..=0x7E`): a product
//! name can never inject a command, whatever it contains.

use std::cell::RefCell;
use std::rc::Rc;

use escpos::driver::Driver;
use escpos::printer::Printer;
use escpos::printer_options::PrinterOptions;
use escpos::utils::{Font, PageCode, Protocol, QRCodeCorrectionLevel, QRCodeModel, QRCodeOption};
use qrcode::{Color, EcLevel, QrCode};
use serde::{Deserialize, Serialize};

use crate::receipt::{Block, Line, Receipt, TextSize};

/// `ESC` (0x1B).
pub const ESC: u8 = 0x1B;
/// `GS` (0x1D).
pub const GS: u8 = 0x1D;
/// `DLE` (0x10).
pub const DLE: u8 = 0x10;
/// `EOT` (0x04).
pub const EOT: u8 = 0x04;

/// Cash drawer pulse on pin 2: `ESC p 0 t1 t2` with 50 ms on, 500 ms off.
pub const DRAWER_PULSE: [u8; 5] = [ESC, b'p', 0, 25, 250];

/// Rows per `GS v 0` band: cheap printers choke on one tall raster command.
const RASTER_BAND_ROWS: usize = 128;
/// The widest QR module we print, in dots (8 dots = 1 mm at 203 dpi).
const MAX_QR_MODULE_DOTS: usize = 8;

/// What the cutter does at the end of a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cutter {
    /// No cutter (most 58 mm units): feed only, tear by hand.
    None,
    /// Partial cut (`GS V A 1`): one tab left holding, the usual on 80 mm units.
    Partial,
    /// Full cut (`GS V A 0`).
    Full,
}

/// A printer model class: what the encoder needs to know about the paper and the head.
///
/// The column count is a setting of the printer, not something derived from the paper
/// (pos-anchors §4.5): 58 mm heads print 32 columns in font A or 42 in font B, 80 mm
/// heads 48 or 64, and 512-dot 80 mm heads (Epson TM-T81/TM-T88 class) 42.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrinterProfile {
    /// Characters per line in the profile's font.
    pub columns: usize,
    /// Font B (9×17) instead of font A (12×24).
    pub font_b: bool,
    /// Printable dots per line (384 on 58 mm, 512 or 576 on 80 mm).
    pub dots: usize,
    /// The printer draws QR codes itself (`GS ( k`); otherwise they are sent as raster.
    pub native_qr: bool,
    /// The cutter, if any.
    pub cutter: Cutter,
    /// A cash drawer is connected to the printer's drawer port.
    pub drawer: bool,
    /// Lines fed at the end so the last line clears the tear bar or cutter.
    pub feed_lines: u8,
}

impl PrinterProfile {
    /// 58 mm, 384 dots, font A: 32 columns; no cutter, no drawer port.
    pub fn mm58() -> PrinterProfile {
        PrinterProfile {
            columns: 32,
            font_b: false,
            dots: 384,
            native_qr: true,
            cutter: Cutter::None,
            drawer: false,
            feed_lines: 4,
        }
    }

    /// 58 mm, 384 dots, font B: 42 columns.
    pub fn mm58_font_b() -> PrinterProfile {
        PrinterProfile {
            columns: 42,
            font_b: true,
            ..PrinterProfile::mm58()
        }
    }

    /// 80 mm, 576 dots, font A: 48 columns; partial cut and a drawer port.
    pub fn mm80() -> PrinterProfile {
        PrinterProfile {
            columns: 48,
            font_b: false,
            dots: 576,
            native_qr: true,
            cutter: Cutter::Partial,
            drawer: true,
            feed_lines: 4,
        }
    }

    /// 80 mm, 576 dots, font B: 64 columns.
    pub fn mm80_font_b() -> PrinterProfile {
        PrinterProfile {
            columns: 64,
            font_b: true,
            ..PrinterProfile::mm80()
        }
    }

    /// 80 mm on a 512-dot head (Epson TM-T81/TM-T88 class), font A: 42 columns.
    pub fn mm80_512() -> PrinterProfile {
        PrinterProfile {
            columns: 42,
            dots: 512,
            ..PrinterProfile::mm80()
        }
    }

    /// A profile by its short name: `58`, `58b`, `80`, `80b` or `80-512`.
    pub fn by_name(name: &str) -> Option<PrinterProfile> {
        match name.trim().to_ascii_lowercase().as_str() {
            "58" | "58mm" => Some(PrinterProfile::mm58()),
            "58b" | "58mm-b" => Some(PrinterProfile::mm58_font_b()),
            "80" | "80mm" => Some(PrinterProfile::mm80()),
            "80b" | "80mm-b" => Some(PrinterProfile::mm80_font_b()),
            "80-512" | "80mm-512" => Some(PrinterProfile::mm80_512()),
            _ => None,
        }
    }

    /// The usual profile of a column count: 32 → 58 mm, 42 → 80 mm on a 512-dot head,
    /// 48 → 80 mm, 64 → 80 mm font B. `None` for other counts.
    pub fn for_columns(columns: usize) -> Option<PrinterProfile> {
        match columns {
            32 => Some(PrinterProfile::mm58()),
            42 => Some(PrinterProfile::mm80_512()),
            48 => Some(PrinterProfile::mm80()),
            64 => Some(PrinterProfile::mm80_font_b()),
            _ => None,
        }
    }

    /// Dots one character cell of the profile's font takes.
    pub fn cell_dots(&self) -> usize {
        if self.font_b { 9 } else { 12 }
    }
}

/// Why a receipt cannot be encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The receipt is wider than the printer's line.
    #[error("a {receipt}-column receipt does not fit a {printer}-column printer")]
    TooWide {
        /// The receipt's width.
        receipt: usize,
        /// The printer's columns.
        printer: usize,
    },
    /// The profile cannot print what it claims (e.g. more columns than dots allow).
    #[error("invalid printer profile: {0}")]
    BadProfile(String),
    /// The QR payload cannot be encoded (too long).
    #[error("QR code payload cannot be encoded: {0}")]
    Qr(String),
    /// The QR code is wider than the paper even at one dot per module.
    #[error("QR code of {modules} modules does not fit {dots} dots")]
    QrTooLarge {
        /// Modules per side, without the quiet zone.
        modules: usize,
        /// Dots per line of the printer.
        dots: usize,
    },
    /// The `escpos` crate refused a command.
    #[error("ESC/POS command failed: {0}")]
    Command(String),
}

impl From<escpos::errors::PrinterError> for EncodeError {
    fn from(e: escpos::errors::PrinterError) -> EncodeError {
        EncodeError::Command(e.to_string())
    }
}

/// The `escpos` crate's printer writes into this buffer.
#[derive(Clone, Default)]
struct Memory(Rc<RefCell<Vec<u8>>>);

impl Driver for Memory {
    fn name(&self) -> String {
        "memory".to_owned()
    }

    fn write(&self, data: &[u8]) -> escpos::errors::Result<()> {
        self.0.try_borrow_mut()?.extend_from_slice(data);
        Ok(())
    }

    fn read(&self, _buf: &mut [u8]) -> escpos::errors::Result<usize> {
        Ok(0)
    }

    fn flush(&self) -> escpos::errors::Result<()> {
        Ok(())
    }
}

/// Encodes `receipt` as ESC/POS for a printer of `profile` (see the module docs).
pub fn encode(receipt: &Receipt, profile: &PrinterProfile) -> Result<Vec<u8>, EncodeError> {
    if receipt.width > profile.columns {
        return Err(EncodeError::TooWide {
            receipt: receipt.width,
            printer: profile.columns,
        });
    }
    if profile.columns == 0 || profile.columns * profile.cell_dots() > profile.dots {
        return Err(EncodeError::BadProfile(format!(
            "{} columns of {} dots do not fit {} dots",
            profile.columns,
            profile.cell_dots(),
            profile.dots
        )));
    }
    let out = Memory::default();
    let options = PrinterOptions::new(Some(PageCode::PC437), None, clamp_u8(profile.columns));
    let mut p = Printer::new(out.clone(), Protocol::default(), Some(options));
    p.init()?;
    if profile.font_b {
        p.font(Font::B)?;
    }
    let (mut bold, mut size) = (false, TextSize::Normal);
    for block in &receipt.blocks {
        match block {
            Block::Line(line) => {
                if line.bold != bold {
                    p.bold(line.bold)?;
                    bold = line.bold;
                }
                if line.size != size {
                    match line.size {
                        TextSize::Normal => p.reset_size()?,
                        TextSize::Tall => p.size(1, 2)?,
                        TextSize::Large => p.size(2, 2)?,
                    };
                    size = line.size;
                }
                p.custom(&line_bytes(line, receipt.width))?;
            }
            Block::Qr(data) => {
                if bold {
                    p.bold(false)?;
                    bold = false;
                }
                if size != TextSize::Normal {
                    p.reset_size()?;
                    size = TextSize::Normal;
                }
                qr(&mut p, data, profile)?;
            }
            Block::Drawer => {
                if profile.drawer {
                    p.custom(&DRAWER_PULSE)?;
                }
            }
            Block::Cut => {
                p.feeds(profile.feed_lines)?;
                match profile.cutter {
                    Cutter::None => &mut p,
                    Cutter::Partial => p.partial_cut()?,
                    Cutter::Full => p.cut()?,
                };
            }
        }
    }
    p.print()?;
    drop(p);
    Ok(out.0.take())
}

/// A line's bytes: its cell-padded text, anything but printable ASCII as `?`, then `LF`.
fn line_bytes(line: &Line, width: usize) -> Vec<u8> {
    let text = line.cells_padded(width);
    let mut bytes: Vec<u8> = text
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c as u8
            } else {
                b'?'
            }
        })
        .collect();
    bytes.push(b'\n');
    bytes
}

fn clamp_u8(n: usize) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

/// The modules per side of the QR code of `data` (level M, smallest version) and the
/// dots per module that fit the profile's line with a four-module quiet zone each side.
/// Only the version is computed (cheap); the matrix is drawn for raster printing only.
fn qr_size(data: &str, profile: &PrinterProfile) -> Result<(usize, usize), EncodeError> {
    let bits = qrcode::bits::encode_auto(data.as_bytes(), EcLevel::M)
        .map_err(|e| EncodeError::Qr(e.to_string()))?;
    let modules = usize::try_from(bits.version().width())
        .map_err(|_| EncodeError::Qr("bad QR version".into()))?;
    let scale = (profile.dots / (modules + 8)).min(MAX_QR_MODULE_DOTS);
    if scale == 0 {
        return Err(EncodeError::QrTooLarge {
            modules,
            dots: profile.dots,
        });
    }
    Ok((modules, scale))
}

/// A centred QR code: native `GS ( k` or a `GS v 0` raster, on lines of its own.
fn qr(p: &mut Printer<Memory>, data: &str, profile: &PrinterProfile) -> Result<(), EncodeError> {
    let (_, scale) = qr_size(data, profile)?;
    p.custom(b"\n")?;
    if profile.native_qr {
        p.justify(escpos::utils::JustifyMode::CENTER)?;
        let option = QRCodeOption::new(
            QRCodeModel::Model2,
            clamp_u8(scale),
            QRCodeCorrectionLevel::M,
        );
        p.qrcode_option(data, option)?;
        p.justify(escpos::utils::JustifyMode::LEFT)?;
    } else {
        let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
            .map_err(|e| EncodeError::Qr(e.to_string()))?;
        p.custom(&raster(&code, scale, profile.dots))?;
    }
    p.custom(b"\n")?;
    Ok(())
}

/// The QR matrix as `GS v 0` raster bands, centred on a line of `dots` by leading white
/// bits (so it does not depend on `ESC a` being honoured for images).
fn raster(code: &QrCode, scale: usize, dots: usize) -> Vec<u8> {
    let modules = code.width();
    let size = modules * scale;
    let left = dots.saturating_sub(size) / 2;
    let row_bytes = (left + size).div_ceil(8);
    let colors = code.to_colors();
    let mut out = Vec::with_capacity(size * row_bytes + 8 * size.div_ceil(RASTER_BAND_ROWS));
    let mut row = vec![0u8; row_bytes];
    let mut y = 0;
    while y < size {
        let rows = (size - y).min(RASTER_BAND_ROWS);
        let [xl, xh] = u16::try_from(row_bytes).unwrap_or(u16::MAX).to_le_bytes();
        let [yl, yh] = u16::try_from(rows).unwrap_or(u16::MAX).to_le_bytes();
        out.extend_from_slice(&[GS, b'v', b'0', 0, xl, xh, yl, yh]);
        for dy in y..y + rows {
            row.fill(0);
            let my = dy / scale;
            for mx in 0..modules {
                if colors[my * modules + mx] == Color::Dark {
                    for dx in 0..scale {
                        let x = left + mx * scale + dx;
                        row[x / 8] |= 0x80 >> (x % 8);
                    }
                }
            }
            out.extend_from_slice(&row);
        }
        y += rows;
    }
    out
}

/// A real-time status request (`DLE EOT n`). Printers answer one byte each, if at all:
/// cheap units often do not, so callers wait briefly and treat silence as "unknown".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusRequest {
    /// `n = 1`: online/offline.
    Printer,
    /// `n = 2`: why offline (cover open, paper end, error).
    OfflineCause,
    /// `n = 4`: roll paper sensor (near end, end).
    Paper,
}

impl StatusRequest {
    /// The three request bytes.
    pub fn bytes(self) -> [u8; 3] {
        let n = match self {
            StatusRequest::Printer => 1,
            StatusRequest::OfflineCause => 2,
            StatusRequest::Paper => 4,
        };
        [DLE, EOT, n]
    }
}

/// What a printer reported about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrinterStatus {
    /// The printer is offline (cover open, paper out, error...).
    pub offline: bool,
    /// The cover is open (from the offline cause).
    pub cover_open: bool,
    /// The paper has run out.
    pub paper_out: bool,
    /// The paper roll is nearly used up.
    pub paper_near_end: bool,
    /// An error occurred (cutter jam, head overheated...).
    pub error: bool,
}

impl PrinterStatus {
    /// Whether the printer can print now.
    pub fn ready(&self) -> bool {
        !(self.offline || self.cover_open || self.paper_out || self.error)
    }

    /// Folds the answer to `request` into this status. `false` when `byte` is not a
    /// status byte (bits 0, 1, 4 and 7 are fixed at 0, 1, 1, 0).
    pub fn apply(&mut self, request: StatusRequest, byte: u8) -> bool {
        if byte & 0b1001_0011 != 0b0001_0010 {
            return false;
        }
        match request {
            StatusRequest::Printer => self.offline = byte & 0x08 != 0,
            StatusRequest::OfflineCause => {
                self.cover_open = byte & 0x04 != 0;
                self.paper_out |= byte & 0x20 != 0;
                self.error = byte & 0x40 != 0;
            }
            StatusRequest::Paper => {
                self.paper_near_end = byte & 0x0C == 0x0C;
                self.paper_out |= byte & 0x60 == 0x60;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bytes_are_decoded_and_junk_is_refused() {
        let mut s = PrinterStatus::default();
        assert!(s.apply(StatusRequest::Printer, 0x12));
        assert!(s.ready());
        assert!(s.apply(StatusRequest::Printer, 0x1A));
        assert!(s.offline && !s.ready());
        assert!(s.apply(StatusRequest::Paper, 0x7E));
        assert!(s.paper_out && s.paper_near_end);
        assert!(s.apply(StatusRequest::OfflineCause, 0x16));
        assert!(s.cover_open);
        let mut other = PrinterStatus::default();
        assert!(!other.apply(StatusRequest::Printer, 0xFF));
        assert!(!other.apply(StatusRequest::Printer, 0x00));
        assert_eq!(other, PrinterStatus::default());
        assert_eq!(StatusRequest::Paper.bytes(), [0x10, 0x04, 4]);
    }

    #[test]
    fn profiles_by_name_and_columns_fit_their_heads() {
        for name in ["58", "58b", "80", "80b", "80-512"] {
            let p = PrinterProfile::by_name(name).unwrap();
            assert!(p.columns * p.cell_dots() <= p.dots, "{name}");
            assert_eq!(
                PrinterProfile::for_columns(p.columns).unwrap().columns,
                p.columns
            );
        }
        assert_eq!(PrinterProfile::by_name("57"), None);
        assert_eq!(PrinterProfile::for_columns(40), None);
    }

    #[test]
    fn qr_scale_fits_the_head_or_is_refused() {
        let small = PrinterProfile::mm58();
        let url = "https://struk.example/T1-250612-0042";
        let (modules, scale) = qr_size(url, &small).unwrap();
        assert_eq!(
            modules,
            QrCode::with_error_correction_level(url, EcLevel::M)
                .unwrap()
                .width()
        );
        assert!((modules + 8) * scale <= small.dots);
        assert!(scale >= 1);
        let tiny = PrinterProfile {
            dots: 30,
            ..PrinterProfile::mm58()
        };
        assert!(matches!(
            qr_size("https://struk.example/T1-250612-0042", &tiny),
            Err(EncodeError::QrTooLarge { dots: 30, .. })
        ));
        let long = "x".repeat(8000);
        assert!(matches!(qr_size(&long, &small), Err(EncodeError::Qr(_))));
    }
}
