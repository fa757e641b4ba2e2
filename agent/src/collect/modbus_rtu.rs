//! Modbus RTU on the gateway's serial line: the same register reads as Modbus TCP
//! ([`super::modbus`]), framed for a serial line (unit, function, data, CRC-16) instead of
//! by a TCP header. Every answer is checked (its unit, function, length and CRC) before it
//! is used. The devices of one line share it, so they are asked one at a time; the line
//! is set raw (8 data bits, the configured parity and stop bits) at each poll, so a line
//! another program left in a strange mode still reads.
//!
//! The serial port is read and written in a blocking thread with short read timeouts, so
//! that a device that never answers costs the poll its deadline, not a thread forever.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::termios::{self, BaudRate, ControlFlags, SetArg, SpecialCharacterIndices};

use super::modbus::{function, parse_pdu, reading, words, Reading};
use crate::config::{Parity, Register};

/// A serial line's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The port, e.g. `/dev/ttyUSB0`.
    pub port: PathBuf,
    /// Bits a second.
    pub baud: u32,
    /// Parity.
    pub parity: Parity,
    /// Stop bits, 1 or 2.
    pub stop_bits: u8,
}

/// Modbus's CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF), sent low byte first.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for b in bytes {
        crc ^= u16::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// The request frame reading `count` words from `address` of `unit` with `function`.
pub fn request(unit: u8, function: u8, address: u16, count: u16) -> Vec<u8> {
    let mut out = vec![unit, function];
    out.extend(address.to_be_bytes());
    out.extend(count.to_be_bytes());
    out.extend(crc16(&out).to_le_bytes());
    out
}

/// The lock of each line: one question at a time on a shared wire.
fn line_lock(port: &Path) -> Arc<Mutex<()>> {
    static LINES: Mutex<Option<HashMap<PathBuf, Arc<Mutex<()>>>>> = Mutex::new(None);
    let mut lines = LINES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    lines
        .get_or_insert_with(HashMap::new)
        .entry(port.to_path_buf())
        .or_default()
        .clone()
}

fn baud_rate(baud: u32) -> Result<BaudRate, String> {
    Ok(match baud {
        1200 => BaudRate::B1200,
        2400 => BaudRate::B2400,
        4800 => BaudRate::B4800,
        9600 => BaudRate::B9600,
        19_200 => BaudRate::B19200,
        38_400 => BaudRate::B38400,
        57_600 => BaudRate::B57600,
        115_200 => BaudRate::B115200,
        other => return Err(format!("{other} baud is not supported")),
    })
}

/// Opens the port and sets it raw: 8 data bits, the line's parity and stop bits, reads
/// that return after 0.1 s without data.
fn open(line: &Line) -> Result<std::fs::File, String> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::fcntl::OFlag::O_NOCTTY.bits())
        .open(&line.port)
        .map_err(|e| format!("cannot open {}: {e}", line.port.display()))?;
    let setting = |what: &'static str| {
        let port = line.port.display().to_string();
        move |e: nix::Error| format!("cannot set up {port} ({what}): {e}")
    };
    let mut t = termios::tcgetattr(&f).map_err(setting("is it a serial port?"))?;
    termios::cfmakeraw(&mut t);
    termios::cfsetspeed(&mut t, baud_rate(line.baud)?).map_err(setting("its speed"))?;
    t.control_flags |= ControlFlags::CREAD | ControlFlags::CLOCAL;
    t.control_flags
        .remove(ControlFlags::PARENB | ControlFlags::PARODD | ControlFlags::CSTOPB);
    match line.parity {
        Parity::Even => t.control_flags |= ControlFlags::PARENB,
        Parity::Odd => t.control_flags |= ControlFlags::PARENB | ControlFlags::PARODD,
        Parity::None => {}
    }
    if line.stop_bits == 2 {
        t.control_flags |= ControlFlags::CSTOPB;
    }
    t.control_chars[SpecialCharacterIndices::VMIN as usize] = 0;
    t.control_chars[SpecialCharacterIndices::VTIME as usize] = 1;
    let what = if line.parity == Parity::None {
        "its settings"
    } else {
        "its settings: does the port do parity?"
    };
    termios::tcsetattr(&f, SetArg::TCSANOW, &t).map_err(setting(what))?;
    Ok(f)
}

fn read_by(f: &mut std::fs::File, buf: &mut [u8], deadline: Instant) -> Result<(), String> {
    let mut got = 0;
    while got < buf.len() {
        if Instant::now() >= deadline {
            return Err(if got == 0 {
                "no answer".to_owned()
            } else {
                format!("answer cut short after {got} bytes")
            });
        }
        match f.read(&mut buf[got..]) {
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Asks for one register and reads its answer's words.
fn ask(
    f: &mut std::fs::File,
    unit: u8,
    r: &Register,
    deadline: Instant,
) -> Result<Vec<u16>, String> {
    let function = function(r.kind);
    let count = words(r.r#type);
    termios::tcflush(&*f, termios::FlushArg::TCIFLUSH).map_err(|e| e.to_string())?;
    f.write_all(&request(unit, function, r.address, count))
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 3];
    read_by(f, &mut head, deadline)?;
    let body_len = if head[1] == function | 0x80 {
        0
    } else {
        usize::from(head[2])
    };
    let mut rest = vec![0u8; body_len + 2];
    read_by(f, &mut rest, deadline)?;
    let (body, crc) = rest.split_at(body_len);
    let mut frame = head.to_vec();
    frame.extend_from_slice(body);
    if crc16(&frame).to_le_bytes() != crc {
        return Err("answer with a bad CRC (noise on the line, or two devices answering)".into());
    }
    if head[0] != unit {
        return Err(format!("answer from unit {}", head[0]));
    }
    parse_pdu(&frame[1..], function, count)
}

fn read_blocking(
    line: &Line,
    unit: u8,
    registers: &[Register],
    timeout: Duration,
) -> Result<Vec<Reading>, String> {
    let deadline = Instant::now() + timeout;
    let lock = line_lock(&line.port);
    let _held = lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut f = open(line)?;
    // The silence between frames: 3.5 characters of 11 bits.
    let gap = Duration::from_micros((38_500_000 / u64::from(line.baud.max(1))).max(1750));
    let mut out = Vec::with_capacity(registers.len());
    for r in registers {
        let what = format!(
            "modbus {} unit {unit} register {} ({})",
            line.port.display(),
            r.address,
            r.name
        );
        let raw = ask(&mut f, unit, r, deadline).map_err(|e| format!("{what}: {e}"))?;
        out.push(reading(r, &raw).map_err(|e| format!("{what}: {e}"))?);
        std::thread::sleep(gap);
    }
    Ok(out)
}

/// Reads `registers` of `unit` on `line`, within `timeout`.
pub async fn read(
    line: Line,
    unit: u8,
    registers: Vec<Register>,
    timeout: Duration,
) -> Result<Vec<Reading>, String> {
    tokio::task::spawn_blocking(move || read_blocking(&line, unit, &registers, timeout))
        .await
        .map_err(|e| format!("the serial read stopped: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_the_modbus_crc() {
        // The specification's example: read 2 input registers from 0 of unit 1.
        assert_eq!(request(1, 4, 0, 2), [1, 4, 0, 0, 0, 2, 0x71, 0xCB]);
        assert_eq!(crc16(&[1, 4, 4, 0xFF, 0xD3, 0, 0]), 0x693A);
    }
}
