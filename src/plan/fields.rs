//! Plan fields that never stop the parse: every wrong type, missing field and unknown key of a
//! plan is collected with its position, so `plan validate` reports all of them at once.
//!
//! serde stops at the first error. So the plan's raw form is built from [`Typed`] leaves (any
//! TOML value is accepted, with its span, and converted afterwards: a wrong type becomes a
//! problem at that span) and [`List`]s (an array, or a problem when the value is not one);
//! required fields are `Option`s checked by the builder; unknown keys are collected by
//! `serde_ignored` and located in the document with `toml_edit`.

use serde::de::{Deserialize, DeserializeOwned, Deserializer};
use std::ops::Range;
use toml::Spanned;

/// A leaf value: converted to `T`, or why not, with where it was written.
#[derive(Debug, Clone)]
pub struct Typed<T> {
    pub span: Range<usize>,
    pub value: Result<T, String>,
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Typed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Spanned::<toml::Value>::deserialize(deserializer)?;
        let span = raw.span();
        let raw = raw.into_inner();
        let found = raw.type_str();
        let value = T::deserialize(raw).map_err(|e| {
            let message = e.message().trim().to_string();
            // serde says "invalid type: integer `1`, expected a string"; say it the other
            // way round, with TOML's names.
            match message.split_once(", expected ") {
                Some((_, expected)) if message.starts_with("invalid type") => {
                    let expected = match expected {
                        "u64" | "u32" | "u16" | "usize" => "a whole number",
                        other => other,
                    };
                    format!("expected {expected}, found {}", article(found))
                }
                _ => message,
            }
        });
        Ok(Typed { span, value })
    }
}

fn article(toml_type: &str) -> String {
    match toml_type {
        "integer" | "array" => format!("an {toml_type}"),
        "table" | "string" | "float" | "boolean" | "datetime" => format!("a {toml_type}"),
        other => other.to_string(),
    }
}

/// An array field: its elements, or a problem when the value is not an array.
#[derive(Debug, Clone)]
pub struct List<E> {
    pub span: Range<usize>,
    pub items: Result<Vec<E>, String>,
}

impl<E> Default for List<E> {
    fn default() -> Self {
        List {
            span: 0..0,
            items: Ok(Vec::new()),
        }
    }
}

impl<E> List<E> {
    /// The elements (none when the value was not an array: that problem is reported apart).
    pub fn iter(&self) -> std::slice::Iter<'_, E> {
        match &self.items {
            Ok(items) => items.iter(),
            Err(_) => [].iter(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.iter().len() == 0
    }
}

/// What a `List` reads: an array of `E`, or anything else noted as the wrong type.
enum ListValue<E> {
    Items(Vec<E>),
    Wrong(&'static str),
}

impl<'de, E: Deserialize<'de>> Deserialize<'de> for ListValue<E> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<E>(std::marker::PhantomData<E>);
        macro_rules! wrong {
            ($name:ident, $t:ty, $what:literal) => {
                fn $name<X: serde::de::Error>(self, _: $t) -> Result<Self::Value, X> {
                    Ok(ListValue::Wrong($what))
                }
            };
        }
        impl<'de, E: Deserialize<'de>> serde::de::Visitor<'de> for Visit<E> {
            type Value = ListValue<E>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(ListValue::Items(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(ListValue::Wrong("a table"))
            }
            wrong!(visit_str, &str, "a string");
            wrong!(visit_i64, i64, "an integer");
            wrong!(visit_u64, u64, "an integer");
            wrong!(visit_f64, f64, "a float");
            wrong!(visit_bool, bool, "a boolean");
        }
        deserializer.deserialize_any(Visit(std::marker::PhantomData))
    }
}

impl<'de, E: Deserialize<'de>> Deserialize<'de> for List<E> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Spanned::<ListValue<E>>::deserialize(deserializer)?;
        let span = raw.span();
        let items = match raw.into_inner() {
            ListValue::Items(items) => Ok(items),
            ListValue::Wrong(found) => Err(format!("expected an array, found {found}")),
        };
        Ok(List { span, items })
    }
}

/// Deserializes `text`, collecting the paths of keys the plan format does not know.
pub fn from_str_collecting_unknown<T: DeserializeOwned>(
    text: &str,
) -> Result<(T, Vec<Vec<String>>), toml::de::Error> {
    let mut unknown = Vec::new();
    let deserializer = toml::Deserializer::new(text);
    let value = serde_ignored::deserialize(deserializer, |path| {
        let mut segments = Vec::new();
        segments_of(&path, &mut segments);
        unknown.push(segments);
    })?;
    Ok((value, unknown))
}

fn segments_of(path: &serde_ignored::Path<'_>, out: &mut Vec<String>) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            segments_of(parent, out);
            out.push(index.to_string());
        }
        Path::Map { parent, key } => {
            segments_of(parent, out);
            // Spanned's own fields are an implementation detail of the parse, not the plan's.
            if !key.starts_with("$__serde_spanned") {
                out.push(key.clone());
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => segments_of(parent, out),
    }
}

/// The span of the key at `path` (table keys and array indexes), found in the document.
pub fn key_span(text: &str, path: &[String]) -> Option<Range<usize>> {
    use toml_edit::{Item, TableLike, Value};
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let (last, parents) = path.split_last()?;
    let mut table: &dyn TableLike = doc.as_table();
    for (k, segment) in parents.iter().enumerate() {
        // An index applies to the array found at the previous key.
        if segment.parse::<usize>().is_ok() {
            continue;
        }
        let item = table.get(segment)?;
        let index = parents.get(k + 1).and_then(|s| s.parse::<usize>().ok());
        table = match (item, index) {
            (Item::ArrayOfTables(array), Some(i)) => array.get(i)?,
            (Item::Value(Value::Array(array)), Some(i)) => array.get(i)?.as_inline_table()?,
            (Item::Table(t), None) => t,
            (Item::Value(Value::InlineTable(t)), None) => t,
            _ => return None,
        };
    }
    let (key, _) = table.get_key_value(last)?;
    key.span()
}
