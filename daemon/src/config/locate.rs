//! Finding the span of a key or value in the parsed file, by path.
//!
//! Validation works on the typed file and names what it checks by path (`cameras[2].url`); this
//! module finds that place in the spanned TOML tree, so that the diagnostic points at it.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One step of a path.
#[derive(Debug, Clone, Copy)]
pub enum Seg<'a> {
    /// A key of a table.
    Key(&'a str),
    /// An element of an array.
    Index(usize),
}

/// The spanned document, for looking places up.
pub struct Locator<'d, 'i> {
    doc: &'d Spanned<DeTable<'i>>,
}

impl<'d, 'i> Locator<'d, 'i> {
    /// Wraps the parsed document.
    pub fn new(doc: &'d Spanned<DeTable<'i>>) -> Self {
        Locator { doc }
    }

    fn find(&self, path: &[Seg<'_>]) -> Option<(Option<Range<usize>>, &'d Spanned<DeValue<'i>>)> {
        let (first, rest) = path.split_first()?;
        let Seg::Key(k) = first else { return None };
        let (key, mut value) = self
            .doc
            .get_ref()
            .iter()
            .find(|(key, _)| key.get_ref() == k)?;
        let mut key_span = Some(key.span());
        for seg in rest {
            match (seg, value.get_ref()) {
                (Seg::Key(k), DeValue::Table(t)) => {
                    let (key, v) = t.iter().find(|(key, _)| key.get_ref() == k)?;
                    key_span = Some(key.span());
                    value = v;
                }
                (Seg::Index(i), DeValue::Array(a)) => {
                    value = a.get(*i)?;
                    key_span = None;
                }
                _ => return None,
            }
        }
        Some((key_span, value))
    }

    /// The span of the value at `path`.
    pub fn value(&self, path: &[Seg<'_>]) -> Option<Range<usize>> {
        self.find(path).map(|(_, v)| v.span())
    }

    /// The span of the key at `path`, or of the value when it has no key (array elements).
    pub fn key(&self, path: &[Seg<'_>]) -> Option<Range<usize>> {
        self.find(path).map(|(k, v)| k.unwrap_or_else(|| v.span()))
    }

    /// The span of the key and its value: the whole `key = value` line.
    pub fn entry(&self, path: &[Seg<'_>]) -> Option<Range<usize>> {
        self.find(path).map(|(k, v)| {
            let v = v.span();
            k.map_or(v.clone(), |k| k.start..v.end.max(k.end))
        })
    }
}
