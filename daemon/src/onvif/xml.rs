//! A bounded XML tree for the replies of devices on the camera LAN.
//!
//! A hostile device may answer with anything: megabytes, elements nested thousands deep, or
//! millions of tiny elements. [`parse`] reads with quick-xml's pull parser and stops at the first
//! bound crossed ([`Bounds`]): the input's size is checked before a byte is parsed, and the depth
//! and element count as each element opens, so the work and the memory are linear in the bounds,
//! never in what the device sent. Names keep only their local part (`tds:Model` is `Model`):
//! ONVIF devices disagree on prefixes, never on local names.

use quick_xml::XmlVersion;
use quick_xml::events::Event;

/// The limits one parse may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The most bytes of input.
    pub bytes: usize,
    /// The deepest nesting of elements (the root is depth 1).
    pub depth: usize,
    /// The most elements in the document.
    pub elements: usize,
}

/// Why a reply was not parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Longer than [`Bounds::bytes`].
    TooLarge(usize),
    /// Nested deeper than [`Bounds::depth`].
    TooDeep,
    /// More than [`Bounds::elements`] elements.
    TooMany,
    /// Not well-formed XML, or not UTF-8.
    Malformed(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TooLarge(n) => write!(f, "reply of {n} bytes is too large"),
            Refusal::TooDeep => write!(f, "reply is nested too deep"),
            Refusal::TooMany => write!(f, "reply has too many elements"),
            Refusal::Malformed(why) => write!(f, "reply is not XML: {why}"),
        }
    }
}

/// One element: its local name, attributes, text and children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// The local name, without prefix.
    pub name: String,
    /// The attributes, by local name, unescaped.
    pub attributes: Vec<(String, String)>,
    /// The element's own text (not its children's), unescaped and trimmed.
    pub text: String,
    /// The child elements, in document order.
    pub children: Vec<Element>,
}

impl Element {
    /// The first child called `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The first element at the end of a path of child names.
    pub fn at(&self, path: &[&str]) -> Option<&Element> {
        path.iter().try_fold(self, |e, name| e.child(name))
    }

    /// The text at the end of a path of child names, or `""`.
    pub fn text_at(&self, path: &[&str]) -> &str {
        self.at(path).map_or("", |e| e.text.as_str())
    }

    /// An attribute by local name.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every element below this one called `name`, in document order (this one excluded).
    pub fn descendants<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        let mut stack: Vec<&Element> = self.children.iter().rev().collect();
        std::iter::from_fn(move || {
            while let Some(e) = stack.pop() {
                stack.extend(e.children.iter().rev());
                if e.name == name {
                    return Some(e);
                }
            }
            None
        })
    }

    /// The first element below this one called `name`.
    pub fn find<'a>(&'a self, name: &'a str) -> Option<&'a Element> {
        self.descendants(name).next()
    }
}

fn local(name: &str) -> String {
    name.rsplit(':').next().unwrap_or(name).to_string()
}

fn open(start: &quick_xml::events::BytesStart<'_>) -> Result<Element, Refusal> {
    let mut element = Element {
        name: local(start.name().as_ref()),
        ..Element::default()
    };
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| Refusal::Malformed(e.to_string()))?;
        let key = attribute.key.as_ref();
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| Refusal::Malformed(e.to_string()))?;
        element.attributes.push((local(key), value.into_owned()));
    }
    Ok(element)
}

/// Parses a document within `bounds`; returns its root element.
pub fn parse(input: &[u8], bounds: Bounds) -> Result<Element, Refusal> {
    if input.len() > bounds.bytes {
        return Err(Refusal::TooLarge(input.len()));
    }
    let text = std::str::from_utf8(input).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut count = 0usize;
    let mut root = None;
    let malformed = |e: quick_xml::Error| Refusal::Malformed(e.to_string());
    loop {
        let event = reader.read_event().map_err(malformed)?;
        let finished = match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(Refusal::Malformed("content after the root element".into()));
            }
            Event::Start(start) => {
                count += 1;
                if count > bounds.elements {
                    return Err(Refusal::TooMany);
                }
                if stack.len() >= bounds.depth {
                    return Err(Refusal::TooDeep);
                }
                stack.push(open(&start)?);
                None
            }
            Event::Empty(start) => {
                count += 1;
                if count > bounds.elements {
                    return Err(Refusal::TooMany);
                }
                if stack.len() >= bounds.depth {
                    return Err(Refusal::TooDeep);
                }
                Some(open(&start)?)
            }
            Event::End(_) => stack.pop(),
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
                None
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
                None
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(malformed)? {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&r)
                        .ok_or_else(|| Refusal::Malformed(format!("unknown entity &{};", &*r)))?
                        .to_string(),
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&resolved);
                }
                None
            }
            Event::DocType(_) => {
                return Err(Refusal::Malformed("a DOCTYPE is not accepted".into()));
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => None,
        };
        if let Some(mut done) = finished {
            done.text = done.text.trim().to_string();
            match stack.last_mut() {
                Some(parent) => parent.children.push(done),
                None => root = Some(done),
            }
        }
    }
    if !stack.is_empty() {
        return Err(Refusal::Malformed(
            "the document ends inside an element".into(),
        ));
    }
    root.ok_or_else(|| Refusal::Malformed("no root element".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = Bounds {
        bytes: 4096,
        depth: 8,
        elements: 64,
    };

    #[test]
    fn keeps_local_names_text_and_attributes() {
        let doc = br#"<?xml version="1.0"?><s:Envelope xmlns:s="x" xmlns:t="y"><s:Body><t:A t:k="v &amp; w">one &lt;two&gt; &#x41;<![CDATA[<raw>]]></t:A><t:B/></s:Body></s:Envelope>"#;
        let root = parse(doc, BOUNDS).unwrap();
        assert_eq!(root.name, "Envelope");
        let a = root.at(&["Body", "A"]).unwrap();
        assert_eq!(a.text, "one <two> A<raw>");
        assert_eq!(a.attribute("k"), Some("v & w"));
        assert!(root.find("B").is_some());
        assert_eq!(root.descendants("A").count(), 1);
    }

    #[test]
    fn refuses_what_crosses_a_bound() {
        let big = vec![b' '; 5000];
        assert_eq!(parse(&big, BOUNDS), Err(Refusal::TooLarge(5000)));
        let deep = format!("{}{}", "<a>".repeat(9), "</a>".repeat(9));
        assert_eq!(parse(deep.as_bytes(), BOUNDS), Err(Refusal::TooDeep));
        let wide = format!("<r>{}</r>", "<a/>".repeat(64));
        assert_eq!(parse(wide.as_bytes(), BOUNDS), Err(Refusal::TooMany));
        // An unclosed document, stopped at the depth bound, never parsed to its end.
        let unclosed = "<a>".repeat(1000);
        let huge = Bounds {
            bytes: 1 << 20,
            ..BOUNDS
        };
        assert_eq!(parse(unclosed.as_bytes(), huge), Err(Refusal::TooDeep));
    }

    #[test]
    fn refuses_malformed_documents() {
        for bad in [
            &b"<a><b></a>"[..],
            b"<a>",
            b"",
            b"<a/><b/>",
            b"<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
            b"<a>&bogus;</a>",
            b"\xff\xfe<a/>",
        ] {
            assert!(
                matches!(parse(bad, BOUNDS), Err(Refusal::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
