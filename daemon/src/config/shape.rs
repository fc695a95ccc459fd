//! The shape check: every unknown key, wrong type, missing key, unknown value and out-of-range
//! number of a site file, reported at once.
//!
//! serde stops at the first error, so the file is first walked here: the spanned TOML tree
//! against the JSON Schema that schemars derives from [`super::file::SiteFile`]. The schema is the
//! single source of the file's shape; this walker understands the part of JSON Schema that
//! schemars emits for those types (`$ref`, `type`, `enum`, `const`, `oneOf`/`anyOf`,
//! `properties`, `required`, `additionalProperties`, `items`, `minimum`, `maximum`). When it
//! finds nothing, deserializing the same tree cannot fail on shape.

use std::ops::Range;

use serde_json::Value as Schema;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::{Code, Diagnostic, did_you_mean, quoted_list};

/// Checks `doc` against `schema`; returns every problem found.
pub fn check(doc: &Spanned<DeTable<'_>>, schema: &Schema) -> Vec<Diagnostic> {
    let mut walker = Walker {
        root: schema,
        found: Vec::new(),
    };
    walker.table(doc.get_ref(), doc.span(), schema, &Place::Top);
    walker.found
}

/// Where a value sits, for messages.
#[derive(Clone)]
enum Place {
    Top,
    Key { parent: Box<Place>, key: String },
    Index { parent: Box<Place>, index: usize },
}

impl Place {
    fn key(&self, key: &str) -> Place {
        Place::Key {
            parent: Box::new(self.clone()),
            key: key.to_string(),
        }
    }

    fn index(&self, index: usize) -> Place {
        Place::Index {
            parent: Box::new(self.clone()),
            index,
        }
    }

    /// The dotted path, `cameras[2].url`.
    fn path(&self) -> String {
        match self {
            Place::Top => String::new(),
            Place::Key { parent, key } => match parent.path() {
                p if p.is_empty() => key.clone(),
                p => format!("{p}.{key}"),
            },
            Place::Index { parent, index } => format!("{}[{}]", parent.path(), index),
        }
    }

    /// The last key named on the way here: `layout` for `site.layout`, `roles` for `roles[0]`.
    fn name(&self) -> String {
        match self {
            Place::Top => "value".to_string(),
            Place::Key { key, .. } => key.clone(),
            Place::Index { parent, .. } => parent.name(),
        }
    }

    /// How a table at this place is called: `[site]`, `[[cameras]] #3`, `the file`.
    fn table(&self) -> String {
        match self {
            Place::Top => "the top level of the file".to_string(),
            Place::Index { parent, index } => format!("[[{}]] #{}", parent.path(), index + 1),
            other => format!("[{}]", other.path()),
        }
    }
}

struct Walker<'s> {
    root: &'s Schema,
    found: Vec<Diagnostic>,
}

fn type_word(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn schema_word(t: &str) -> &'static str {
    match t {
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "a boolean (true or false)",
        "array" => "an array",
        "object" => "a table",
        _ => "a value",
    }
}

fn matches_type(v: &DeValue<'_>, t: &str) -> bool {
    matches!(
        (t, v),
        ("string", DeValue::String(_))
            | ("integer", DeValue::Integer(_))
            | ("number", DeValue::Integer(_) | DeValue::Float(_))
            | ("boolean", DeValue::Boolean(_))
            | ("array", DeValue::Array(_))
            | ("object", DeValue::Table(_))
    )
}

impl<'s> Walker<'s> {
    fn resolve(&self, mut s: &'s Schema) -> &'s Schema {
        while let Some(r) = s.get("$ref").and_then(Schema::as_str) {
            let name = r.rsplit('/').next().unwrap_or_default();
            match self.root.get("$defs").and_then(|d| d.get(name)) {
                Some(target) => s = target,
                None => break,
            }
        }
        s
    }

    /// The allowed strings of an enum, whether written as `enum` or as `oneOf` of `const`s.
    fn allowed_strings(&self, s: &'s Schema) -> Option<Vec<&'s str>> {
        if let Some(list) = s.get("enum").and_then(Schema::as_array) {
            return list.iter().map(Schema::as_str).collect();
        }
        if let Some(c) = s.get("const").and_then(Schema::as_str) {
            return Some(vec![c]);
        }
        let alternatives = s.get("oneOf").or_else(|| s.get("anyOf"))?.as_array()?;
        let mut out = Vec::new();
        for alt in alternatives {
            out.extend(self.allowed_strings(self.resolve(alt))?);
        }
        Some(out)
    }

    fn value(&mut self, v: &Spanned<DeValue<'_>>, schema: &'s Schema, place: &Place) {
        let schema = self.resolve(schema);
        let span = v.span();
        if let Some(allowed) = self.allowed_strings(schema) {
            return self.enumeration(v.get_ref(), span, &allowed, place);
        }
        if let Some(alternatives) = schema.get("anyOf").or_else(|| schema.get("oneOf")) {
            // Option<T>: TOML has no null, so the one non-null alternative is the shape.
            let real: Vec<&Schema> = alternatives
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| a.get("type").and_then(Schema::as_str) != Some("null"))
                .collect();
            if let [only] = real.as_slice() {
                return self.value(v, only, place);
            }
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(Schema::String(t)) => vec![t.as_str()],
            Some(Schema::Array(ts)) => ts
                .iter()
                .filter_map(Schema::as_str)
                .filter(|t| *t != "null")
                .collect(),
            _ => return,
        };
        if !types.iter().any(|t| matches_type(v.get_ref(), t)) {
            let expected = types.first().map_or("a value", |t| schema_word(t));
            self.found.push(
                Diagnostic::error(
                    Code::WrongType,
                    Some(span),
                    format!(
                        "`{}` must be {expected}, not {}",
                        place.path(),
                        type_word(v.get_ref())
                    ),
                )
                .help(self.describe(schema, place)),
            );
            return;
        }
        match v.get_ref() {
            DeValue::Table(t) => self.table(t, span, schema, place),
            DeValue::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.value(item, item_schema, &place.index(i));
                    }
                }
            }
            DeValue::Integer(i) => {
                let n = i128::from_str_radix(i.as_str(), i.radix()).ok();
                let min = schema.get("minimum").and_then(Schema::as_i64);
                let max = schema.get("maximum").and_then(Schema::as_i64);
                let outside = n.is_none_or(|n| {
                    min.is_some_and(|m| n < i128::from(m)) || max.is_some_and(|m| n > i128::from(m))
                });
                if outside {
                    let bounds = match (min, max) {
                        (Some(lo), Some(hi)) => format!("from {lo} to {hi}"),
                        (Some(lo), None) => format!("at least {lo}"),
                        (None, Some(hi)) => format!("at most {hi}"),
                        (None, None) => "within 128 bits".to_string(),
                    };
                    self.found.push(
                        Diagnostic::error(
                            Code::OutOfRange,
                            Some(span),
                            format!("`{}` is out of range", place.path()),
                        )
                        .help(format!("`{}` takes a whole number {bounds}", place.name())),
                    );
                }
            }
            _ => {}
        }
    }

    fn enumeration(
        &mut self,
        v: &DeValue<'_>,
        span: Range<usize>,
        allowed: &[&str],
        place: &Place,
    ) {
        let name = place.name();
        // An element of `roles` is a role.
        let name = match place {
            Place::Index { .. } => name.strip_suffix('s').unwrap_or(&name).to_string(),
            _ => name,
        };
        match v {
            DeValue::String(s) if allowed.contains(&s.as_ref()) => {}
            DeValue::String(s) => {
                let help = match did_you_mean(s, allowed.iter().copied()) {
                    Some(m) => format!(
                        "did you mean \"{m}\"? `{name}` is one of {}",
                        quoted_list(allowed.iter().copied())
                    ),
                    None => format!(
                        "`{name}` is one of {}",
                        quoted_list(allowed.iter().copied())
                    ),
                };
                self.found.push(
                    Diagnostic::error(
                        Code::UnknownValue,
                        Some(span),
                        format!("unknown {name} \"{s}\""),
                    )
                    .help(help),
                );
            }
            other => self.found.push(
                Diagnostic::error(
                    Code::WrongType,
                    Some(span),
                    format!(
                        "`{}` must be a string, not {}",
                        place.path(),
                        type_word(other)
                    ),
                )
                .help(format!(
                    "`{name}` is one of {}",
                    quoted_list(allowed.iter().copied())
                )),
            ),
        }
    }

    fn table(&mut self, t: &DeTable<'_>, span: Range<usize>, schema: &'s Schema, place: &Place) {
        let schema = self.resolve(schema);
        let properties = schema.get("properties").and_then(Schema::as_object);
        let extra = schema.get("additionalProperties");
        for (key, value) in t.iter() {
            let name: &str = key.get_ref();
            let inner = place.key(name);
            if let Some(prop) = properties.and_then(|p| p.get(name)) {
                self.value(value, prop, &inner);
                continue;
            }
            match extra {
                Some(Schema::Bool(false)) => {
                    let known: Vec<&str> = properties
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let help = match did_you_mean(name, known.iter().copied()) {
                        Some(m) => format!("did you mean `{m}`?"),
                        None => format!(
                            "{} takes {}",
                            place.table(),
                            quoted_list(known.iter().copied())
                        ),
                    };
                    self.found.push(
                        Diagnostic::error(
                            Code::UnknownKey,
                            Some(key.span()),
                            format!("unknown key `{name}` in {}", place.table()),
                        )
                        .help(help),
                    );
                }
                Some(s @ Schema::Object(_)) => self.value(value, s, &inner),
                _ => {}
            }
        }
        let required = schema.get("required").and_then(Schema::as_array);
        for key in required.into_iter().flatten().filter_map(Schema::as_str) {
            if !t.iter().any(|(k, _)| k.get_ref().as_ref() == key) {
                let what = properties
                    .and_then(|p| p.get(key))
                    .and_then(|p| p.get("description"))
                    .and_then(Schema::as_str)
                    .map(|d| {
                        d.split(". ")
                            .next()
                            .unwrap_or(d)
                            .trim_end_matches('.')
                            .to_string()
                    })
                    .unwrap_or_default();
                let at = if matches!(place, Place::Top) {
                    None
                } else {
                    Some(span.clone())
                };
                self.found.push(
                    Diagnostic::error(
                        Code::MissingKey,
                        at,
                        format!("{} is missing the required key `{key}`", place.table()),
                    )
                    .help(format!("add `{key}`: {}", what.to_lowercase())),
                );
            }
        }
    }

    /// What a place takes, for the `help:` of a wrong type.
    fn describe(&self, schema: &'s Schema, place: &Place) -> String {
        let what = schema
            .get("description")
            .and_then(Schema::as_str)
            .map(|d| d.split(". ").next().unwrap_or(d).trim_end_matches('.'))
            .unwrap_or("see `sited schema`");
        format!("`{}`: {what}", place.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file::SiteFile;

    fn problems(text: &str) -> Vec<(Code, String)> {
        let schema = serde_json::to_value(schemars::schema_for!(SiteFile)).unwrap();
        let doc = DeTable::parse(text).unwrap();
        check(&doc, &schema)
            .into_iter()
            .map(|d| (d.code, d.message))
            .collect()
    }

    const MINIMAL: &str = "[site]\nname = \"a\"\nlayout = \"valt\"\n[[nodes]]\nname = \"n\"\naddress = \"192.0.2.1\"\nroles = [\"application\"]\n";

    #[test]
    fn a_minimal_file_has_the_right_shape() {
        assert_eq!(problems(MINIMAL), vec![]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = MINIMAL
            .replace("name = \"a\"", "nmae = \"a\"\nssl = 1")
            .replace("[\"application\"]", "[\"aplication\"]")
            + "[ports]\nweb = 70000\n";
        let found = problems(&text);
        let mut codes: Vec<Code> = found.iter().map(|(c, _)| *c).collect();
        codes.sort();
        assert_eq!(
            codes,
            vec![
                Code::UnknownKey,
                Code::WrongType,
                Code::MissingKey,
                Code::UnknownValue,
                Code::OutOfRange
            ],
            "{found:?}"
        );
    }
}
