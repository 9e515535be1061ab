//! A serde [`Deserializer`] that reads a record straight out of the Automerge document,
//! so a record decodes into its Rust type without first being hydrated into a tree of
//! maps and then into a `serde_json::Value` (the detour cost a catch-up two trees of
//! allocations per record, and a separate walk for the depth limit).
//!
//! It reads exactly what the detour read: strings, integers, floats, booleans, counters
//! and timestamps as numbers, text objects as strings, null, bytes and unknown scalars
//! as null, and refuses objects nested deeper than [`MAX_DEPTH`] on the way down; the
//! tests below hold the two to the same answers, errors included, on arbitrary values
//! and on damaged sales.

use std::borrow::Cow;

use automerge::{AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue, Value};
use serde::de::value::{CowStrDeserializer, Error, MapDeserializer, SeqDeserializer};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, Unexpected,
    VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;

use crate::doc::MAX_DEPTH;

/// Decodes the record `value` (object `id` when it is one) of `am` into `T`.
pub(crate) fn from_doc<T: DeserializeOwned>(
    am: &AutoCommit,
    value: Value<'_>,
    id: ObjId,
) -> Result<T, Error> {
    T::deserialize(DocDe {
        am,
        value,
        id,
        depth: 1,
    })
}

/// One value of the document as a serde deserializer: a scalar, or an object read
/// through `am` as the visitor asks for it.
struct DocDe<'a> {
    am: &'a AutoCommit,
    value: Value<'a>,
    id: ObjId,
    /// How deep this object is (the record itself is 1).
    depth: usize,
}

fn is_null(s: &ScalarValue) -> bool {
    match s {
        ScalarValue::Null | ScalarValue::Bytes(_) | ScalarValue::Unknown { .. } => true,
        // JSON has no NaN or infinity: the detour made them null.
        ScalarValue::F64(f) => !f.is_finite(),
        _ => false,
    }
}

impl<'a> DocDe<'a> {
    fn child(&self, value: Value<'a>, id: ObjId) -> DocDe<'a> {
        DocDe {
            am: self.am,
            value,
            id,
            depth: self.depth + 1,
        }
    }

    fn check_depth(&self) -> Result<(), Error> {
        if self.depth > MAX_DEPTH {
            return Err(de::Error::custom(format!(
                "nested deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(())
    }

    /// The entries of a map object, winners only (as hydrating reads them).
    fn entries(&self) -> Vec<(Cow<'a, str>, DocDe<'a>)> {
        self.am
            .map_range(&self.id, ..)
            .map(|item| {
                let id = item.id();
                (item.key, self.child(item.value.into(), id))
            })
            .collect()
    }

    fn text(&self) -> Result<String, Error> {
        self.am
            .text(&self.id)
            .map_err(|e| de::Error::custom(e.to_string()))
    }
}

impl<'de, 'a> IntoDeserializer<'de, Error> for DocDe<'a> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de, 'a> de::Deserializer<'de> for DocDe<'a> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.value {
            Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Str(s) => visitor.visit_str(s),
                ScalarValue::Int(i) => visitor.visit_i64(*i),
                ScalarValue::Uint(u) => visitor.visit_u64(*u),
                ScalarValue::F64(f) if f.is_finite() => visitor.visit_f64(*f),
                ScalarValue::Counter(c) => visitor.visit_i64(i64::from(c)),
                ScalarValue::Timestamp(t) => visitor.visit_i64(*t),
                ScalarValue::Boolean(b) => visitor.visit_bool(*b),
                _ => visitor.visit_unit(),
            },
            Value::Object(ObjType::Map | ObjType::Table) => {
                self.check_depth()?;
                let mut map = MapDeserializer::new(self.entries().into_iter());
                let out = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(out)
            }
            Value::Object(ObjType::List) => {
                self.check_depth()?;
                let items: Vec<DocDe<'a>> = self
                    .am
                    .list_range(&self.id, ..)
                    .map(|item| {
                        let id = item.id();
                        self.child(item.value.into(), id)
                    })
                    .collect();
                let mut seq = SeqDeserializer::new(items.into_iter());
                let out = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(out)
            }
            Value::Object(ObjType::Text) => {
                self.check_depth()?;
                visitor.visit_string(self.text()?)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.value {
            Value::Scalar(s) if is_null(s) => visitor.visit_none(),
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
        match &self.value {
            Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Str(s) => visitor.visit_enum(s.to_string().into_deserializer()),
                _ => Err(de::Error::invalid_type(
                    Unexpected::Other("scalar"),
                    &"an enum",
                )),
            },
            Value::Object(ObjType::Text) => {
                self.check_depth()?;
                visitor.visit_enum(self.text()?.into_deserializer())
            }
            Value::Object(ObjType::Map | ObjType::Table) => {
                self.check_depth()?;
                let mut entries = self.entries().into_iter();
                match (entries.next(), entries.next()) {
                    (Some((variant, value)), None) => {
                        visitor.visit_enum(Variant { variant, value })
                    }
                    _ => Err(de::Error::invalid_value(
                        Unexpected::Map,
                        &"a map with a single key",
                    )),
                }
            }
            Value::Object(ObjType::List) => {
                Err(de::Error::invalid_type(Unexpected::Seq, &"an enum"))
            }
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
    variant: Cow<'a, str>,
    value: DocDe<'a>,
}

impl<'de, 'a> EnumAccess<'de> for Variant<'a> {
    type Error = Error;
    type Variant = DocDe<'a>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), Error> {
        let v = seed.deserialize(CowStrDeserializer::<Error>::new(self.variant))?;
        Ok((v, self.value))
    }
}

impl<'de, 'a> VariantAccess<'de> for DocDe<'a> {
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
pub(crate) mod tests {
    use std::collections::HashMap;

    use automerge::ScalarValue;
    use automerge::hydrate::{self, Value};
    use proptest::prelude::*;
    use serde::de::DeserializeOwned;

    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT, ReadDoc};

    use super::from_doc;
    use crate::doc::{hydrate_to_json, json_to_hydrate};
    use crate::money::Qty;
    use crate::records::{Payment, Sale, SaleLine, StockMovement, Void};
    use crate::tax::TaxRule;

    /// `v` written into a document as a record, as `put_record` writes one.
    fn written(v: &Value) -> AutoCommit {
        let mut am = AutoCommit::new();
        match v {
            Value::Scalar(s) => am.put(ROOT, "r", s.clone()).expect("put"),
            _ => {
                am.batch_create_object(ROOT, "r", v, false).expect("write");
            }
        }
        am
    }

    /// The new path: straight out of the document.
    fn from_the_doc<T: DeserializeOwned>(am: &AutoCommit) -> Result<T, serde::de::value::Error> {
        let (value, id) = am.get(ROOT, "r").expect("get").expect("present");
        from_doc(am, value, id)
    }

    /// The old path: hydrated (the depth checked first) → `serde_json::Value` → `T`.
    fn through_json<T: DeserializeOwned>(am: &AutoCommit) -> Result<T, String> {
        let (value, id) = am.get(ROOT, "r").expect("get").expect("present");
        let hydrated = match value {
            automerge::Value::Object(_) => {
                if depth(&am.hydrate(&id, None).expect("hydrate")) > crate::doc::MAX_DEPTH {
                    return Err("too deep".into());
                }
                am.hydrate(&id, None).expect("hydrate")
            }
            automerge::Value::Scalar(s) => Value::Scalar(s.into_owned()),
        };
        serde_json::from_value(hydrate_to_json(&hydrated)).map_err(|e| e.to_string())
    }

    /// Object nesting depth of a hydrated value (a scalar is 0).
    fn depth(v: &Value) -> usize {
        match v {
            Value::Scalar(_) => 0,
            Value::Text(_) => 1,
            Value::Map(m) => 1 + m.iter().map(|(_, v)| depth(&v.value)).max().unwrap_or(0),
            Value::List(l) => 1 + l.iter().map(|v| depth(&v.value)).max().unwrap_or(0),
        }
    }

    /// Both decoders agree: the same record, or both refuse.
    fn agree<T: DeserializeOwned + PartialEq + std::fmt::Debug>(v: &Value) {
        let am = written(v);
        let direct = from_the_doc::<T>(&am);
        let detour = through_json::<T>(&am);
        match (&direct, &detour) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            _ => panic!("decoders disagree on {v:?}: direct {direct:?}, json {detour:?}"),
        }
    }

    /// A sale of `lines` lines at `price` each (shared with other modules' tests).
    pub(crate) fn sale(lines: usize, price: i64) -> Sale {
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
        scalar().prop_recursive(20, 64, 6, |inner| {
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
            assert_eq!(from_the_doc::<Sale>(&written(&v)).expect("decodes"), s);
        }
    }

    #[test]
    fn records_nested_deeper_than_the_limit_are_refused() {
        for levels in [1, crate::doc::MAX_DEPTH, crate::doc::MAX_DEPTH + 1, 200] {
            let mut v = Value::from(7i64);
            for _ in 0..levels {
                let m: HashMap<String, Value> = [("x".to_owned(), v)].into_iter().collect();
                v = Value::Map(hydrate::Map::from(m));
            }
            agree::<serde_json::Value>(&v);
            let decoded = from_the_doc::<serde_json::Value>(&written(&v));
            assert_eq!(
                decoded.is_ok(),
                levels <= crate::doc::MAX_DEPTH,
                "{levels} levels: {decoded:?}"
            );
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
