//! Modbus TCP: the registers of a fridge or freezer controller, an energy meter, read as
//! the device's register map says (which registers, their type, scale and unit). One
//! read request per register (function 3 for holding, 4 for input registers); an answer is
//! checked against its request (transaction, unit, function, length) before it is used,
//! and an exception answer names the Modbus exception.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::inventory::Identity;
use crate::config::{Register, RegisterKind, RegisterType};

/// One register's reading: its metric name (the register's, as the controller's rules name
/// metrics) and value (scaled).
pub type Reading = (String, f64);

/// The Modbus exception's name.
fn exception(code: u8) -> String {
    let name = match code {
        1 => "illegal function",
        2 => "illegal data address",
        3 => "illegal data value",
        4 => "server device failure",
        5 => "acknowledge",
        6 => "server device busy",
        10 => "gateway path unavailable",
        11 => "gateway target device failed to respond",
        _ => "unknown exception",
    };
    format!("exception {code} ({name})")
}

/// Words a register type spans.
pub fn words(t: RegisterType) -> u16 {
    match t {
        RegisterType::U16 | RegisterType::I16 => 1,
        RegisterType::U32 | RegisterType::I32 | RegisterType::F32 => 2,
    }
}

/// The value of `raw` words as `t` (two words: the first is the high one unless `swap`).
pub fn decode(t: RegisterType, raw: &[u16], swap: bool) -> Option<f64> {
    let both = |a: u16, b: u16| {
        let (hi, lo) = if swap { (b, a) } else { (a, b) };
        (u32::from(hi) << 16) | u32::from(lo)
    };
    Some(match (t, raw) {
        (RegisterType::U16, [w]) => f64::from(*w),
        (RegisterType::I16, [w]) => f64::from(*w as i16),
        (RegisterType::U32, [a, b]) => f64::from(both(*a, *b)),
        (RegisterType::I32, [a, b]) => f64::from(both(*a, *b) as i32),
        (RegisterType::F32, [a, b]) => f64::from(f32::from_bits(both(*a, *b))),
        _ => return None,
    })
}

/// The read request: MBAP header (transaction, protocol 0, length, unit), then function,
/// first register and count.
pub fn request(
    transaction: u16,
    unit: u8,
    kind: RegisterKind,
    address: u16,
    count: u16,
) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[0..2].copy_from_slice(&transaction.to_be_bytes());
    out[4..6].copy_from_slice(&6u16.to_be_bytes());
    out[6] = unit;
    out[7] = function(kind);
    out[8..10].copy_from_slice(&address.to_be_bytes());
    out[10..12].copy_from_slice(&count.to_be_bytes());
    out
}

/// Checks an answer's header (7 bytes) against the request; the length of what follows.
pub fn check_header(header: &[u8; 7], transaction: u16, unit: u8) -> Result<usize, String> {
    let t = u16::from_be_bytes([header[0], header[1]]);
    let protocol = u16::from_be_bytes([header[2], header[3]]);
    let len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    if t != transaction || protocol != 0 || header[6] != unit {
        return Err(format!(
            "answer to another request (transaction {t}, protocol {protocol}, unit {})",
            header[6]
        ));
    }
    if !(2..=254).contains(&len) {
        return Err(format!("answer length {len} is not a Modbus answer's"));
    }
    Ok(len - 1)
}

/// Reads `count` registers' words from a PDU answering `function`.
pub fn parse_pdu(pdu: &[u8], function: u8, count: u16) -> Result<Vec<u16>, String> {
    match pdu {
        [f, code] if *f == function | 0x80 => Err(exception(*code)),
        [f, n, data @ ..] if *f == function => {
            if usize::from(*n) != data.len() || data.len() != usize::from(count) * 2 {
                return Err(format!(
                    "answer holds {} bytes of registers, {} asked",
                    data.len(),
                    count * 2
                ));
            }
            Ok(data
                .chunks_exact(2)
                .map(|w| u16::from_be_bytes([w[0], w[1]]))
                .collect())
        }
        _ => Err("answer to another function".into()),
    }
}

/// Reads `registers` of `unit` at `address` (`host:port`); the caller bounds the time.
pub async fn read(address: &str, unit: u8, registers: &[Register]) -> Result<Vec<Reading>, String> {
    let mut s = TcpStream::connect(address)
        .await
        .map_err(|e| format!("modbus {address}: {e}"))?;
    let mut out = Vec::with_capacity(registers.len());
    for (i, r) in registers.iter().enumerate() {
        let transaction = (i as u16).wrapping_add(1);
        let count = words(r.r#type);
        let req = request(transaction, unit, r.kind, r.address, count);
        let what = format!(
            "modbus {address} unit {unit} register {} ({})",
            r.address, r.name
        );
        let one = async {
            s.write_all(&req).await.map_err(|e| e.to_string())?;
            let mut header = [0u8; 7];
            s.read_exact(&mut header).await.map_err(|e| e.to_string())?;
            let len = check_header(&header, transaction, unit)?;
            let mut pdu = vec![0u8; len];
            s.read_exact(&mut pdu).await.map_err(|e| e.to_string())?;
            parse_pdu(&pdu, req[7], count)
        };
        let raw = one.await.map_err(|e| format!("{what}: {e}"))?;
        out.push(reading(r, &raw).map_err(|e| format!("{what}: {e}"))?);
    }
    Ok(out)
}

/// The function code that reads a register of `kind`.
pub fn function(kind: RegisterKind) -> u8 {
    match kind {
        RegisterKind::Holding => 3,
        RegisterKind::Input => 4,
    }
}

/// Register `r`'s reading from its `raw` words.
pub fn reading(r: &Register, raw: &[u16]) -> Result<Reading, String> {
    let v = decode(r.r#type, raw, r.swap_words)
        .ok_or_else(|| format!("{} words for {:?}", raw.len(), r.r#type))?;
    Ok((r.name.clone(), v * r.scale))
}

/// The `Read Device Identification` request (function 43, MEI type 14, basic objects).
pub fn identify_request(transaction: u16, unit: u8) -> [u8; 11] {
    let mut out = [0u8; 11];
    out[0..2].copy_from_slice(&transaction.to_be_bytes());
    out[4..6].copy_from_slice(&5u16.to_be_bytes());
    out[6] = unit;
    out[7..11].copy_from_slice(&[0x2B, 0x0E, 0x01, 0x00]);
    out
}

/// Reads a device identification answer: maker (object 0), product code (1) and revision
/// (2). `None` for a device that does not have the function (it answered, so it speaks
/// Modbus).
pub fn parse_identity(pdu: &[u8]) -> Result<Option<Identity>, String> {
    match pdu {
        [0xAB, _] => Ok(None),
        [0x2B, 0x0E, _code, _conformity, _more, _next, n, objects @ ..] => {
            let mut id = Identity::default();
            let mut rest = objects;
            for _ in 0..*n {
                let [object, len, tail @ ..] = rest else {
                    return Err("device identification cut short".into());
                };
                let len = usize::from(*len);
                if tail.len() < len {
                    return Err("device identification cut short".into());
                }
                let text = String::from_utf8_lossy(&tail[..len]).trim().to_owned();
                let text = (!text.is_empty()).then_some(text);
                match object {
                    0 => id.vendor = text,
                    1 => id.model = text,
                    2 => id.firmware = text,
                    _ => {}
                }
                rest = &tail[len..];
            }
            Ok(Some(id))
        }
        _ => Err("not a device identification answer".into()),
    }
}

/// Whether `address` speaks Modbus TCP as `unit`, and what it says it is.
pub async fn identify(address: &str, unit: u8) -> Result<Option<Identity>, String> {
    let mut s = TcpStream::connect(address)
        .await
        .map_err(|e| format!("modbus {address}: {e}"))?;
    let transaction = 1;
    s.write_all(&identify_request(transaction, unit))
        .await
        .map_err(|e| e.to_string())?;
    let mut header = [0u8; 7];
    s.read_exact(&mut header).await.map_err(|e| e.to_string())?;
    let len = check_header(&header, transaction, unit)?;
    let mut pdu = vec![0u8; len];
    s.read_exact(&mut pdu).await.map_err(|e| e.to_string())?;
    parse_identity(&pdu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_identification_reads_or_says_why_not() {
        assert_eq!(
            identify_request(3, 1),
            [0, 3, 0, 0, 0, 5, 1, 0x2B, 0x0E, 1, 0]
        );
        let mut pdu = vec![0x2B, 0x0E, 1, 1, 0, 0, 3];
        for (o, v) in [(0u8, "Carel"), (1, "IR33"), (2, "2.1")] {
            pdu.extend([o, v.len() as u8]);
            pdu.extend(v.as_bytes());
        }
        let id = parse_identity(&pdu).unwrap().unwrap();
        assert_eq!(id.vendor.as_deref(), Some("Carel"));
        assert_eq!(id.model.as_deref(), Some("IR33"));
        assert_eq!(id.firmware.as_deref(), Some("2.1"));
        assert_eq!(parse_identity(&[0xAB, 1]), Ok(None));
        for n in 0..pdu.len() - 1 {
            assert!(parse_identity(&pdu[..n]).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn registers_decode_by_type_and_word_order() {
        assert_eq!(decode(RegisterType::I16, &[0xFFD3], false), Some(-45.0));
        assert_eq!(decode(RegisterType::U16, &[0xFFD3], false), Some(65_491.0));
        assert_eq!(
            decode(RegisterType::U32, &[0x0001, 0xE240], false),
            Some(123_456.0)
        );
        assert_eq!(
            decode(RegisterType::U32, &[0xE240, 0x0001], true),
            Some(123_456.0)
        );
        assert_eq!(
            decode(RegisterType::I32, &[0xFFFF, 0xFFFE], false),
            Some(-2.0)
        );
        assert_eq!(
            decode(RegisterType::F32, &[0x4060, 0x0000], false),
            Some(3.5)
        );
        assert_eq!(decode(RegisterType::F32, &[0x4060], false), None);
    }

    #[test]
    fn answers_are_checked_against_their_request() {
        let req = request(7, 1, RegisterKind::Input, 3, 2);
        assert_eq!(req, [0, 7, 0, 0, 0, 6, 1, 4, 0, 3, 0, 2]);
        assert_eq!(check_header(&[0, 7, 0, 0, 0, 7, 1], 7, 1), Ok(6));
        for (h, why) in [
            ([0, 8, 0, 0, 0, 7, 1], "another request"),
            ([0, 7, 0, 1, 0, 7, 1], "another request"),
            ([0, 7, 0, 0, 0, 7, 2], "another request"),
            ([0, 7, 0, 0, 0, 1, 1], "length"),
            ([0, 7, 0, 0, 0xFF, 0xFF, 1], "length"),
        ] {
            assert!(check_header(&h, 7, 1).unwrap_err().contains(why), "{h:?}");
        }
        assert_eq!(
            parse_pdu(&[4, 4, 0, 1, 0xE2, 0x40], 4, 2),
            Ok(vec![1, 0xE240])
        );
        assert!(parse_pdu(&[0x84, 2], 4, 2)
            .unwrap_err()
            .contains("illegal data address"));
        assert!(parse_pdu(&[4, 2, 0, 1], 4, 2)
            .unwrap_err()
            .contains("4 asked"));
        assert!(parse_pdu(&[4, 9, 0, 1, 0, 2], 4, 2).is_err());
        assert!(parse_pdu(&[3, 4, 0, 1, 0, 2], 4, 2)
            .unwrap_err()
            .contains("another function"));
        assert!(parse_pdu(&[], 4, 1).is_err());
    }
}
