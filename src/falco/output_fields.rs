//! A JSON record's `output_fields`: the keys the verdict reads for every alert, taken without
//! building a tree, and the object's text for the rest, parsed only when something asks (the
//! alert list printed, an ignore entry's field, a plugin's own key). A noisy namespace sends
//! every one of its alerts through here; most are counted and never printed.

use std::borrow::Cow;
use std::sync::OnceLock;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The keys read for every alert: whose it is, when, and which container and workload.
const KNOWN: [&str; 9] = [
    "k8s.ns.name",
    "ka.target.namespace",
    "ka.target.name",
    "evt.time",
    "container.id",
    "container.name",
    "k8s.pod.name",
    "container.image.repository",
    "container.image.tag",
];

/// The fields Falco printed with an alert.
#[derive(Debug, Clone)]
pub struct Fields {
    /// The [`KNOWN`] keys present, each with its last value (as a map keeps the last).
    known: Vec<(&'static str, Value)>,
    /// The object as Falco wrote it.
    raw: Box<RawValue>,
    /// Every key, parsed from `raw` on first use.
    all: OnceLock<Map<String, Value>>,
}

impl Fields {
    /// The fields of `raw`; `None` unless it is a JSON object (`null` is no fields).
    pub fn new(raw: Box<RawValue>) -> Option<Fields> {
        let known = serde_json::from_str::<Known>(raw.get()).ok()?.0;
        Some(Fields {
            known,
            raw,
            all: OnceLock::new(),
        })
    }

    /// The fields of a map (Falco's metrics file, tests).
    pub fn from_map(map: Map<String, Value>) -> Option<Fields> {
        let raw = serde_json::value::to_raw_value(&map).ok()?;
        let fields = Fields::new(raw)?;
        let _ = fields.all.set(map);
        Some(fields)
    }

    /// One field's value.
    /// The object as Falco wrote it.
    pub fn raw(&self) -> &str {
        self.raw.get()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        if KNOWN.contains(&key) {
            return self.known.iter().find(|(k, _)| *k == key).map(|(_, v)| v);
        }
        self.all().get(key)
    }

    /// Every field (parsed now if it was not yet).
    pub fn all(&self) -> &Map<String, Value> {
        self.all
            .get_or_init(|| serde_json::from_str(self.raw.get()).unwrap_or_default())
    }
}

impl PartialEq for Fields {
    fn eq(&self, other: &Fields) -> bool {
        self.all() == other.all()
    }
}

impl serde::Serialize for Fields {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.all().serialize(s)
    }
}

/// The [`KNOWN`] keys of an object, the others skipped unparsed.
struct Known(Vec<(&'static str, Value)>);

impl<'de> Deserialize<'de> for Known {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Known, D::Error> {
        d.deserialize_map(KnownVisitor)
    }
}

struct KnownVisitor;

impl<'de> Visitor<'de> for KnownVisitor {
    type Value = Known;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Known, A::Error> {
        let mut known: Vec<(&'static str, Value)> = Vec::new();
        while let Some(Key(key)) = m.next_key::<Key<'de>>()? {
            match KNOWN.iter().find(|k| **k == key) {
                Some(k) => {
                    let v: Value = m.next_value()?;
                    match known.iter_mut().find(|(n, _)| n == k) {
                        Some(slot) => slot.1 = v,
                        None => known.push((k, v)),
                    }
                }
                None => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Known(known))
    }
}

/// An object key, borrowed from the input unless it holds an escape.
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key<'de>, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A JSON record: its top-level keys, and its `output_fields` kept as text.
pub(crate) struct Record {
    pub top: Map<String, Value>,
    pub fields: Option<Box<RawValue>>,
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Record, D::Error> {
        struct RecordVisitor;
        impl<'de> Visitor<'de> for RecordVisitor {
            type Value = Record;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Record, A::Error> {
                let (mut top, mut fields) = (Map::new(), None);
                while let Some(Key(key)) = m.next_key::<Key<'de>>()? {
                    if key == "output_fields" {
                        fields = Some(m.next_value::<Box<RawValue>>()?);
                    } else {
                        top.insert(key.into_owned(), m.next_value()?);
                    }
                }
                Ok(Record { top, fields })
            }
        }
        d.deserialize_map(RecordVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Option<Fields> {
        Fields::new(serde_json::from_str::<Box<RawValue>>(text).expect("json"))
    }

    #[test]
    fn known_keys_without_a_tree_the_rest_on_demand() {
        let f = fields(r#"{"k8s.ns.name":"a","proc.cmdline":"sh","k8s.ns.name":"b","evt.time":7,"container.id":null}"#)
            .expect("object");
        // The last value wins, as in a map.
        assert_eq!(f.get("k8s.ns.name"), Some(&Value::from("b")));
        assert_eq!(f.get("evt.time").and_then(Value::as_i64), Some(7));
        assert_eq!(f.get("container.id"), Some(&Value::Null));
        assert!(f.all.get().is_none(), "known keys parse nothing else");
        assert_eq!(f.get("proc.cmdline"), Some(&Value::from("sh")));
        assert_eq!(f.get("k8s.pod.name"), None);
        assert_eq!(serde_json::to_value(&f).expect("ser")["k8s.ns.name"], "b");
        assert!(fields("null").is_none() && fields("[1]").is_none() && fields("\"x\"").is_none());
        let escaped = fields(r#"{"k8s.ns\u002ename":"c"}"#).expect("object");
        assert_eq!(escaped.get("k8s.ns.name"), Some(&Value::from("c")));
    }

    #[test]
    fn a_record_keeps_its_fields_as_text() {
        let r: Record = serde_json::from_str(
            r#"{"rule":"R","output_fields":{"a":[1,{"b":2}]},"priority":"Warning"}"#,
        )
        .expect("record");
        assert_eq!(r.top.len(), 2);
        assert_eq!(
            r.fields.map(|f| f.get().to_string()).as_deref(),
            Some(r#"{"a":[1,{"b":2}]}"#)
        );
        assert!(serde_json::from_str::<Record>("[1]").is_err());
    }
}
