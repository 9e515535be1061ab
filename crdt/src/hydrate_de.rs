//! A serde [`Deserializer`] over Automerge's hydrated values, so a record decodes
//! straight into its Rust type instead of through a `serde_json::Value` built for the
//! purpose and thrown away (the detour cost a catch-up one tree of allocations per
//! record).
//!
//! It reads exactly what the JSON detour read: strings, integers, floats, booleans,
//! counters and timestamps as numbers, text objects as strings, and null, bytes and
//! unknown scalars as null; the tests below hold the two to the same answers, errors
//! included, on arbitrary values and on damaged sales.

use automerge::ScalarValue;
use automerge::hydrate::Value;
use serde::de::value::{Error, MapDeserializer, SeqDeserializer, StrDeserializer};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, Unexpected,
    VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;

/// Decodes `value` into `T`.
pub(crate) fn from_hydrated<T: DeserializeOwned>(value: &Value) -> Result<T, Error> {
    T::deserialize(ValueDe(value))
}

/// A hydrated value as a serde deserializer.
#[derive(Clone, Copy)]
struct ValueDe<'a>(&'a Value);

fn is_null(s: &ScalarValue) -> bool {
    matches!(
        s,
        ScalarValue::Null | ScalarValue::Bytes(_) | ScalarValue::Unknown { .. }
    )
}

impl<'de> IntoDeserializer<'de, Error> for ValueDe<'_> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> de::Deserializer<'de> for ValueDe<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Scalar(s) => match s {
                ScalarValue::Str(s) => visitor.visit_str(s),
                ScalarValue::Int(i) => visitor.visit_i64(*i),
                ScalarValue::Uint(u) => visitor.visit_u64(*u),
                ScalarValue::F64(f) if f.is_finite() => visitor.visit_f64(*f),
                // JSON has no NaN or infinity: the detour made them null.
                ScalarValue::F64(_) => visitor.visit_unit(),
                ScalarValue::Counter(c) => visitor.visit_i64(i64::from(c)),
                ScalarValue::Timestamp(t) => visitor.visit_i64(*t),
                ScalarValue::Boolean(b) => visitor.visit_bool(*b),
                _ => visitor.visit_unit(),
            },
            Value::Map(m) => {
                let mut map =
                    MapDeserializer::new(m.iter().map(|(k, v)| (k.as_str(), ValueDe(&v.value))));
                let out = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(out)
            }
            Value::List(l) => {
                let mut seq = SeqDeserializer::new(l.iter().map(|v| ValueDe(&v.value)));
                let out = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(out)
            }
            Value::Text(t) => visitor.visit_string(t.to_string()),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Scalar(s) if is_null(s) => visitor.visit_none(),
            Value::Scalar(ScalarValue::F64(f)) if !f.is_finite() => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Scalar(ScalarValue::Str(s)) => {
                visitor.visit_enum(StrDeserializer::<Error>::new(s.as_str()))
            }
            Value::Text(t) => visitor.visit_enum(t.to_string().into_deserializer()),
            Value::Map(m) => {
                let mut entries = m.iter();
                match (entries.next(), entries.next()) {
                    (Some((variant, value)), None) => visitor.visit_enum(Variant {
                        variant: variant.as_str(),
                        value: ValueDe(&value.value),
                    }),
                    _ => Err(de::Error::invalid_value(
                        Unexpected::Map,
                        &"a map with a single key",
                    )),
                }
            }
            _ => Err(de::Error::invalid_type(
                Unexpected::Other("value"),
                &"an enum",
            )),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

/// `{"Variant": value}`, an externally tagged enum variant with content.
struct Variant<'a> {
    variant: &'a str,
    value: ValueDe<'a>,
}

impl<'de, 'a> EnumAccess<'de> for Variant<'a> {
    type Error = Error;
    type Variant = ValueDe<'a>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), Error> {
        let v = seed.deserialize(StrDeserializer::<Error>::new(self.variant))?;
        Ok((v, self.value))
    }
}

impl<'de> VariantAccess<'de> for ValueDe<'_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        de::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_map(self, visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use automerge::ScalarValue;
    use automerge::hydrate::{self, Value};
    use proptest::prelude::*;
    use serde::de::DeserializeOwned;

    use super::from_hydrated;
    use crate::doc::{hydrate_to_json, json_to_hydrate};
    use crate::money::Qty;
    use crate::records::{Payment, Sale, SaleLine, StockMovement, Void};
    use crate::tax::TaxRule;

    /// The old path: hydrated value → `serde_json::Value` → `T`.
    fn through_json<T: DeserializeOwned>(v: &Value) -> Result<T, serde_json::Error> {
        serde_json::from_value(hydrate_to_json(v))
    }

    /// Both decoders agree: the same record, or both refuse.
    fn agree<T: DeserializeOwned + PartialEq + std::fmt::Debug>(v: &Value) {
        let direct = from_hydrated::<T>(v);
        let detour = through_json::<T>(v);
        match (&direct, &detour) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            _ => panic!("decoders disagree on {v:?}: direct {direct:?}, json {detour:?}"),
        }
    }

    fn sale(lines: usize, price: i64) -> Sale {
        let lines: Vec<SaleLine> = (0..lines)
            .map(|i| SaleLine {
                product_id: format!("p{i}"),
                sku: format!("SKU{i}"),
                name: format!("Barang {i}"),
                qty: Qty(1_000 + 250 * i as i64),
                unit_price: price,
                discount: 0,
                tax: 0,
                line_total: price,
                tax_code: None,
                unit: None,
                promo: None,
            })
            .collect();
        let total = lines.iter().map(|l| l.line_total).sum();
        Sale {
            id: "0190a0b0-0000-7000-8000-000000000001".into(),
            client_id: Some("c-1".into()),
            receipt_no: "T1-261203-0001".into(),
            till: "till".into(),
            till_code: "T1".into(),
            cashier: Some("Sari".into()),
            user_id: None,
            approved_by: None,
            created_at_ms: 1_764_700_000_000,
            business_date: "2026-12-03".into(),
            lines,
            subtotal: total,
            service_charge: 0,
            tax: 0,
            dpp: total,
            dpp_other: total,
            tax_rule: TaxRule::none(),
            taxes: Vec::new(),
            seller: None,
            customer_id: None,
            due_date: None,
            customer_name: None,
            rounding: 0,
            total,
            payments: vec![Payment {
                method: "qris".into(),
                amount: total,
                reference: Some("ref".into()),
                confirmed_by: Some("Sari".into()),
            }],
            change: 0,
        }
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            "[a-z0-9-]{0,6}".prop_map(|s| Value::from(s.as_str())),
            (-3i64..400).prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| Value::Scalar(ScalarValue::F64(f))),
            any::<bool>().prop_map(|b| Value::Scalar(ScalarValue::Boolean(b))),
            Just(Value::Scalar(ScalarValue::Null)),
            Just(Value::Scalar(ScalarValue::Bytes(vec![1, 2]))),
            any::<i64>().prop_map(|t| Value::Scalar(ScalarValue::Timestamp(t))),
            "[a-z]{0,4}".prop_map(|s| Value::text(automerge::TextEncoding::platform_default(), &s)),
        ]
    }

    /// Keys records use, so arbitrary maps sometimes look like the real thing.
    const KEYS: &[&str] = &[
        "id",
        "receipt_no",
        "till",
        "till_code",
        "cashier",
        "created_at_ms",
        "business_date",
        "lines",
        "subtotal",
        "total",
        "payments",
        "method",
        "amount",
        "sku",
        "qty",
        "unit_price",
        "kind",
        "sale_id",
        "reason",
        "at_ms",
        "product_id",
        "name",
        "tax_rule",
        "change",
        "x",
    ];

    fn value() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::hash_map(prop::sample::select(KEYS), inner, 0..7).prop_map(
                    |m: HashMap<&str, Value>| {
                        let m: HashMap<String, Value> =
                            m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                        Value::Map(hydrate::Map::from(m))
                    }
                ),
            ]
        })
    }

    /// A real sale with one field replaced by an arbitrary value (or removed).
    fn mutated_sale() -> impl Strategy<Value = Value> {
        (
            1usize..5,
            1i64..100_000,
            prop::sample::select(KEYS),
            prop::option::of(value()),
        )
            .prop_map(|(lines, price, key, replacement)| {
                let mut json = serde_json::to_value(sale(lines, price)).expect("a sale as JSON");
                if let Some(fields) = json.as_object_mut() {
                    match replacement {
                        Some(v) => {
                            fields.insert(key.to_owned(), hydrate_to_json(&v));
                        }
                        None => {
                            fields.remove(key);
                        }
                    }
                }
                json_to_hydrate(&json)
            })
    }

    #[test]
    fn records_decode_the_same_directly_and_through_json() {
        for lines in [0, 1, 4] {
            let s = sale(lines, 3_100);
            let v = json_to_hydrate(&serde_json::to_value(&s).expect("json"));
            assert_eq!(from_hydrated::<Sale>(&v).expect("decodes"), s);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn decoders_agree_on_arbitrary_values(v in value()) {
            agree::<Sale>(&v);
            agree::<Void>(&v);
            agree::<StockMovement>(&v);
            agree::<Option<i64>>(&v);
            agree::<Vec<String>>(&v);
        }

        #[test]
        fn decoders_agree_on_damaged_sales(v in mutated_sale()) {
            agree::<Sale>(&v);
        }
    }
}
