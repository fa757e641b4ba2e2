//! IPP (RFC 8010/8011): a printer's state as the printer, or the CUPS queue in front of it,
//! tells it. One `Get-Printer-Attributes` request over HTTP asks for the state, its reasons
//! (`media-jam`, `marker-supply-low-warning`, ...), the supply levels, and who the printer
//! is: its make and model, its IEEE 1284 device id (maker, model and often the serial, as
//! a CUPS queue passes it on from its driver), and where the printer says them, its serial
//! number and firmware (PWG 5100.13); the answer is read with every length checked, so a broken or hostile peer gets
//! an error naming what was wrong, never a panic.

use std::collections::BTreeMap;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;

use super::inventory::Identity;

/// Largest answer read, bytes.
const MAX_ANSWER: usize = 256 * 1024;
/// `Get-Printer-Attributes`.
const GET_PRINTER_ATTRIBUTES: u16 = 0x000B;
/// The attributes asked for.
const WANTED: [&str; 9] = [
    "printer-state",
    "printer-state-reasons",
    "printer-make-and-model",
    "printer-info",
    "marker-names",
    "marker-levels",
    "printer-device-id",
    "printer-serial-number",
    "printer-firmware-string-version",
];

/// Reasons that make a printer down when they come without a suffix; any reason does
/// with `-error`.
const FAULTS: [&str; 10] = [
    "media-jam",
    "media-empty",
    "media-needed",
    "door-open",
    "cover-open",
    "marker-supply-empty",
    "toner-empty",
    "offline",
    "shutdown",
    "paused",
];

/// One attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `integer` or `enum`.
    Int(i32),
    /// `boolean`.
    Bool(bool),
    /// Text, name, keyword, URI, charset, language, MIME type.
    Text(String),
    /// Anything else, as sent.
    Other(Vec<u8>),
}

/// What a printer said of itself.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Printer {
    /// `printer-state`: 3 idle, 4 processing, 5 stopped.
    pub state: i32,
    /// `printer-state-reasons`, without `none`.
    pub reasons: Vec<String>,
    /// `printer-make-and-model`.
    pub model: Option<String>,
    /// Supply levels by marker name, percent (negative: unknown).
    pub markers: Vec<(String, i32)>,
    /// `printer-device-id`: IEEE 1284 `KEY:value;` pairs.
    pub device_id: Option<String>,
    /// `printer-serial-number`.
    pub serial: Option<String>,
    /// `printer-firmware-string-version`, the first one (the main firmware).
    pub firmware: Option<String>,
}

/// The value of `keys` (any of them, case-insensitively) in an IEEE 1284 device id.
fn device_id_value(device_id: &str, keys: &[&str]) -> Option<String> {
    device_id.split(';').find_map(|pair| {
        let (k, v) = pair.split_once(':')?;
        let v = v.trim();
        (keys.iter().any(|key| k.trim().eq_ignore_ascii_case(key)) && !v.is_empty())
            .then(|| v.to_owned())
    })
}

impl Printer {
    /// Who the printer says it is: the serial and firmware it states, else what its
    /// device id says (`MFG`, `MDL`, `SN`); the model from the device id, else its make
    /// and model as one string.
    pub fn identity(&self) -> Identity {
        let id = self.device_id.as_deref().unwrap_or("");
        let vendor = device_id_value(id, &["MFG", "MANUFACTURER"]);
        let model = device_id_value(id, &["MDL", "MODEL"]).or_else(|| self.model.clone());
        Identity {
            vendor,
            model,
            serial: self
                .serial
                .clone()
                .or_else(|| device_id_value(id, &["SN", "SERN", "SERIALNUMBER"])),
            firmware: self.firmware.clone(),
        }
    }

    /// Why the printer cannot print, if it cannot: stopped, or a reason that is a fault.
    pub fn fault(&self) -> Option<String> {
        // `-report` and `-warning` reasons leave the printer printing; `-error` ones and
        // the faults CUPS names without a suffix (`paused`) do not.
        let faults: Vec<&str> = self
            .reasons
            .iter()
            .map(String::as_str)
            .filter(|r| r.ends_with("-error") || FAULTS.contains(r))
            .collect();
        if self.state == 5 || !faults.is_empty() {
            let mut why = if self.state == 5 {
                "stopped".to_owned()
            } else {
                "not printing".to_owned()
            };
            let said = if faults.is_empty() {
                self.reasons.join(", ")
            } else {
                faults.join(", ")
            };
            if !said.is_empty() {
                why = format!("{why}: {said}");
            }
            Some(why)
        } else {
            None
        }
    }
}

/// The `Get-Printer-Attributes` request for `printer_uri`.
pub fn request(printer_uri: &str, request_id: u32) -> Vec<u8> {
    let mut out = vec![1, 1];
    out.extend_from_slice(&GET_PRINTER_ATTRIBUTES.to_be_bytes());
    out.extend_from_slice(&request_id.to_be_bytes());
    out.push(0x01); // operation attributes
    attr(&mut out, 0x47, "attributes-charset", b"utf-8");
    attr(&mut out, 0x48, "attributes-natural-language", b"en");
    attr(&mut out, 0x45, "printer-uri", printer_uri.as_bytes());
    for (i, w) in WANTED.iter().enumerate() {
        let name = if i == 0 { "requested-attributes" } else { "" };
        attr(&mut out, 0x44, name, w.as_bytes());
    }
    out.push(0x03); // end of attributes
    out
}

fn attr(out: &mut Vec<u8>, tag: u8, name: &str, value: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

/// Reads bytes off an answer, each read checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!("answer cut short in {what} at byte {}", self.at));
        };
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
}

/// Reads an answer: its status and the attributes of all its groups, by name.
pub fn parse(bytes: &[u8]) -> Result<BTreeMap<String, Vec<Value>>, String> {
    let mut r = Reader { bytes, at: 0 };
    let version = r.take(2, "the version")?;
    if version[0] == 0 || version[0] > 2 {
        return Err(format!(
            "IPP version {}.{} is not spoken",
            version[0], version[1]
        ));
    }
    let status = r.u16("the status")?;
    r.take(4, "the request id")?;
    let mut attrs: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut last: Option<String> = None;
    loop {
        let tag = r.u8("an attribute's tag")?;
        if tag == 0x03 {
            break;
        }
        if tag < 0x10 {
            last = None; // a group begins
            continue;
        }
        let name_len = usize::from(r.u16("an attribute's name length")?);
        let name = r.take(name_len, "an attribute's name")?;
        let value_len = usize::from(r.u16("an attribute's value length")?);
        let raw = r.take(value_len, "an attribute's value")?;
        let name = if name_len == 0 {
            last.clone()
                .ok_or("an additional value without an attribute before it")?
        } else {
            String::from_utf8_lossy(name).into_owned()
        };
        let value = match (tag, raw.len()) {
            (0x21 | 0x23, 4) => Value::Int(i32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]])),
            (0x22, 1) => Value::Bool(raw[0] != 0),
            (0x41..=0x49, _) => Value::Text(String::from_utf8_lossy(raw).into_owned()),
            _ => Value::Other(raw.to_vec()),
        };
        attrs.entry(name.clone()).or_default().push(value);
        last = Some(name);
    }
    if status > 0x00FF {
        return Err(format!(
            "the printer refused the request: status 0x{status:04x}"
        ));
    }
    Ok(attrs)
}

/// The printer's state from its attributes.
pub fn printer(attrs: &BTreeMap<String, Vec<Value>>) -> Result<Printer, String> {
    let values = |name: &str| attrs.get(name).map_or(&[][..], Vec::as_slice);
    let texts = |name: &str| -> Vec<String> {
        values(name)
            .iter()
            .filter_map(|x| match x {
                Value::Text(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    };
    let ints = |name: &str| -> Vec<i32> {
        values(name)
            .iter()
            .filter_map(|x| match x {
                Value::Int(i) => Some(*i),
                _ => None,
            })
            .collect()
    };
    let first = |name: &str| {
        texts(name)
            .into_iter()
            .map(|t| t.trim().to_owned())
            .find(|t| !t.is_empty())
    };
    let state = *ints("printer-state")
        .first()
        .ok_or("the answer has no printer-state")?;
    Ok(Printer {
        state,
        reasons: texts("printer-state-reasons")
            .into_iter()
            .filter(|r| r != "none")
            .collect(),
        model: texts("printer-make-and-model").into_iter().next(),
        markers: texts("marker-names")
            .into_iter()
            .zip(ints("marker-levels"))
            .collect(),
        device_id: first("printer-device-id"),
        serial: first("printer-serial-number"),
        firmware: first("printer-firmware-string-version"),
    })
}

/// Asks the printer at `url` (`ipp://host[:port]/path`) for its state.
pub async fn get(url: &str) -> Result<Printer, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    if uri.scheme_str() != Some("ipp") {
        return Err("not an ipp:// URL".into());
    }
    let host = uri.host().ok_or("URL has no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(631);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| e.to_string())?;
    let req = hyper::Request::post(path)
        .header(hyper::header::HOST, format!("{host}:{port}"))
        .header(hyper::header::CONTENT_TYPE, "application/ipp")
        .body(Full::new(Bytes::from(request(url, 1))))
        .map_err(|e| e.to_string())?;
    let (resp, conn) = super::http::send(tcp, req).await?;
    let answer = async {
        if !resp.status().is_success() {
            return Err(format!("HTTP status {}", resp.status().as_u16()));
        }
        Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .map_err(|e| format!("reading the answer: {e}"))
    }
    .await;
    conn.abort();
    printer(&parse(&answer?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(attrs: &[(u8, &str, &[u8])]) -> Vec<u8> {
        let mut out = vec![1, 1, 0, 0, 0, 0, 0, 1, 0x01];
        attr(&mut out, 0x47, "attributes-charset", b"utf-8");
        out.push(0x04); // printer attributes
        for (tag, name, value) in attrs {
            attr(&mut out, *tag, name, value);
        }
        out.push(0x03);
        out
    }

    #[test]
    fn an_answer_is_read_with_its_additional_values() {
        let a = answer(&[
            (0x23, "printer-state", &5i32.to_be_bytes()),
            (0x44, "printer-state-reasons", b"media-jam-error"),
            (0x44, "", b"marker-supply-low-warning"),
            (0x41, "printer-make-and-model", b"Epson TM-T88VI"),
            (0x42, "marker-names", b"black"),
            (0x21, "marker-levels", &12i32.to_be_bytes()),
        ]);
        let p = printer(&parse(&a).unwrap()).unwrap();
        assert_eq!(p.state, 5);
        assert_eq!(p.reasons, ["media-jam-error", "marker-supply-low-warning"]);
        assert_eq!(p.model.as_deref(), Some("Epson TM-T88VI"));
        assert_eq!(p.markers, [("black".to_owned(), 12)]);
        assert_eq!(p.fault().as_deref(), Some("stopped: media-jam-error"));
        assert_eq!(
            p.identity(),
            Identity {
                vendor: None,
                model: Some("Epson TM-T88VI".into()),
                serial: None,
                firmware: None
            }
        );
    }

    #[test]
    fn identity_comes_from_the_device_id_and_what_the_printer_states() {
        let a = answer(&[
            (0x23, "printer-state", &3i32.to_be_bytes()),
            (0x41, "printer-make-and-model", b"EPSON TM-T88VI Receipt"),
            (
                0x41,
                "printer-device-id",
                b"MFG:EPSON;CMD:ESC/POS;MDL:TM-T88VI; SN: X5E0123456 ;",
            ),
            (0x41, "printer-firmware-string-version", b"30.05 ESC/POS"),
            (0x41, "", b"1.02 boot"),
        ]);
        let p = printer(&parse(&a).unwrap()).unwrap();
        let want = |serial: &str| Identity {
            vendor: Some("EPSON".into()),
            model: Some("TM-T88VI".into()),
            serial: Some(serial.into()),
            firmware: Some("30.05 ESC/POS".into()),
        };
        assert_eq!(p.identity(), want("X5E0123456"));
        // A serial the printer states wins over its device id; other key spellings.
        let stated = Printer {
            serial: Some("STATED1".into()),
            ..p.clone()
        };
        assert_eq!(stated.identity(), want("STATED1"));
        let spelled = Printer {
            device_id: Some("manufacturer:EPSON;model:TM-T88VI;SERN:Z9;".into()),
            ..p
        };
        assert_eq!(spelled.identity(), want("Z9"));
    }

    #[test]
    fn faults_are_stopped_or_an_error_reason_not_a_warning() {
        let p = |state, reasons: &[&str]| Printer {
            state,
            reasons: reasons.iter().map(|r| (*r).to_owned()).collect(),
            ..Printer::default()
        };
        assert_eq!(p(3, &[]).fault(), None);
        assert_eq!(p(4, &["marker-supply-low-warning"]).fault(), None);
        assert_eq!(p(3, &["media-empty-report"]).fault(), None);
        assert_eq!(
            p(3, &["door-open-warning", "toner-low-report"]).fault(),
            None
        );
        assert_eq!(
            p(3, &["door-open", "toner-low-report"]).fault().as_deref(),
            Some("not printing: door-open")
        );
        assert_eq!(
            p(5, &["paused"]).fault().as_deref(),
            Some("stopped: paused")
        );
        assert_eq!(p(5, &[]).fault().as_deref(), Some("stopped"));
    }

    #[test]
    fn a_broken_answer_is_an_error_never_a_panic() {
        let good = answer(&[(0x23, "printer-state", &3i32.to_be_bytes())]);
        // Every cut of a good answer, and junk.
        for n in 0..good.len() {
            assert!(parse(&good[..n]).is_err(), "cut at {n}");
        }
        let mut refused = good.clone();
        refused[2..4].copy_from_slice(&0x0406u16.to_be_bytes());
        assert!(parse(&refused).unwrap_err().contains("0x0406"));
        let mut orphan = vec![1, 1, 0, 0, 0, 0, 0, 1, 0x04];
        attr(&mut orphan, 0x44, "", b"x");
        orphan.push(0x03);
        assert!(parse(&orphan).unwrap_err().contains("additional value"));
        let no_state = answer(&[(0x41, "printer-info", b"x")]);
        assert!(printer(&parse(&no_state).unwrap()).is_err());
        let mut x: u64 = 7;
        for _ in 0..2000 {
            let junk: Vec<u8> = (0..(x % 64) as usize)
                .map(|_| {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    (x >> 33) as u8
                })
                .collect();
            let _ = parse(&junk);
        }
    }
}
