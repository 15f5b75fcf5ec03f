//! Protocol-buffer wire format, just what ONNX needs: writing varint,
//! 32-bit and length-delimited fields, and reading them back (bounds-checked)
//! for [`super::inspect`].
//!
//! Reference: the Protocol Buffers "Encoding" guide (wire types 0, 1, 2, 5).

use crate::torchscript::TorchScriptError;

/// Appends `v` as a base-128 varint.
pub fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn key(buf: &mut Vec<u8>, field: u32, wire: u8) {
    varint(buf, (u64::from(field) << 3) | u64::from(wire));
}

/// Appends an `int64`/`int32`/enum field (wire type 0; negatives as 10-byte two's complement).
pub fn int(buf: &mut Vec<u8>, field: u32, v: i64) {
    key(buf, field, 0);
    varint(buf, v as u64);
}

/// Appends a `float` field (wire type 5).
pub fn float(buf: &mut Vec<u8>, field: u32, v: f32) {
    key(buf, field, 5);
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Appends a `bytes` / `string` / embedded-message field (wire type 2).
pub fn bytes(buf: &mut Vec<u8>, field: u32, data: &[u8]) {
    key(buf, field, 2);
    varint(buf, data.len() as u64);
    buf.extend_from_slice(data);
}

/// Appends a `string` field.
pub fn string(buf: &mut Vec<u8>, field: u32, s: &str) {
    bytes(buf, field, s.as_bytes());
}

/// Appends an embedded message built by `f`.
pub fn message(buf: &mut Vec<u8>, field: u32, f: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    f(&mut inner);
    bytes(buf, field, &inner);
}

/// A decoded field value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

fn bad(msg: &str) -> TorchScriptError {
    TorchScriptError::Onnx(format!("malformed protobuf: {msg}"))
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, TorchScriptError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or_else(|| bad("truncated varint"))?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(bad("varint longer than 10 bytes"))
}

/// Splits a message into its fields `(number, value)`, in order.
pub fn fields(buf: &[u8]) -> Result<Vec<(u32, Value<'_>)>, TorchScriptError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let k = read_varint(buf, &mut pos)?;
        let field = u32::try_from(k >> 3).map_err(|_| bad("field number"))?;
        let v = match k & 7 {
            0 => Value::Varint(read_varint(buf, &mut pos)?),
            1 => {
                let b = buf
                    .get(pos..pos + 8)
                    .ok_or_else(|| bad("truncated fixed64"))?;
                pos += 8;
                Value::Fixed64(u64::from_le_bytes(
                    b.try_into().map_err(|_| bad("fixed64"))?,
                ))
            }
            2 => {
                let n = usize::try_from(read_varint(buf, &mut pos)?).map_err(|_| bad("length"))?;
                let end = pos
                    .checked_add(n)
                    .filter(|&e| e <= buf.len())
                    .ok_or_else(|| bad("truncated bytes"))?;
                let b = &buf[pos..end];
                pos = end;
                Value::Bytes(b)
            }
            5 => {
                let b = buf
                    .get(pos..pos + 4)
                    .ok_or_else(|| bad("truncated fixed32"))?;
                pos += 4;
                Value::Fixed32(u32::from_le_bytes(
                    b.try_into().map_err(|_| bad("fixed32"))?,
                ))
            }
            w => return Err(bad(&format!("wire type {w}"))),
        };
        out.push((field, v));
    }
    Ok(out)
}

/// Reads a repeated int64 field value, packed (`Bytes`) or not (`Varint`).
pub fn ints(v: Value<'_>, out: &mut Vec<i64>) -> Result<(), TorchScriptError> {
    match v {
        Value::Varint(x) => out.push(x as i64),
        Value::Bytes(b) => {
            let mut pos = 0;
            while pos < b.len() {
                out.push(read_varint(b, &mut pos)? as i64);
            }
        }
        _ => return Err(bad("int field with a fixed wire type")),
    }
    Ok(())
}

/// Reads a string field.
pub fn str(v: Value<'_>) -> Result<String, TorchScriptError> {
    match v {
        Value::Bytes(b) => String::from_utf8(b.to_vec()).map_err(|_| bad("string is not UTF-8")),
        _ => Err(bad("string field with a non-length wire type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut b = Vec::new();
        int(&mut b, 1, 150);
        int(&mut b, 2, -1);
        string(&mut b, 3, "hi");
        float(&mut b, 4, 1.5);
        message(&mut b, 5, |m| int(m, 1, 7));
        // Known encoding of field 1 = 150 (protobuf docs): 08 96 01.
        assert_eq!(&b[..3], &[0x08, 0x96, 0x01]);
        let f = fields(&b).unwrap();
        assert_eq!(f[0], (1, Value::Varint(150)));
        assert_eq!(f[1], (2, Value::Varint(u64::MAX)));
        assert_eq!(str(f[2].1).unwrap(), "hi");
        assert_eq!(f[3], (4, Value::Fixed32(1.5f32.to_bits())));
        let Value::Bytes(inner) = f[4].1 else {
            panic!()
        };
        assert_eq!(fields(inner).unwrap(), vec![(1, Value::Varint(7))]);
        let mut v = Vec::new();
        ints(f[1].1, &mut v).unwrap();
        assert_eq!(v, vec![-1]);
    }

    #[test]
    fn malformed_is_an_error() {
        assert!(fields(&[0x0a, 0x05, 1]).is_err());
        assert!(fields(&[0x08]).is_err());
        assert!(
            fields(&[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ])
            .is_err()
        );
        assert!(fields(&[0x0b]).is_err());
        assert!(fields(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }
}
