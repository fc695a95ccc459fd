//! AMF0 command messages (RTMP 1.0 §7.2): `connect`, `createStream`, `publish`, `play`... and
//! the replies to them, encoded and decoded with rml_rtmp's AMF0 codec.
//!
//! rml_amf0 decodes nested objects recursively, so a hostile message of nested objects could
//! exhaust the stack: [`parse`] first walks the values without recursion and refuses any nested
//! deeper than [`MAX_DEPTH`] or larger than [`MAX_COMMAND`].

use std::collections::HashMap;

use bytes::Bytes;
use rml_rtmp::rml_amf0::{self, Amf0Value};

use crate::base::{Error, Kind};

/// Nesting allowed in a command (connect's object holds one level; metadata two).
pub const MAX_DEPTH: usize = 8;
/// The largest command accepted.
pub const MAX_COMMAND: usize = 64 << 10;

/// Message type 20: AMF0 command.
pub const AMF0_COMMAND: u8 = 20;
/// Message type 17: AMF3 command (an AMF0 command after a 0 byte, in practice).
pub const AMF3_COMMAND: u8 = 17;
/// Message type 18: AMF0 data.
pub const AMF0_DATA: u8 = 18;

/// A decoded command.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Its name (`connect`, `publish`...).
    pub name: String,
    /// The transaction id a reply repeats.
    pub transaction: f64,
    /// The command object (connect's properties; null for most others).
    pub object: Amf0Value,
    /// The other arguments.
    pub args: Vec<Amf0Value>,
}

impl Command {
    /// The string argument at `i`, if it is one.
    pub fn string_arg(&self, i: usize) -> Option<&str> {
        match self.args.get(i) {
            Some(Amf0Value::Utf8String(s)) => Some(s),
            _ => None,
        }
    }

    /// A string property of the command object.
    pub fn property(&self, key: &str) -> Option<&str> {
        match &self.object {
            Amf0Value::Object(o) => match o.get(key) {
                Some(Amf0Value::Utf8String(s)) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Walks AMF0 values without recursion; fails past `MAX_DEPTH`. Malformed input stops the walk
/// without an error: the decoder reports it at the same point.
fn check_depth(data: &[u8]) -> Result<(), Error> {
    enum Level {
        Object,
        Array(u32),
    }
    let mut stack: Vec<Level> = Vec::new();
    let mut at = 0usize;
    let be = |at: usize, n: usize| -> Option<usize> {
        let b = data.get(at..at + n)?;
        Some(b.iter().fold(0usize, |acc, &x| (acc << 8) | usize::from(x)))
    };
    loop {
        match stack.last_mut() {
            Some(Level::Object) => {
                let Some(key) = be(at, 2) else { return Ok(()) };
                at += 2;
                if key == 0 {
                    at += 1; // the object end marker
                    stack.pop();
                    continue;
                }
                at += key;
            }
            Some(Level::Array(0)) => {
                stack.pop();
                continue;
            }
            Some(Level::Array(n)) => *n -= 1,
            None if at >= data.len() => return Ok(()),
            None => {}
        }
        let Some(&marker) = data.get(at) else {
            return Ok(());
        };
        at += 1;
        match marker {
            0 => at += 8,
            1 => at += 1,
            2 => match be(at, 2) {
                Some(n) => at += 2 + n,
                None => return Ok(()),
            },
            3 => stack.push(Level::Object),
            5 | 6 => {}
            8 => {
                at += 4;
                stack.push(Level::Object);
            }
            9 if matches!(stack.last(), Some(Level::Array(_))) => {
                stack.pop();
            }
            10 => match be(at, 4) {
                Some(n) => {
                    at += 4;
                    stack.push(Level::Array(n as u32));
                }
                None => return Ok(()),
            },
            _ => return Ok(()),
        }
        if stack.len() > MAX_DEPTH {
            crate::bail!(Invalid, "AMF0 values nested deeper than {MAX_DEPTH}");
        }
    }
}

/// Decodes AMF0 values.
pub fn values(data: &[u8]) -> Result<Vec<Amf0Value>, Error> {
    if data.len() > MAX_COMMAND {
        crate::bail!(
            ResourceExhausted,
            "an AMF0 message of {} bytes (the limit is {MAX_COMMAND})",
            data.len()
        );
    }
    check_depth(data)?;
    rml_amf0::deserialize(&mut std::io::Cursor::new(data))
        .map_err(|e| Error::new(Kind::Invalid, "bad AMF0").with_source(e))
}

/// Decodes a command message (type 20, or 17 with its leading 0 byte).
pub fn parse(type_id: u8, data: &[u8]) -> Result<Command, Error> {
    let data = match (type_id, data.first()) {
        (AMF3_COMMAND, Some(0)) => &data[1..],
        _ => data,
    };
    let mut values = values(data)?.into_iter();
    let (Some(Amf0Value::Utf8String(name)), Some(Amf0Value::Number(transaction))) =
        (values.next(), values.next())
    else {
        crate::bail!(Invalid, "a command without a name and a transaction id");
    };
    let object = values.next().unwrap_or(Amf0Value::Null);
    Ok(Command {
        name,
        transaction,
        object,
        args: values.collect(),
    })
}

/// Encodes AMF0 values.
pub fn encode(values: &[Amf0Value]) -> Bytes {
    // Serializing numbers, strings, objects and null cannot fail.
    Bytes::from(rml_amf0::serialize(&values.to_vec()).unwrap_or_default())
}

/// Builds an AMF0 object.
pub fn object(pairs: &[(&str, Amf0Value)]) -> Amf0Value {
    Amf0Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<HashMap<_, _>>(),
    )
}

/// A string value.
pub fn string(s: &str) -> Amf0Value {
    Amf0Value::Utf8String(s.to_string())
}

/// An `onStatus` command for a NetStream event.
pub fn on_status(level: &str, code: &str, description: &str) -> Bytes {
    encode(&[
        string("onStatus"),
        Amf0Value::Number(0.0),
        Amf0Value::Null,
        object(&[
            ("level", string(level)),
            ("code", string(code)),
            ("description", string(description)),
        ]),
    ])
}

/// A `_result` (or `_error`) reply.
pub fn reply(name: &str, transaction: f64, object: Amf0Value, info: Amf0Value) -> Bytes {
    encode(&[string(name), Amf0Value::Number(transaction), object, info])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_round_trips() {
        let bytes = encode(&[
            string("connect"),
            Amf0Value::Number(1.0),
            object(&[("app", string("live")), ("tcUrl", string("rtmp://h/live"))]),
        ]);
        let c = parse(AMF0_COMMAND, &bytes).unwrap();
        assert_eq!((c.name.as_str(), c.transaction), ("connect", 1.0));
        assert_eq!(c.property("app"), Some("live"));
        assert!(c.args.is_empty());

        let mut amf3 = vec![0];
        amf3.extend_from_slice(&bytes);
        assert_eq!(parse(AMF3_COMMAND, &amf3).unwrap(), c);
    }

    #[test]
    fn a_publish_has_its_stream_name() {
        let bytes = encode(&[
            string("publish"),
            Amf0Value::Number(5.0),
            Amf0Value::Null,
            string("key?x=1"),
            string("live"),
        ]);
        let c = parse(AMF0_COMMAND, &bytes).unwrap();
        assert_eq!(c.string_arg(0), Some("key?x=1"));
        assert_eq!(c.string_arg(1), Some("live"));
        assert_eq!(c.string_arg(2), None);
    }

    #[test]
    fn short_deep_and_garbage_commands_are_errors() {
        // Two values only: rml_rtmp's own command decoder would panic here.
        let two = encode(&[string("connect"), Amf0Value::Number(1.0)]);
        assert!(parse(AMF0_COMMAND, &two).unwrap().object == Amf0Value::Null);
        assert!(parse(AMF0_COMMAND, &encode(&[string("x")])).is_err());
        assert!(parse(AMF0_COMMAND, &[]).is_err());
        assert!(parse(AMF0_COMMAND, &[0xff, 1, 2]).is_err());
        assert!(parse(AMF0_COMMAND, &[2, 0, 9, b'a']).is_err());

        // 10000 nested objects: refused before the recursive decoder sees them.
        let mut deep = encode(&[string("connect"), Amf0Value::Number(1.0)]).to_vec();
        for _ in 0..10_000 {
            deep.extend_from_slice(&[3, 0, 1, b'a']);
        }
        assert!(
            parse(AMF0_COMMAND, &deep)
                .unwrap_err()
                .to_string()
                .contains("nested")
        );
        let mut arrays = Vec::new();
        for _ in 0..20 {
            arrays.extend_from_slice(&[10, 0, 0, 0, 1]);
        }
        assert!(values(&arrays).unwrap_err().to_string().contains("nested"));
        assert!(values(&vec![5; MAX_COMMAND + 1]).is_err());
    }

    #[test]
    fn metadata_nested_at_the_limit_decodes() {
        let mut v = object(&[("a", Amf0Value::Number(1.0))]);
        for _ in 1..MAX_DEPTH {
            v = object(&[("o", v)]);
        }
        let bytes = encode(&[string("onMetaData"), v.clone()]);
        assert_eq!(values(&bytes).unwrap(), vec![string("onMetaData"), v]);
    }
}
