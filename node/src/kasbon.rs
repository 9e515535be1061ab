//! Customers and kasbon (sales on credit): who owes what, overdue first.
//!
//! A customer is a record in the ledger of the till that added (or last edited) them; a
//! sale on credit is a sale paid (partly) by the `kasbon` method, with its customer and
//! due date; a repayment is a [`DebtPayment`] in the ledger of the till that took it.
//! Every till and the relay index the same records, so a balance — the sum of
//! `debt_entries`: credits, less voids and kasbon refunds, less payments — is the same
//! everywhere once the ledgers have synced, whichever till each entry came from.
//! Repayments go to the oldest credit first; the first credit not yet covered gives the
//! customer's next due date, and past it the customer is overdue.

use std::collections::BTreeMap;

use kasir_crdt::records::{Customer, DebtPayment, canonical_method};
use kasir_crdt::{BusinessDate, pricing};
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};

use crate::error::NodeError;
use crate::node::{Node, now_ms};
use crate::tables;

/// A customer to add, or to change when `customer_id` names one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    /// The customer to change; absent for a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// Name.
    pub name: String,
    /// Phone (WhatsApp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Member tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// `false` stops new kasbon for the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// A customer with what they owe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerBalance {
    /// Customer id.
    pub customer_id: String,
    /// Name.
    pub name: String,
    /// Phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Member tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Whether new kasbon is allowed.
    pub active: bool,
    /// What they owe now (negative: paid in advance).
    pub balance: i64,
    /// When the oldest credit not yet paid falls due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<String>,
    /// Whether that date has passed with money still owed.
    pub overdue: bool,
}

/// A payment against kasbon.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KasbonPaymentInput {
    /// Whose debt (the path's `{customer_id}` over HTTP).
    pub customer_id: String,
    /// How much.
    pub amount: i64,
    /// How (`cash` by default; `tunai`, `qris`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The payment's reference on a non-cash payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// A recorded kasbon payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KasbonPaid {
    /// The payment's id.
    pub payment_id: String,
    /// What the customer still owes.
    pub balance: i64,
}

fn validate_customer(input: &CustomerInput) -> Result<(), NodeError> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Err(NodeError::Invalid(format!(
            "invalid customer name {:?}: 1 to 80 printable characters",
            input.name
        )));
    }
    if let Some(phone) = &input.phone
        && (phone.chars().count() > 20
            || !phone
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ')))
    {
        return Err(NodeError::Invalid(format!(
            "invalid phone {phone:?}: digits, +, - and spaces, at most 20"
        )));
    }
    if let Some(tier) = &input.tier
        && (tier.chars().count() > 30 || tier.chars().any(char::is_control))
    {
        return Err(NodeError::Invalid(format!("invalid member tier {tier:?}")));
    }
    Ok(())
}

impl Node {
    /// Adds a customer, or writes a new version of one (`customer_id` given).
    pub fn save_customer(&mut self, input: &CustomerInput) -> Result<CustomerBalance, NodeError> {
        validate_customer(input)?;
        let existing = match &input.customer_id {
            Some(id) => Some(self.customer(id)?),
            None => None,
        };
        let customer = Customer {
            id: input
                .customer_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            name: input.name.trim().to_owned(),
            phone: input
                .phone
                .clone()
                .or_else(|| existing.as_ref().and_then(|c| c.phone.clone()))
                .filter(|p| !p.trim().is_empty()),
            tier: input
                .tier
                .clone()
                .or_else(|| existing.as_ref().and_then(|c| c.tier.clone()))
                .filter(|t| !t.trim().is_empty()),
            active: input
                .active
                .or(existing.as_ref().map(|c| c.active))
                .unwrap_or(true),
            // A version is newer than the one it replaces even on a clock behind.
            at_ms: now_ms().max(
                self.db
                    .query_row(
                        "SELECT updated_at_ms + 1 FROM customers WHERE customer_id = ?1",
                        [input.customer_id.as_deref().unwrap_or_default()],
                        |r| r.get(0),
                    )
                    .optional()?
                    .unwrap_or(0),
            ),
            till_code: Some(self.till_code.clone()),
        };
        self.write_ledger(
            |l| l.record_customer(&customer).map(drop),
            |tx, _| tables::index_customer(tx, &customer),
        )?;
        self.customer(&customer.id)
    }

    /// One customer with their balance.
    pub fn customer(&self, customer_id: &str) -> Result<CustomerBalance, NodeError> {
        self.customers(None)?
            .into_iter()
            .find(|c| c.customer_id == customer_id)
            .ok_or_else(|| NodeError::NotFound(format!("customer {customer_id}")))
    }

    /// Customers (matching `query` in name or phone, when given) with what they owe:
    /// overdue first, then by balance, largest first, then by name.
    pub fn customers(&self, query: Option<&str>) -> Result<Vec<CustomerBalance>, NodeError> {
        let today = self.today();
        let mut owed = self.debts()?;
        let mut stmt = self.db.prepare_cached(
            "SELECT customer_id, name, phone, tier, active FROM customers ORDER BY name",
        )?;
        let needle = query
            .map(|q| q.trim().to_lowercase())
            .filter(|q| !q.is_empty());
        let mut out = Vec::new();
        for row in stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, bool>(4)?,
            ))
        })? {
            let (customer_id, name, phone, tier, active) = row?;
            if let Some(n) = &needle
                && !name.to_lowercase().contains(n.as_str())
                && !phone.as_deref().is_some_and(|p| p.contains(n.as_str()))
            {
                continue;
            }
            let debt = owed.remove(&customer_id).unwrap_or_default();
            let (balance, due_date) = debt.balance_and_due();
            let overdue = balance > 0 && due_date.as_deref().is_some_and(|d| d < today.as_str());
            out.push(CustomerBalance {
                customer_id,
                name,
                phone,
                tier,
                active,
                balance,
                due_date: if balance > 0 { due_date } else { None },
                overdue,
            });
        }
        out.sort_by(|a, b| {
            b.overdue
                .cmp(&a.overdue)
                .then(b.balance.cmp(&a.balance))
                .then(a.name.cmp(&b.name))
        });
        Ok(out)
    }

    /// Every customer's entries: credits (net of their voids and refunds, in order)
    /// and the payments' sum.
    fn debts(&self) -> Result<BTreeMap<String, Debt>, NodeError> {
        let mut stmt = self.db.prepare_cached(
            "SELECT COALESCE(e.customer_id, c.customer_id), e.kind, e.amount,
                    COALESCE(e.sale_id, ''), c.due_date, COALESCE(c.at_ms, e.at_ms)
               FROM debt_entries e
               LEFT JOIN debt_entries c ON e.customer_id IS NULL AND c.kind = 'credit'
                                       AND c.sale_id = e.sale_id
              WHERE e.kind <> 'credit'
             UNION ALL
             SELECT customer_id, kind, amount, sale_id, due_date, at_ms
               FROM debt_entries WHERE kind = 'credit'",
        )?;
        let mut debts: BTreeMap<String, Debt> = BTreeMap::new();
        for row in stmt.query_map([], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })? {
            let (customer, kind, amount, sale, due, at_ms) = row?;
            // A reversal whose credit has not arrived yet belongs to nobody so far.
            let Some(customer) = customer else { continue };
            let debt = debts.entry(customer).or_default();
            if kind == "payment" {
                debt.paid -= amount;
            } else {
                let credit = debt.credits.entry((at_ms, sale)).or_insert((0, None));
                credit.0 += amount;
                if due.is_some() {
                    credit.1 = due;
                }
            }
        }
        Ok(debts)
    }

    /// Takes a payment against a customer's kasbon, in this till's drawer when cash. A
    /// payment of more than this till knows is owed is refused.
    pub fn pay_kasbon(
        &mut self,
        input: &KasbonPaymentInput,
        cashier: Option<String>,
    ) -> Result<KasbonPaid, NodeError> {
        let customer = self.customer(&input.customer_id)?;
        let method = canonical_method(input.method.as_deref().unwrap_or("cash"));
        if method == kasir_crdt::records::KASBON
            || !pricing::valid_method(&method)
            || input
                .reference
                .as_deref()
                .is_some_and(|r| !pricing::valid_reference(r))
        {
            return Err(NodeError::Invalid(format!(
                "invalid payment method {method:?} or reference for a kasbon payment"
            )));
        }
        if input.amount <= 0 {
            return Err(NodeError::Invalid("the amount must be positive".into()));
        }
        if input.amount > customer.balance {
            return Err(NodeError::Invalid(format!(
                "{} owes Rp{}; a payment of Rp{} is more than that",
                customer.name,
                kasir_crdt::money::format_number(customer.balance.max(0)),
                kasir_crdt::money::format_number(input.amount)
            )));
        }
        let payment = DebtPayment {
            id: uuid::Uuid::now_v7().to_string(),
            customer_id: customer.customer_id.clone(),
            amount: input.amount,
            method,
            reference: input.reference.clone(),
            at_ms: now_ms(),
            till_code: Some(self.till_code.clone()),
            cashier,
        };
        self.write_ledger(
            |l| l.record_debt_payment(&payment).map(drop),
            |tx, place| tables::index_debt_payment(tx, &payment, place),
        )?;
        Ok(KasbonPaid {
            payment_id: payment.id,
            balance: self.customer(&customer.customer_id)?.balance,
        })
    }

    /// Checks a sale's customer and due date: a kasbon part needs an active customer,
    /// a due date is a date from today on.
    pub(crate) fn check_sale_customer(
        &self,
        customer_id: Option<&str>,
        due_date: Option<&str>,
        kasbon: i64,
    ) -> Result<(), NodeError> {
        let customer = customer_id.map(|id| self.customer(id)).transpose()?;
        if kasbon > 0 {
            match &customer {
                None => {
                    return Err(NodeError::Invalid(
                        "a kasbon sale needs its customer (customer_id)".into(),
                    ));
                }
                Some(c) if !c.active => {
                    return Err(NodeError::Invalid(format!(
                        "{} takes no new kasbon",
                        c.name
                    )));
                }
                Some(_) => {}
            }
        }
        if let Some(due) = due_date {
            let date: BusinessDate = due.parse().map_err(|_| {
                NodeError::Invalid(format!("invalid due date {due:?}: use YYYY-MM-DD"))
            })?;
            if date.as_str() < self.today().as_str() {
                return Err(NodeError::Invalid(format!(
                    "the due date {due} has already passed"
                )));
            }
            if kasbon <= 0 {
                return Err(NodeError::Invalid(
                    "a due date is for a kasbon sale (pay part by kasbon)".into(),
                ));
            }
        }
        Ok(())
    }
}

/// One customer's kasbon as entries.
#[derive(Debug, Default)]
struct Debt {
    /// Credits by (time, sale): amount net of reversals, due date.
    credits: BTreeMap<(i64, String), (i64, Option<String>)>,
    /// Payments, summed.
    paid: i64,
}

impl Debt {
    /// The balance, and the due date of the oldest credit payments have not covered.
    fn balance_and_due(&self) -> (i64, Option<String>) {
        let owed: i64 = self.credits.values().map(|(a, _)| a).sum();
        let mut covered = self.paid;
        let mut due = None;
        for (amount, date) in self.credits.values() {
            if *amount <= 0 {
                continue;
            }
            if covered >= *amount {
                covered -= amount;
            } else {
                due = date.clone();
                break;
            }
        }
        (owed - self.paid, due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debt(credits: &[(i64, i64, Option<&str>)], paid: i64) -> Debt {
        Debt {
            credits: credits
                .iter()
                .map(|(at, amount, due)| {
                    ((*at, format!("s{at}")), (*amount, due.map(str::to_owned)))
                })
                .collect(),
            paid,
        }
    }

    #[test]
    fn payments_cover_the_oldest_credit_first() {
        let d = debt(
            &[
                (1, 50_000, Some("2026-12-10")),
                (2, 30_000, Some("2026-12-20")),
            ],
            0,
        );
        assert_eq!(d.balance_and_due(), (80_000, Some("2026-12-10".into())));
        let d = debt(
            &[
                (1, 50_000, Some("2026-12-10")),
                (2, 30_000, Some("2026-12-20")),
            ],
            50_000,
        );
        assert_eq!(d.balance_and_due(), (30_000, Some("2026-12-20".into())));
        let d = debt(
            &[
                (1, 50_000, Some("2026-12-10")),
                (2, 30_000, Some("2026-12-20")),
            ],
            20_000,
        );
        assert_eq!(d.balance_and_due(), (60_000, Some("2026-12-10".into())));
        // A voided credit (net 0) is skipped; everything paid: nothing due.
        let d = debt(&[(1, 0, Some("2026-12-01")), (2, 30_000, None)], 30_000);
        assert_eq!(d.balance_and_due(), (0, None));
    }
}
