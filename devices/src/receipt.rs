//! The struk (receipt) of a sale: one layout, printed as plain text or as ESC/POS.
//!
//! The layout follows the usual Indonesian retail struk (see `pos-anchors.md` §4.5): the
//! store's header, receipt number, local date and cashier, the items with their name on
//! one line and `qty x price` with the amount on the next, the totals and payments, the
//! DPP/PPN block that PER-03/PJ/2022 asks of a PKP's *faktur pajak digunggung*, and the
//! footer. Every line is plain ASCII (code pages vary between printers), at most
//! [`ReceiptOptions::width`] columns wide as printed, and amounts are right-aligned and
//! numbers are never split across lines.
//!
//! [`layout`] builds a [`Receipt`]: a list of [`Block`]s — styled [`Line`]s, a QR code, the
//! cash drawer pulse and the paper cut. [`render_text`] prints it as text (styles dropped,
//! QR, drawer and cut omitted); [`crate::encode`] prints the same blocks as ESC/POS bytes.
//! Neither decides anything about the layout, so the two never disagree on a line.
//!
//! Tax decisions (whether the NPWP and the tax block are printed, inclusive or not) follow
//! the sale's own [`TaxRule`](kasir_crdt::tax::TaxRule), so a reprint shows exactly the
//! tax that was charged even if the store's rule has changed since.

use std::mem;

use kasir_crdt::money::{Rupiah, format_number};
use kasir_crdt::records::{Sale, SaleTax, Seller};
use kasir_crdt::store::StoreProfile;
use kasir_crdt::tax::{TaxCode, TaxKind, TaxRule};

/// The narrowest receipt [`layout`] accepts, in columns.
pub const MIN_WIDTH: usize = 24;
/// The widest receipt [`layout`] accepts, in columns.
pub const MAX_WIDTH: usize = 80;

/// How to print a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptOptions {
    /// Characters per line: 32 (58 mm, font A), 42 (58 mm font B or 80 mm on 512-dot
    /// heads), 48 (80 mm, font A) or 64 (80 mm, font B). [`MIN_WIDTH`] to [`MAX_WIDTH`].
    pub width: usize,
    /// A status printed prominently at the end, e.g. `DIBATALKAN` for a voided sale.
    pub status: Option<String>,
    /// Prints `SALINAN` (copy): this is not the original receipt.
    pub reprint: bool,
    /// A QR code printed at the end: a static QRIS payload or the e-receipt link. Only
    /// printers draw it; the text form leaves it out.
    pub qr: Option<String>,
    /// Pulses the cash drawer before printing (cash sales, original receipt only).
    pub open_drawer: bool,
}

impl Default for ReceiptOptions {
    /// A 32-column original (58 mm paper, font A), without status, QR or drawer.
    fn default() -> ReceiptOptions {
        ReceiptOptions {
            width: 32,
            status: None,
            reprint: false,
            qr: None,
            open_drawer: false,
        }
    }
}

/// Why a receipt cannot be laid out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The width is outside [`MIN_WIDTH`]..=[`MAX_WIDTH`].
    #[error("unsupported receipt width {0}: use 24 to 80 columns")]
    BadWidth(usize),
}

/// Where a line sits between the margins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Against the left margin (leading spaces in the text are kept).
    Left,
    /// Centred (leading padding rounds down).
    Center,
    /// Against the right margin.
    Right,
}

/// The character size of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextSize {
    /// One column, one line.
    Normal,
    /// Double height, one column per character (the `TOTAL` line).
    Tall,
    /// Double width and height: two columns per character (the store's name).
    Large,
}

impl TextSize {
    /// Columns one character of this size takes.
    pub fn width_factor(self) -> usize {
        match self {
            TextSize::Normal | TextSize::Tall => 1,
            TextSize::Large => 2,
        }
    }
}

/// One printed line: plain ASCII, already wrapped to fit the receipt's width at its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The characters, without alignment padding (a left-aligned line may be indented).
    pub text: String,
    /// Where the line sits.
    pub align: Align,
    /// Emphasised (`ESC E`).
    pub bold: bool,
    /// Character size (`GS !`).
    pub size: TextSize,
}

impl Line {
    /// The line as plain text on a `width`-column receipt: padded for its alignment as if
    /// it were normal size (text has no sizes), no trailing spaces.
    pub fn text_padded(&self, width: usize) -> String {
        self.padded_in(width)
    }

    /// The line as sent to a printer of `width` columns: padded for its alignment in
    /// character cells of its own size (a [`TextSize::Large`] space is two columns).
    pub fn cells_padded(&self, width: usize) -> String {
        self.padded_in(width / self.size.width_factor())
    }

    fn padded_in(&self, cells: usize) -> String {
        let len = self.text.chars().count();
        let pad = match self.align {
            Align::Left => 0,
            Align::Center => cells.saturating_sub(len) / 2,
            Align::Right => cells.saturating_sub(len),
        };
        let mut out = String::with_capacity(pad + self.text.len());
        out.extend(std::iter::repeat_n(' ', pad));
        out.push_str(&self.text);
        out
    }
}

/// One element of a laid-out receipt, in printing order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Block {
    /// A line of text.
    Line(Line),
    /// A QR code of this payload, centred.
    Qr(String),
    /// Pulse the cash drawer.
    Drawer,
    /// Feed past the tear bar and cut (printers without a cutter only feed).
    Cut,
}

/// A laid-out receipt: what both the text and the ESC/POS printers print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Columns the lines were laid out for.
    pub width: usize,
    /// The blocks in printing order.
    pub blocks: Vec<Block>,
}

impl Receipt {
    /// The text lines, padded as [`Line::text_padded`].
    pub fn text_lines(&self) -> impl Iterator<Item = String> + '_ {
        self.blocks.iter().filter_map(|b| match b {
            Block::Line(line) => Some(line.text_padded(self.width)),
            _ => None,
        })
    }
}

/// Renders `sale` as a plain-ASCII struk of `opts.width` columns.
///
/// Times are printed in the store's zone (`profile.utc_offset_minutes`), e.g.
/// `12/06/2025 14:05 WIB`. Every line ends with `'\n'`, the last one included.
pub fn render_text(
    profile: &StoreProfile,
    sale: &Sale,
    opts: &ReceiptOptions,
) -> Result<String, ReceiptError> {
    let receipt = layout(profile, sale, opts)?;
    let mut out = String::with_capacity(receipt.blocks.len() * (receipt.width + 1));
    for line in receipt.text_lines() {
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

/// Lays `sale` out as a receipt of `opts.width` columns (see the module docs).
pub fn layout(
    profile: &StoreProfile,
    sale: &Sale,
    opts: &ReceiptOptions,
) -> Result<Receipt, ReceiptError> {
    let rule = sale.tax_rule;
    let groups = tax_groups(sale);
    let taxed = groups.iter().any(|g| g.rule.is_some());
    let pbjt = groups
        .iter()
        .any(|g| g.rule.is_some_and(|r| r.kind == TaxKind::Pbjt));
    let ppn = groups
        .iter()
        .any(|g| g.rule.is_some_and(|r| r.kind == TaxKind::Ppn));
    let mut s = Struk::new(opts.width)?;
    if opts.open_drawer {
        s.blocks.push(Block::Drawer);
    }

    // Header: the seller as it was when the sale was made, its name large and bold.
    let seller = sale.seller.clone().unwrap_or_else(|| profile.seller());
    s.store_name(&seller.name);
    for text in [&profile.receipt_header, &seller.address]
        .into_iter()
        .flatten()
    {
        s.centered_lines(text);
    }
    if let Some(phone) = seller.phone.as_deref().map(clean).filter(|p| !p.is_empty()) {
        s.centered(&format!("Telp. {phone}"));
    }
    if (ppn || (taxed && seller.npwpd.is_none()))
        && let Some(npwp) = seller.npwp.as_deref().map(clean).filter(|n| !n.is_empty())
    {
        s.centered(&format!("{} {npwp}", Seller::tax_id_label(&npwp)));
    }
    if pbjt && let Some(npwpd) = seller.npwpd.as_deref().map(clean).filter(|n| !n.is_empty()) {
        s.centered(&format!("NPWPD {npwpd}"));
    }
    s.rule();

    // Receipt number, local time, cashier, till.
    s.left(&format!("No: {}", sale.receipt_no));
    let when = local_time(sale.created_at_ms, profile.utc_offset_minutes)
        .unwrap_or_else(|| clean(&sale.business_date));
    let when = format!("{when} {}", profile.zone_name());
    match sale.cashier.as_deref().map(clean).filter(|c| !c.is_empty()) {
        Some(cashier) => {
            let cashier = format!("Ksr: {cashier}");
            if s.pair_fits(0, &when, &cashier) {
                s.pair(0, &when, &cashier);
            } else {
                s.left(&when);
                s.left(&cashier);
            }
        }
        None => s.left(&when),
    }
    s.left(&format!("Till: {}", sale.till_code));
    s.rule();

    // Items.
    for line in &sale.lines {
        let name = clean(&line.name);
        let name = if name.is_empty() {
            clean(&line.sku)
        } else {
            name
        };
        match marker(line.tax_code.as_deref()) {
            Some(mark) => s.left(&format!("{name} {mark}")),
            None => s.left(&name),
        }
        let gross = line.line_total.saturating_add(line.discount);
        let qty_price = format!("{} x {}", line.qty, format_number(line.unit_price));
        s.pair(2, &qty_price, &format_number(gross));
        let promo = line.promo.as_ref().map_or(0, |p| p.discount);
        if let Some(p) = &line.promo {
            s.pair(
                2,
                &clean(&p.label),
                &format_number(p.discount.saturating_neg()),
            );
        }
        let typed = line.discount.saturating_sub(promo);
        if typed != 0 {
            s.pair(2, "Diskon", &format_number(typed.saturating_neg()));
        }
    }
    s.rule();

    // Totals and payments; TOTAL tall and bold.
    if sale.subtotal != sale.total {
        s.amount("Subtotal", sale.subtotal);
    }
    if sale.service_charge > 0 {
        let label = if rule.service_bp > 0 {
            format!("Service {}", percent(rule.service_bp))
        } else {
            "Service".to_owned()
        };
        s.amount(&label, sale.service_charge);
    }
    let tax_label = rule.label().unwrap_or_else(|| "Pajak".to_owned());
    for g in &groups {
        if let Some(r) = g.rule.filter(|r| !r.inclusive) {
            s.amount(&group_label(g, &r, groups.len()), g.tax);
        }
    }
    if sale.rounding != 0 {
        s.amount("Pembulatan", sale.rounding);
    }
    s.styled(true, TextSize::Tall, |s| s.amount("TOTAL", sale.total));
    for payment in &sale.payments {
        s.amount(&payment_label(&payment.method), payment.amount);
        if let Some(reference) = &payment.reference {
            s.indented(2, &format!("Ref {}", clean(reference)));
        }
    }
    if sale.change > 0 {
        s.amount("KEMBALI", sale.change);
    }
    // A sale on credit: whose, and until when (the customer keeps this copy).
    if let Some(name) = sale
        .customer_name
        .as_deref()
        .map(clean)
        .filter(|n| !n.is_empty())
    {
        s.left(&format!("Pelanggan: {name}"));
        if let Some(due) = sale.due_date.as_deref().and_then(|d| {
            let mut parts = d.split('-');
            let (y, m, day) = (parts.next()?, parts.next()?, parts.next()?);
            Some(format!("{day}/{m}/{y}"))
        }) {
            s.left(&format!("Jatuh tempo: {}", clean(&due)));
        }
    }

    // Tax block for PKP stores (faktur pajak digunggung), a group at a time when the
    // lines were taxed under several rules; exempt goods' amount beside them.
    if taxed && sale.taxes.is_empty() {
        s.rule();
        s.amount("DPP", sale.dpp);
        if rule.base_num != rule.base_den {
            s.amount(
                &format!("DPP Nilai Lain {}/{}", rule.base_num, rule.base_den),
                sale.dpp_other,
            );
        }
        s.amount(&tax_label, sale.tax);
        if rule.inclusive {
            let tax_name = match rule.kind {
                TaxKind::Pbjt => "PBJT",
                TaxKind::Ppn | TaxKind::None => "PPN",
            };
            s.left(&format!("Harga sudah termasuk {tax_name}"));
        }
    } else if !sale.taxes.is_empty() && (taxed || groups.iter().any(|g| g.code == "exempt")) {
        s.rule();
        for g in &groups {
            match g.rule {
                Some(r) => {
                    let label = group_label(g, &r, groups.len());
                    let suffix = marker(Some(&g.code))
                        .map(|m| format!(" {m}"))
                        .unwrap_or_default();
                    s.amount(&format!("DPP{suffix}"), g.dpp);
                    if r.base_num != r.base_den {
                        s.amount(
                            &format!("DPP Nilai Lain {}/{}{suffix}", r.base_num, r.base_den),
                            g.dpp_other,
                        );
                    }
                    s.amount(&label, g.tax);
                }
                None if g.code == "exempt" => s.amount("Dibebaskan PPN *", g.base),
                None => s.amount("Tidak dikenai pajak", g.base),
            }
        }
        let inclusive: Vec<&str> = [(ppn, "PPN"), (pbjt, "PBJT")]
            .into_iter()
            .filter(|(on, _)| *on && rule.inclusive)
            .map(|(_, name)| name)
            .collect();
        if !inclusive.is_empty() {
            s.left(&format!("Harga sudah termasuk {}", inclusive.join(" dan ")));
        }
    }
    s.rule();

    // Status, copy mark, footer and QR.
    if let Some(status) = opts.status.as_deref().map(clean).filter(|t| !t.is_empty()) {
        let status = status.to_ascii_uppercase();
        let starred = format!("*** {status} ***");
        s.styled(true, TextSize::Normal, |s| {
            s.centered(if starred.len() <= s.width {
                &starred
            } else {
                &status
            });
        });
    }
    if opts.reprint {
        s.centered("SALINAN");
    }
    if let Some(footer) = &profile.receipt_footer {
        s.centered_lines(footer);
    }
    if let Some(qr) = opts.qr.as_deref().filter(|q| !q.trim().is_empty()) {
        s.blocks.push(Block::Qr(qr.to_owned()));
    }
    Ok(s.cut())
}

/// The sale's tax groups: its own when it has them, else one group of every line under
/// the sale's rule.
fn tax_groups(sale: &Sale) -> Vec<SaleTax> {
    if !sale.taxes.is_empty() {
        return sale.taxes.clone();
    }
    let rule = sale.tax_rule;
    vec![SaleTax {
        code: TaxCode::Standard.as_str().to_owned(),
        rule: (rule.kind != TaxKind::None).then_some(rule),
        base: sale.subtotal,
        service_charge: sale.service_charge,
        dpp: sale.dpp,
        dpp_other: sale.dpp_other,
        tax: sale.tax,
    }]
}

/// The mark a line of tax code `code` carries on the struk, and its group beside the
/// tax: `*` exempt from PPN, `#` PBJT, `+` PPN, `^` PPN on the full price (luxury).
fn marker(code: Option<&str>) -> Option<char> {
    match TaxCode::of_product(code) {
        TaxCode::Standard => None,
        TaxCode::Exempt => Some('*'),
        TaxCode::Pbjt => Some('#'),
        TaxCode::Ppn => Some('+'),
        TaxCode::PpnFull => Some('^'),
    }
}

/// A taxed group's tax line: `PPN 12%`, and its mark when the sale has several groups.
fn group_label(g: &SaleTax, rule: &TaxRule, groups: usize) -> String {
    let label = rule.label().unwrap_or_else(|| "Pajak".to_owned());
    match marker(Some(&g.code)) {
        Some(m) if groups > 1 => format!("{label} {m}"),
        _ => label,
    }
}

/// A test page for `printer` (its URI or name) at `width` columns: the store's name in
/// the large size, a ruler of column numbers to check the width, a right-aligned amount
/// and the cut, so whoever set the printer up sees every style it will print.
pub fn test_page(store_name: &str, printer: &str, width: usize) -> Result<Receipt, ReceiptError> {
    let mut s = Struk::new(width)?;
    s.store_name(store_name);
    s.centered("TES CETAK / TEST PRINT");
    s.rule();
    s.left(&format!("Printer: {printer}"));
    s.left(&format!("Lebar: {width} kolom"));
    let ruler: String = (1..=width)
        .map(|c| char::from(b'0' + (c % 10) as u8))
        .collect();
    s.push(ruler, Align::Left);
    s.right("Rp12.500");
    s.styled(true, TextSize::Tall, |s| s.centered("OK"));
    s.rule();
    Ok(s.cut())
}

/// A dynamic QRIS on paper, for a customer who cannot see the till's screen: the
/// store's name, the amount large, the QR, and until when it can be paid (in the
/// store's zone). The struk follows once the acquirer confirms.
pub fn qris_slip(
    profile: &StoreProfile,
    amount: Rupiah,
    payload: &str,
    expires_at_ms: i64,
    width: usize,
) -> Result<Receipt, ReceiptError> {
    let mut s = Struk::new(width)?;
    s.store_name(&profile.name);
    s.centered("QRIS - scan untuk membayar");
    s.styled(true, TextSize::Tall, |s| {
        s.centered(&format!("Rp{}", format_number(amount)))
    });
    s.blocks.push(Block::Qr(payload.to_owned()));
    // A QR lives minutes: the time of day says enough, and fits 32 columns.
    if let Some(until) = local_time(expires_at_ms, profile.utc_offset_minutes)
        && let Some((_, time)) = until.split_once(' ')
    {
        s.centered(&format!("Berlaku s.d. {time} {}", profile.zone_name()));
    }
    s.centered("Struk dicetak setelah dibayar");
    s.rule();
    Ok(s.cut())
}

/// One line of a printed report (laporan tutup kasir, laporan Z).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportLine {
    /// A section's title, bold, after a rule.
    Heading(String),
    /// A label and its value, the value right-aligned.
    Row(String, String),
}

/// A report on receipt paper: the store's name, the title, `subtitle` (the day, the
/// till), then its lines, and the cut.
pub fn report(
    store_name: &str,
    title: &str,
    subtitle: &str,
    lines: &[ReportLine],
    width: usize,
) -> Result<Receipt, ReceiptError> {
    let mut s = Struk::new(width)?;
    s.store_name(store_name);
    s.styled(true, TextSize::Normal, |s| s.centered(title));
    s.centered(subtitle);
    s.rule();
    for line in lines {
        match line {
            ReportLine::Heading(text) => {
                s.rule();
                s.styled(true, TextSize::Normal, |s| s.left(text));
            }
            ReportLine::Row(label, value) => s.pair(0, label, value),
        }
    }
    s.rule();
    Ok(s.cut())
}

/// Blocks being laid out at a fixed width, in the current style.
struct Struk {
    width: usize,
    blocks: Vec<Block>,
    bold: bool,
    size: TextSize,
}

impl Struk {
    /// An empty page of `width` columns, if printers have such a width.
    fn new(width: usize) -> Result<Struk, ReceiptError> {
        if !(MIN_WIDTH..=MAX_WIDTH).contains(&width) {
            return Err(ReceiptError::BadWidth(width));
        }
        Ok(Struk {
            width,
            blocks: Vec::new(),
            bold: false,
            size: TextSize::Normal,
        })
    }

    /// The store's name, large, bold and centred: every page's head.
    fn store_name(&mut self, name: &str) {
        self.styled(true, TextSize::Large, |s| {
            s.centered(&clean(name).to_ascii_uppercase());
        });
    }

    /// The page cut off: the laid-out receipt.
    fn cut(mut self) -> Receipt {
        self.blocks.push(Block::Cut);
        Receipt {
            width: self.width,
            blocks: self.blocks,
        }
    }

    /// Lays out what `f` adds in this style; back to the normal style after.
    fn styled(&mut self, bold: bool, size: TextSize, f: impl FnOnce(&mut Struk)) {
        (self.bold, self.size) = (bold, size);
        f(self);
        (self.bold, self.size) = (false, TextSize::Normal);
    }

    /// Characters that fit on a line in the current size.
    fn cells(&self) -> usize {
        self.width / self.size.width_factor()
    }

    fn push(&mut self, text: String, align: Align) {
        self.blocks.push(Block::Line(Line {
            text,
            align,
            bold: self.bold,
            size: self.size,
        }));
    }

    /// A full-width rule of `-`.
    fn rule(&mut self) {
        self.push("-".repeat(self.cells()), Align::Left);
    }

    /// `text` wrapped on word boundaries, left-aligned.
    fn left(&mut self, text: &str) {
        self.indented(0, text);
    }

    /// `text` wrapped to the width less `indent`, each line indented.
    fn indented(&mut self, indent: usize, text: &str) {
        let pad = " ".repeat(indent);
        for line in wrap(&clean(text), self.cells().saturating_sub(indent)) {
            self.push(format!("{pad}{line}"), Align::Left);
        }
    }

    /// `text` wrapped and centred (no trailing spaces).
    fn centered(&mut self, text: &str) {
        for line in wrap(&clean(text), self.cells()) {
            self.push(line, Align::Center);
        }
    }

    /// Each line of a multi-line field (address, footer), wrapped and centred.
    fn centered_lines(&mut self, text: &str) {
        for line in text.lines() {
            self.centered(line);
        }
    }

    /// `text` right-aligned, hard-split only if longer than the whole width.
    fn right(&mut self, text: &str) {
        for line in wrap(&clean(text), self.cells()) {
            self.push(line, Align::Right);
        }
    }

    /// Whether `left` and `right` fit on one line with at least one space between.
    fn pair_fits(&self, indent: usize, left: &str, right: &str) -> bool {
        indent + clean(left).chars().count() + 1 + clean(right).chars().count() <= self.cells()
    }

    /// `left` (indented) and `right` right-aligned on one line; or, when they do not fit,
    /// `left` wrapped and `right` right-aligned on the line after.
    fn pair(&mut self, indent: usize, left: &str, right: &str) {
        let (left, right) = (clean(left), clean(right));
        if self.pair_fits(indent, &left, &right) {
            let gap = self.cells() - indent - left.chars().count() - right.chars().count();
            self.push(
                format!("{}{left}{}{right}", " ".repeat(indent), " ".repeat(gap)),
                Align::Left,
            );
        } else {
            self.indented(indent, &left);
            self.right(&right);
        }
    }

    /// A label with a right-aligned amount (`15.766`, `-1.000`).
    fn amount(&mut self, label: &str, amount: Rupiah) {
        self.pair(0, label, &format_number(amount));
    }
}

/// Words of `text` greedily packed into lines of at most `width` characters. A word is
/// never split unless it alone is longer than the width, and a number stays on the line
/// of the word after it (`2 Liter`, `5 kg`) when both fit on one line.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut cur_len = 0;
    for word in glue_numbers(text, width) {
        let chars: Vec<char> = word.chars().collect();
        if cur_len > 0 && cur_len + 1 + chars.len() <= width {
            cur.push(' ');
            cur.extend(&chars);
            cur_len += 1 + chars.len();
            continue;
        }
        if cur_len > 0 {
            lines.push(mem::take(&mut cur));
        }
        let mut rest = chars.as_slice();
        while rest.len() > width {
            let (head, tail) = rest.split_at(width);
            lines.push(head.iter().collect());
            rest = tail;
        }
        cur.extend(rest);
        cur_len = rest.len();
    }
    if cur_len > 0 {
        lines.push(cur);
    }
    lines
}

/// The words of `text` grouped into units [`wrap`] will not break when they fit in `width`:
/// a number is joined to the word after it (`2 Liter`, `5 kg`) and to a short word before
/// it (`No. 12,`, `Km 5`, `RT 03`).
fn glue_numbers(text: &str, width: usize) -> Vec<String> {
    let is_number = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b',')
            && w.bytes().any(|b| b.is_ascii_digit())
    };
    let mut units: Vec<String> = Vec::new();
    let mut prev: Option<&str> = None;
    for word in text.split_whitespace() {
        let after_number =
            prev.is_some_and(|p| is_number(p) && p.ends_with(|c: char| c.is_ascii_digit()));
        let number_after_short = prev.is_some_and(|p| p.chars().count() <= 4)
            && is_number(word.trim_end_matches([',', '.', ';', ':', ')']));
        match units.last_mut() {
            Some(last)
                if (after_number || number_after_short)
                    && last.chars().count() + 1 + word.chars().count() <= width =>
            {
                last.push(' ');
                last.push_str(word);
            }
            _ => units.push(word.to_owned()),
        }
        prev = Some(word);
    }
    units
}

/// `text` as printable ASCII on one line: accents folded, typographic punctuation replaced,
/// anything else printed as `?`, whitespace runs collapsed to one space.
fn clean(text: &str) -> String {
    let mut ascii = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_graphic() {
            ascii.push(c);
        } else if c.is_whitespace() || c.is_control() {
            ascii.push(' ');
        } else {
            ascii.push_str(fold(c));
        }
    }
    ascii.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A plain-ASCII stand-in for a non-ASCII character.
fn fold(c: char) -> &'static str {
    match c {
        'À'..='Å' => "A",
        'à'..='å' => "a",
        'Æ' => "AE",
        'æ' => "ae",
        'Ç' => "C",
        'ç' => "c",
        'È'..='Ë' => "E",
        'è'..='ë' => "e",
        'Ì'..='Ï' => "I",
        'ì'..='ï' => "i",
        'Ð' => "D",
        'ð' => "d",
        'Ñ' => "N",
        'ñ' => "n",
        'Ò'..='Ö' | 'Ø' => "O",
        'ò'..='ö' | 'ø' => "o",
        'Ù'..='Ü' => "U",
        'ù'..='ü' => "u",
        'Ý' => "Y",
        'ý' | 'ÿ' => "y",
        'ß' => "ss",
        'Œ' => "OE",
        'œ' => "oe",
        '‘' | '’' | '‚' | '′' | '´' | '`' => "'",
        '“' | '”' | '„' | '″' | '«' | '»' => "\"",
        '‐' | '‑' | '‒' | '–' | '—' | '−' => "-",
        '…' => "...",
        '×' => "x",
        '÷' => "/",
        '•' | '·' => "-",
        '°' => "o",
        '²' => "2",
        '³' => "3",
        '¼' => "1/4",
        '½' => "1/2",
        '¾' => "3/4",
        '©' => "(C)",
        '®' => "(R)",
        '™' => "TM",
        _ => "?",
    }
}

/// `dd/mm/yyyy HH:MM` of `ms` (Unix epoch, UTC) shifted by `offset_minutes`.
fn local_time(ms: i64, offset_minutes: i32) -> Option<String> {
    let shifted = ms.checked_add(i64::from(offset_minutes) * 60_000)?;
    let time = chrono::DateTime::from_timestamp_millis(shifted)?;
    Some(time.format("%d/%m/%Y %H:%M").to_string())
}

/// Basis points as an Indonesian percentage: `5%`, `2,50%`.
fn percent(bp: i64) -> String {
    let (whole, frac) = (bp / 100, (bp % 100).abs());
    if frac == 0 {
        format!("{whole}%")
    } else {
        format!("{whole},{frac:02}%")
    }
}

/// The struk label of a payment method: `TUNAI`, `QRIS`, `KARTU`, `TRANSFER`, or the
/// method's name in capitals (`e_wallet` → `E WALLET`).
pub fn payment_label(method: &str) -> String {
    match method.trim().to_ascii_lowercase().as_str() {
        "cash" => "TUNAI".to_owned(),
        "qris" => "QRIS".to_owned(),
        "card" => "KARTU".to_owned(),
        "transfer" => "TRANSFER".to_owned(),
        "ewallet" | "e_wallet" => "E-WALLET".to_owned(),
        other => clean(&other.replace('_', " ")).to_ascii_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};
    use kasir_crdt::money::{CashRounding, Qty};
    use kasir_crdt::records::{Payment, SaleLine};
    use kasir_crdt::tax::TaxRule;

    use super::*;

    /// 12/06/2025 14:05 WIB.
    const JUNE_12_1405_WIB: i64 = 1_749_711_900_000;

    /// Renders, checks every line against the width, and compares with the snapshot.
    fn check(profile: &StoreProfile, sale: &Sale, opts: &ReceiptOptions, expect: Expect) {
        let text = render_text(profile, sale, opts).unwrap();
        check_text(&text, opts.width, expect);
    }

    /// Checks every line of `text` against `width` and compares with the snapshot.
    fn check_text(text: &str, width: usize, expect: Expect) {
        assert!(text.ends_with('\n'), "last line must end with a newline");
        for line in text.lines() {
            assert!(
                line.chars().count() <= width,
                "line longer than {width}: {line:?}"
            );
            assert!(line.is_ascii(), "non-ASCII line: {line:?}");
        }
        expect.assert_eq(text);
    }

    #[test]
    fn a_report_pairs_labels_and_values_under_headings() {
        let lines = [
            ReportLine::Row("Transaksi".into(), "12".into()),
            ReportLine::Row("Penjualan bersih".into(), "Rp1.234.500".into()),
            ReportLine::Heading("Per metode".into()),
            ReportLine::Row("TUNAI".into(), "Rp1.000.000".into()),
            ReportLine::Row("QRIS".into(), "Rp234.500".into()),
            ReportLine::Row(
                "Selisih kas karena uang palsu ditolak".into(),
                "-Rp50.000".into(),
            ),
        ];
        let page = report("Warung Bu Sri", "LAPORAN Z", "02/12/2026", &lines, 32).unwrap();
        let text: String = page.text_lines().map(|l| l + "\n").collect();
        check_text(
            &text,
            32,
            expect![[r#"
                         WARUNG BU SRI
                           LAPORAN Z
                           02/12/2026
                --------------------------------
                Transaksi                     12
                Penjualan bersih     Rp1.234.500
                --------------------------------
                Per metode
                TUNAI                Rp1.000.000
                QRIS                   Rp234.500
                Selisih kas karena uang palsu
                ditolak
                                       -Rp50.000
                --------------------------------
            "#]],
        );
        assert_eq!(page.blocks.last(), Some(&Block::Cut));
    }

    #[test]
    fn a_test_page_shows_the_width_and_every_style() {
        let page = test_page("Warung Bu Sri", "tcp://192.168.1.50:9100", 32).unwrap();
        let text: String = page.text_lines().map(|l| l + "\n").collect();
        check_text(
            &text,
            32,
            expect![[r#"
                     WARUNG BU SRI
                 TES CETAK / TEST PRINT
            --------------------------------
            Printer: tcp://192.168.1.50:9100
            Lebar: 32 kolom
            12345678901234567890123456789012
                                    Rp12.500
                           OK
            --------------------------------
        "#]],
        );
        assert_eq!(page.blocks.last(), Some(&Block::Cut));
        assert!(matches!(
            test_page("X", "p", 10),
            Err(ReceiptError::BadWidth(10))
        ));
    }

    fn item(name: &str, qty: Qty, unit_price: Rupiah, discount: Rupiah) -> SaleLine {
        SaleLine {
            product_id: format!("p-{name}"),
            sku: name.to_ascii_uppercase().replace(' ', "-"),
            name: name.to_owned(),
            qty,
            unit_price,
            discount,
            tax: 0,
            line_total: qty.times_price(unit_price) - discount,
            tax_code: None,
            unit: None,
            promo: None,
        }
    }

    fn pay(method: &str, amount: Rupiah) -> Payment {
        Payment {
            method: method.to_owned(),
            amount,
            reference: None,
            confirmed_by: None,
        }
    }

    /// An untaxed sale of `lines`: total = subtotal, change = paid − total.
    fn sale(lines: Vec<SaleLine>, payments: Vec<Payment>) -> Sale {
        let subtotal = lines.iter().map(|l| l.line_total).sum();
        let paid: Rupiah = payments.iter().map(|p| p.amount).sum();
        Sale {
            id: "0197667a-0000-7000-8000-000000000001".into(),
            client_id: None,
            receipt_no: "T1-250612-000042".into(),
            till: "till-endpoint".into(),
            till_code: "T1".into(),
            cashier: Some("Ani".into()),
            user_id: None,
            approved_by: None,
            created_at_ms: JUNE_12_1405_WIB,
            business_date: "2025-06-12".into(),
            lines,
            subtotal,
            service_charge: 0,
            tax: 0,
            dpp: subtotal,
            dpp_other: subtotal,
            tax_rule: TaxRule::none(),
            taxes: Vec::new(),
            seller: None,
            customer_id: None,
            due_date: None,
            customer_name: None,
            rounding: 0,
            total: subtotal,
            payments,
            change: paid - subtotal,
        }
    }

    fn warung() -> StoreProfile {
        let mut p = StoreProfile::named("Warung Bu Sri");
        p.address = Some("Jl. Kaliurang Km 5 No. 12, Sleman, Yogyakarta".into());
        p.phone = Some("0812-2233-4455".into());
        p
    }

    fn opts(width: usize) -> ReceiptOptions {
        ReceiptOptions {
            width,
            ..ReceiptOptions::default()
        }
    }

    #[test]
    fn no_tax_32_columns() {
        let s = sale(
            vec![
                item("Indomie Goreng", Qty::units(3), 3_500, 0),
                item("Cabai Rawit Merah", Qty(250), 60_000, 0),
                item("Aqua 600ml", Qty::units(2), 4_000, 1_000),
            ],
            vec![pay("cash", 50_000)],
        );
        check(
            &warung(),
            &s,
            &ReceiptOptions::default(),
            expect![[r#"
                         WARUNG BU SRI
                   Jl. Kaliurang Km 5 No. 12,
                       Sleman, Yogyakarta
                      Telp. 0812-2233-4455
                --------------------------------
                No: T1-250612-000042
                12/06/2025 14:05 WIB    Ksr: Ani
                Till: T1
                --------------------------------
                Indomie Goreng
                  3 x 3.500               10.500
                Cabai Rawit Merah
                  0,25 x 60.000           15.000
                Aqua 600ml
                  2 x 4.000                8.000
                  Diskon                  -1.000
                --------------------------------
                TOTAL                     32.500
                TUNAI                     50.000
                KEMBALI                   17.500
                --------------------------------
                          Terima kasih
            "#]],
        );
    }

    /// A PKP minimarket's mixed cart (exempt beras, PPN sabun, PBJT gorengan) priced by
    /// the engine, reprinted after the store moved and took a NITKU: the struk shows
    /// the seller as it was, marks each line's group and gives each group's DPP and tax.
    #[test]
    fn mixed_tax_groups_with_the_seller_at_the_time_of_sale_32_columns() {
        use kasir_crdt::pricing::{CartLine, PricingRules, price_cart};
        use kasir_crdt::tax::TaxCode;
        let line = |sku: &str, name: &str, price: Rupiah, tax_code| CartLine {
            product_id: sku.into(),
            sku: sku.into(),
            name: name.into(),
            qty: Qty::units(1),
            unit_price: price,
            discount: 0,
            tax_code,
            unit: None,
            promo: None,
        };
        let rules = PricingRules {
            tax: TaxRule::ppn_12_dpp_11_12(true),
            pbjt_bp: 1000,
            rounding: CashRounding {
                unit: 100,
                down: true,
            },
        };
        let priced = price_cart(
            vec![
                line("BERAS5", "Beras 5kg", 70_000, TaxCode::Exempt),
                line("SABUN", "Sabun Mandi", 11_100, TaxCode::Standard),
                line("GORENG", "Gorengan", 5_050, TaxCode::Pbjt),
            ],
            &rules,
            vec![Payment {
                method: "tunai".into(),
                amount: 100_000,
                reference: None,
                confirmed_by: None,
            }],
        )
        .expect("priced");
        let mut then = StoreProfile::named("Minimarket Maju");
        then.address = Some("Jl. Lama 1, Depok".into());
        then.npwp = Some("0123456789012345".into());
        then.npwpd = Some("P.2.0001234.08.001".into());
        let mut s = sale(priced.lines, priced.payments);
        s.subtotal = priced.subtotal;
        s.tax_rule = rules.tax;
        s.taxes = priced.taxes;
        s.tax = priced.tax.tax;
        s.dpp = priced.tax.dpp;
        s.dpp_other = priced.tax.dpp_other;
        s.rounding = priced.rounding;
        s.total = priced.total;
        s.change = priced.change;
        s.seller = Some(then.seller());
        let mut now = then.clone();
        now.name = "Maju Swalayan".into();
        now.address = Some("Jl. Baru 99, Bogor".into());
        now.npwp = Some("0123456789012345000001".into());
        check(
            &now,
            &s,
            &ReceiptOptions {
                reprint: true,
                ..opts(32)
            },
            expect![[r#"
                        MINIMARKET MAJU
                       Jl. Lama 1, Depok
                     NPWP 0123456789012345
                    NPWPD P.2.0001234.08.001
                --------------------------------
                No: T1-250612-000042
                12/06/2025 14:05 WIB    Ksr: Ani
                Till: T1
                --------------------------------
                Beras 5kg *
                  1 x 70.000              70.000
                Sabun Mandi
                  1 x 11.100              11.100
                Gorengan #
                  1 x 5.050                5.050
                --------------------------------
                Subtotal                  86.150
                Pembulatan                   -50
                TOTAL                     86.100
                TUNAI                    100.000
                KEMBALI                   13.900
                --------------------------------
                Dibebaskan PPN *          70.000
                DPP                       10.000
                DPP Nilai Lain 11/12       9.167
                PPN 12%                    1.100
                DPP #                      4.591
                PBJT 10% #                   459
                Harga sudah termasuk PPN dan
                PBJT
                --------------------------------
                            SALINAN
                          Terima kasih
            "#]],
        );
        // A sale made now carries the NITKU, labelled as such.
        s.seller = Some(now.seller());
        let text = render_text(&now, &s, &opts(32)).expect("struk");
        assert!(text.contains("NITKU 0123456789012345000001"), "{text}");
        assert!(
            text.contains("MAJU SWALAYAN") && !text.contains("Jl. Lama"),
            "{text}"
        );
    }

    #[test]
    fn ppn_12_on_11_12_inclusive_48_columns() {
        let mut profile = StoreProfile::named("Toko Makmur Jaya");
        profile.address = Some("Jl. Merdeka No. 10, Bandung".into());
        profile.npwp = Some("0123456789012345".into());
        profile.tax_rule = TaxRule::ppn_12_dpp_11_12(true);
        let mut s = sale(
            vec![
                item("Indomie Goreng Ayam", Qty::units(3), 3_500, 0),
                item("Aqua 600ml", Qty::units(2), 4_000, 1_000),
            ],
            vec![pay("cash", 20_000)],
        );
        s.receipt_no = "MJ1-250612-000123".into();
        s.till_code = "MJ1".into();
        s.tax_rule = TaxRule::ppn_12_dpp_11_12(true);
        s.dpp = 15_766;
        s.dpp_other = 14_452;
        s.tax = 1_734;
        assert_eq!((s.total, s.change), (17_500, 2_500));
        check(
            &profile,
            &s,
            &opts(48),
            expect![[r#"
                            TOKO MAKMUR JAYA
                      Jl. Merdeka No. 10, Bandung
                         NPWP 0123456789012345
            ------------------------------------------------
            No: MJ1-250612-000123
            12/06/2025 14:05 WIB                    Ksr: Ani
            Till: MJ1
            ------------------------------------------------
            Indomie Goreng Ayam
              3 x 3.500                               10.500
            Aqua 600ml
              2 x 4.000                                8.000
              Diskon                                  -1.000
            ------------------------------------------------
            TOTAL                                     17.500
            TUNAI                                     20.000
            KEMBALI                                    2.500
            ------------------------------------------------
            DPP                                       15.766
            DPP Nilai Lain 11/12                      14.452
            PPN 12%                                    1.734
            Harga sudah termasuk PPN
            ------------------------------------------------
                              Terima kasih
        "#]],
        );
    }

    #[test]
    fn long_names_wrap_at_32_and_48() {
        let mut s = sale(
            vec![
                item(
                    "Kecap Manis Bango Refill Pouch 550ml Ekstra Kental",
                    Qty::units(12),
                    23_900,
                    0,
                ),
                item(
                    "Minyak Goreng Bimoli Klasik 2 Liter",
                    Qty::units(1),
                    38_500,
                    2_500,
                ),
                item(
                    "Paket Sembako Lebaran Istimewa",
                    Qty::units(150),
                    1_250_000,
                    0,
                ),
                item(
                    "KERUPUKUDANGSIDOARJOSUPERPREMIUMMANTAP 250g",
                    Qty::units(1),
                    18_000,
                    0,
                ),
            ],
            vec![pay("transfer", 188_050_300)],
        );
        s.cashier = Some("Muhammad Rizky Pratama".into());
        check(
            &warung(),
            &s,
            &opts(32),
            expect![[r#"
                     WARUNG BU SRI
               Jl. Kaliurang Km 5 No. 12,
                   Sleman, Yogyakarta
                  Telp. 0812-2233-4455
            --------------------------------
            No: T1-250612-000042
            12/06/2025 14:05 WIB
            Ksr: Muhammad Rizky Pratama
            Till: T1
            --------------------------------
            Kecap Manis Bango Refill Pouch
            550ml Ekstra Kental
              12 x 23.900            286.800
            Minyak Goreng Bimoli Klasik
            2 Liter
              1 x 38.500              38.500
              Diskon                  -2.500
            Paket Sembako Lebaran Istimewa
              150 x 1.250.000    187.500.000
            KERUPUKUDANGSIDOARJOSUPERPREMIUM
            MANTAP 250g
              1 x 18.000              18.000
            --------------------------------
            TOTAL                187.840.800
            TRANSFER             188.050.300
            KEMBALI                  209.500
            --------------------------------
                      Terima kasih
        "#]],
        );
        check(
            &warung(),
            &s,
            &opts(48),
            expect![[r#"
                             WARUNG BU SRI
             Jl. Kaliurang Km 5 No. 12, Sleman, Yogyakarta
                          Telp. 0812-2233-4455
            ------------------------------------------------
            No: T1-250612-000042
            12/06/2025 14:05 WIB Ksr: Muhammad Rizky Pratama
            Till: T1
            ------------------------------------------------
            Kecap Manis Bango Refill Pouch 550ml Ekstra
            Kental
              12 x 23.900                            286.800
            Minyak Goreng Bimoli Klasik 2 Liter
              1 x 38.500                              38.500
              Diskon                                  -2.500
            Paket Sembako Lebaran Istimewa
              150 x 1.250.000                    187.500.000
            KERUPUKUDANGSIDOARJOSUPERPREMIUMMANTAP 250g
              1 x 18.000                              18.000
            ------------------------------------------------
            TOTAL                                187.840.800
            TRANSFER                             188.050.300
            KEMBALI                                  209.500
            ------------------------------------------------
                              Terima kasih
        "#]],
        );
    }

    #[test]
    fn split_payment_qris_and_cash_with_change() {
        let s = sale(
            vec![
                item("Beras Pandan Wangi 5kg", Qty::units(1), 72_000, 0),
                item("Gula Pasir Gulaku 1kg", Qty::units(1), 17_500, 0),
                item("Telur Ayam Negeri", Qty(1500), 28_000, 0),
                item("Teh Celup Sariwangi", Qty::units(1), 7_000, 0),
            ],
            vec![
                Payment {
                    reference: Some("RRN 412345678901".into()),
                    ..pay("qris", 100_000)
                },
                pay("cash", 40_000),
            ],
        );
        assert_eq!((s.total, s.change), (138_500, 1_500));
        check(
            &warung(),
            &s,
            &ReceiptOptions::default(),
            expect![[r#"
                     WARUNG BU SRI
               Jl. Kaliurang Km 5 No. 12,
                   Sleman, Yogyakarta
                  Telp. 0812-2233-4455
            --------------------------------
            No: T1-250612-000042
            12/06/2025 14:05 WIB    Ksr: Ani
            Till: T1
            --------------------------------
            Beras Pandan Wangi 5kg
              1 x 72.000              72.000
            Gula Pasir Gulaku 1kg
              1 x 17.500              17.500
            Telur Ayam Negeri
              1,5 x 28.000            42.000
            Teh Celup Sariwangi
              1 x 7.000                7.000
            --------------------------------
            TOTAL                    138.500
            QRIS                     100.000
              Ref RRN 412345678901
            TUNAI                     40.000
            KEMBALI                    1.500
            --------------------------------
                      Terima kasih
        "#]],
        );
    }

    #[test]
    fn cash_rounding_prints_subtotal_and_pembulatan() {
        let mut profile = warung();
        profile.cash_rounding = CashRounding {
            unit: 100,
            down: false,
        };
        let mut s = sale(
            vec![
                item("Bawang Merah", Qty(350), 42_000, 0),
                item("Tempe Papan", Qty::units(2), 5_000, 0),
                item("Kerupuk Udang", Qty::units(1), 2_330, 0),
            ],
            vec![pay("cash", 30_000)],
        );
        s.rounding = profile.cash_rounding.adjustment(s.subtotal);
        s.total = s.subtotal + s.rounding;
        s.change = 30_000 - s.total;
        assert_eq!(
            (s.subtotal, s.rounding, s.total, s.change),
            (27_030, -30, 27_000, 3_000)
        );
        check(
            &profile,
            &s,
            &ReceiptOptions::default(),
            expect![[r#"
                     WARUNG BU SRI
               Jl. Kaliurang Km 5 No. 12,
                   Sleman, Yogyakarta
                  Telp. 0812-2233-4455
            --------------------------------
            No: T1-250612-000042
            12/06/2025 14:05 WIB    Ksr: Ani
            Till: T1
            --------------------------------
            Bawang Merah
              0,35 x 42.000           14.700
            Tempe Papan
              2 x 5.000               10.000
            Kerupuk Udang
              1 x 2.330                2.330
            --------------------------------
            Subtotal                  27.030
            Pembulatan                   -30
            TOTAL                     27.000
            TUNAI                     30.000
            KEMBALI                    3.000
            --------------------------------
                      Terima kasih
        "#]],
        );
    }

    #[test]
    fn voided_reprint_pbjt_exclusive_with_service_42_columns() {
        let mut rule = TaxRule::pbjt(1000, false);
        rule.service_bp = 500;
        let mut profile = StoreProfile::named("Kedai Kopi Senja");
        profile.address = Some("Ruko Galaxy Blok B-7\nJl. Raya Darmo Permai, Surabaya".into());
        profile.npwp = Some("0987654321098765".into());
        profile.tax_rule = rule;
        profile.receipt_header = Some("Cabang Darmo".into());
        profile.receipt_footer = Some("Terima kasih, sampai jumpa lagi!\nIG @kopisenja".into());
        let mut s = sale(
            vec![
                item("Es Kopi Susu Gula Aren", Qty::units(2), 18_000, 0),
                item("Roti Bakar Cokelat Keju", Qty::units(1), 14_000, 0),
            ],
            vec![],
        );
        let b = rule.apply(s.subtotal);
        s.tax_rule = rule;
        s.service_charge = b.service_charge;
        s.tax = b.tax;
        s.dpp = b.dpp;
        s.dpp_other = b.dpp_other;
        s.total = b.gross;
        s.payments = vec![pay("card", b.gross)];
        s.change = 0;
        let opts = ReceiptOptions {
            width: 42,
            status: Some("dibatalkan".into()),
            reprint: true,
            ..ReceiptOptions::default()
        };
        check(
            &profile,
            &s,
            &opts,
            expect![[r#"
                             KEDAI KOPI SENJA
                               Cabang Darmo
                           Ruko Galaxy Blok B-7
                     Jl. Raya Darmo Permai, Surabaya
                          NPWP 0987654321098765
                ------------------------------------------
                No: T1-250612-000042
                12/06/2025 14:05 WIB              Ksr: Ani
                Till: T1
                ------------------------------------------
                Es Kopi Susu Gula Aren
                  2 x 18.000                        36.000
                Roti Bakar Cokelat Keju
                  1 x 14.000                        14.000
                ------------------------------------------
                Subtotal                            50.000
                Service 5%                           2.500
                PBJT 10%                             5.250
                TOTAL                               57.750
                KARTU                               57.750
                ------------------------------------------
                DPP                                 52.500
                PBJT 10%                             5.250
                ------------------------------------------
                            *** DIBATALKAN ***
                                 SALINAN
                     Terima kasih, sampai jumpa lagi!
                              IG @kopisenja
            "#]],
        );
    }

    #[test]
    fn width_outside_24_to_80_is_refused() {
        let s = sale(
            vec![item("Kopi", Qty::units(1), 5_000, 0)],
            vec![pay("cash", 5_000)],
        );
        for width in [0, 10, 23, 81] {
            let err = render_text(&warung(), &s, &opts(width)).unwrap_err();
            assert!(matches!(err, ReceiptError::BadWidth(w) if w == width));
        }
        assert_eq!(
            ReceiptError::BadWidth(10).to_string(),
            "unsupported receipt width 10: use 24 to 80 columns"
        );
        assert!(render_text(&warung(), &s, &opts(24)).is_ok());
        assert!(render_text(&warung(), &s, &opts(80)).is_ok());
    }

    #[test]
    fn wrapping_keeps_numbers_whole_and_text_ascii() {
        assert_eq!(
            wrap("Harga spesial 1.250.000 rupiah", 12),
            ["Harga", "spesial", "1.250.000", "rupiah"]
        );
        assert_eq!(
            wrap("Teh Botol Sosro 450 ml isi 24", 16),
            ["Teh Botol Sosro", "450 ml isi 24"]
        );
        assert_eq!(wrap("ABCDEFGHIJ xy", 4), ["ABCD", "EFGH", "IJ", "xy"]);
        assert_eq!(wrap("  ", 10), Vec::<String>::new());
        assert_eq!(
            clean("Crème  Brûlée – ½\tporsi ☕"),
            "Creme Brulee - 1/2 porsi ?"
        );
        assert_eq!(payment_label("e_wallet"), "E-WALLET");
        assert_eq!(payment_label("go_pay"), "GO PAY");
        assert_eq!(
            local_time(JUNE_12_1405_WIB, 540).as_deref(),
            Some("12/06/2025 16:05")
        );
        assert_eq!(local_time(i64::MAX, 420), None);
        assert_eq!(percent(550), "5,50%");
    }

    /// SplitMix64: deterministic, good enough to shake the layout.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn amount(&mut self) -> Rupiah {
            match self.below(6) {
                0 => i64::MAX,
                1 => i64::MIN,
                2 => -(self.below(1_000_000) as i64),
                3 => self.next() as i64,
                _ => self.below(10_000_000_000) as i64,
            }
        }

        fn text(&mut self, max_words: u64) -> String {
            const PIECES: &[&str] = &[
                "Kecap",
                "Manis",
                "Bango",
                "550ml",
                "Ekstra",
                "Kental",
                "1.250.000",
                "x",
                "-",
                "Crème",
                "Brûlée",
                "–",
                "\t",
                "\n",
                "🍜",
                "Kopi",
                "½",
                "Gula",
                "Aren",
            ];
            let words = self.below(max_words + 1);
            let mut out = String::new();
            for _ in 0..words {
                if self.below(5) == 0 {
                    let len = self.below(100) as usize + 1;
                    out.extend((0..len).map(|i| char::from(b'A' + (i % 26) as u8)));
                } else {
                    out.push_str(PIECES[self.below(PIECES.len() as u64) as usize]);
                }
                out.push(if self.below(8) == 0 { '\u{a0}' } else { ' ' });
            }
            out
        }
    }

    #[test]
    fn random_receipts_never_exceed_the_width() {
        let mut rng = Rng(0x4B41_5349_5200_0001);
        let kinds = [
            TaxRule::none(),
            TaxRule::ppn_11(false),
            TaxRule::ppn_12_dpp_11_12(true),
            TaxRule::pbjt(1000, false),
        ];
        for round in 0..400 {
            let mut profile = StoreProfile::named(&rng.text(12));
            profile.address = Some(rng.text(30));
            profile.phone = Some(rng.text(3));
            profile.npwp = Some(rng.text(2));
            profile.receipt_header = Some(rng.text(10));
            profile.receipt_footer = Some(rng.text(20));
            profile.utc_offset_minutes = [420, 480, 540, 0, -600][rng.below(5) as usize];
            let lines = (0..rng.below(6))
                .map(|_| SaleLine {
                    product_id: "p".into(),
                    sku: rng.text(1),
                    name: rng.text(15),
                    qty: Qty(rng.amount()),
                    unit_price: rng.amount(),
                    discount: rng.amount(),
                    tax: rng.amount(),
                    line_total: rng.amount(),
                    tax_code: None,
                    unit: None,
                    promo: None,
                })
                .collect();
            let payments = (0..rng.below(4))
                .map(|_| pay(&rng.text(3), rng.amount()))
                .collect();
            let mut s = sale(Vec::new(), Vec::new());
            s.lines = lines;
            s.payments = payments;
            s.receipt_no = rng.text(3);
            s.till_code = rng.text(2);
            s.cashier = Some(rng.text(6));
            s.created_at_ms = rng.amount();
            let mut rule = kinds[round % kinds.len()];
            rule.service_bp = rng.below(1_000) as i64;
            s.tax_rule = rule;
            s.subtotal = rng.amount();
            s.service_charge = rng.amount();
            s.tax = rng.amount();
            s.dpp = rng.amount();
            s.dpp_other = rng.amount();
            s.rounding = rng.amount();
            s.total = rng.amount();
            s.change = rng.amount();
            for width in [32, 42, 48] {
                let opts = ReceiptOptions {
                    width,
                    status: Some(rng.text(8)),
                    reprint: rng.below(2) == 0,
                    qr: Some(rng.text(4)),
                    open_drawer: rng.below(2) == 0,
                };
                let text = render_text(&profile, &s, &opts).unwrap();
                assert!(text.ends_with('\n'));
                for block in layout(&profile, &s, &opts).unwrap().blocks {
                    if let Block::Line(line) = block {
                        let printed = line.cells_padded(width).chars().count();
                        assert!(
                            printed * line.size.width_factor() <= width,
                            "round {round}, width {width}: {line:?} is too wide on paper"
                        );
                    }
                }
                for line in text.lines() {
                    assert!(line.is_ascii(), "round {round}: non-ASCII {line:?}");
                    assert!(
                        line.chars().count() <= width,
                        "round {round}, width {width}: {line:?} is {} long",
                        line.chars().count()
                    );
                    assert_eq!(
                        line,
                        line.trim_end(),
                        "round {round}: trailing space in {line:?}"
                    );
                }
            }
        }
    }
}
