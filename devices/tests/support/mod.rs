//! Sales and stores for the devices tests and the receipt bench.
#![allow(dead_code, unreachable_pub, missing_docs)]

use kasir_crdt::money::{Qty, Rupiah};
use kasir_crdt::records::{Payment, Sale, SaleLine};
use kasir_crdt::store::StoreProfile;
use kasir_crdt::tax::TaxRule;

/// 12/06/2025 14:05 WIB.
pub const JUNE_12_1405_WIB: i64 = 1_749_711_900_000;

/// A static QRIS payload of a made-up merchant: well-formed EMVCo MPM TLVs, tag 63 the
/// CRC-16/CCITT-FALSE of the rest.
pub const QRIS: &str = "00020101021126570011ID.DANA.WWW011893600915302259148102090225914810303UMI51440014ID.CO.QRIS.WWW0215ID10200211817450303UMI5204581253033605802ID5913WARUNG BU SRI6006SLEMAN61055558162070703A0163041E1E";

pub fn item(name: &str, qty: Qty, unit_price: Rupiah, discount: Rupiah) -> SaleLine {
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

pub fn pay(method: &str, amount: Rupiah) -> Payment {
    Payment {
        method: method.to_owned(),
        amount,
        reference: None,
        confirmed_by: None,
    }
}

/// A sale of `lines` under `rule`, paid with `payments` (change from the overpayment).
pub fn sale(lines: Vec<SaleLine>, rule: TaxRule, payments: Vec<Payment>) -> Sale {
    let subtotal: Rupiah = lines.iter().map(|l| l.line_total).sum();
    let b = rule.apply(subtotal);
    let paid: Rupiah = payments.iter().map(|p| p.amount).sum();
    Sale {
        id: "0197667a-0000-7000-8000-000000000001".into(),
        client_id: None,
        receipt_no: "T1-250612-0042".into(),
        till: "till-endpoint".into(),
        till_code: "T1".into(),
        cashier: Some("Ani".into()),
        user_id: None,
        approved_by: None,
        created_at_ms: JUNE_12_1405_WIB,
        business_date: "2025-06-12".into(),
        lines,
        subtotal,
        service_charge: b.service_charge,
        tax: b.tax,
        dpp: b.dpp,
        dpp_other: b.dpp_other,
        tax_rule: rule,
        taxes: Vec::new(),
        seller: None,
        customer_id: None,
        due_date: None,
        customer_name: None,
        rounding: 0,
        total: b.gross,
        payments,
        change: (paid - b.gross).max(0),
    }
}

pub fn warung() -> StoreProfile {
    let mut p = StoreProfile::named("Warung Bu Sri");
    p.address = Some("Jl. Kaliurang Km 5 No. 12, Sleman, Yogyakarta".into());
    p.phone = Some("0812-2233-4455".into());
    p
}

/// A PKP minimarket charging PPN 12% on DPP 11/12, prices inclusive.
pub fn minimarket() -> StoreProfile {
    let mut p = StoreProfile::named("Toko Makmur Jaya");
    p.address = Some("Jl. Merdeka No. 10, Bandung".into());
    p.npwp = Some("0123456789012345".into());
    p.tax_rule = TaxRule::ppn_12_dpp_11_12(true);
    p
}

/// A small everyday sale.
pub fn small_sale() -> Sale {
    sale(
        vec![
            item("Indomie Goreng", Qty::units(3), 3_500, 0),
            item("Aqua 600ml", Qty::units(2), 4_000, 1_000),
        ],
        TaxRule::none(),
        vec![pay("cash", 20_000)],
    )
}

/// `n` lines of groceries.
pub fn many_lines(n: usize) -> Vec<SaleLine> {
    const NAMES: [&str; 8] = [
        "Beras Pandan Wangi 5kg",
        "Minyak Goreng Bimoli Klasik 2 Liter",
        "Gula Pasir Gulaku 1kg",
        "Telur Ayam Negeri",
        "Kecap Manis Bango Refill 550ml",
        "Teh Celup Sariwangi isi 25",
        "Sabun Mandi Lifebuoy 110g",
        "Susu Kental Manis Frisian Flag",
    ];
    (0..n)
        .map(|i| {
            let qty = if i % 5 == 3 {
                Qty(1_250)
            } else {
                Qty::units((i % 4) as i64 + 1)
            };
            item(
                NAMES[i % NAMES.len()],
                qty,
                3_000 + (i as Rupiah % 7) * 4_250,
                0,
            )
        })
        .collect()
}
