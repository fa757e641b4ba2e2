//! The simulated fridge controllers answer Modbus TCP on one listener for the whole fleet,
//! so that the demo's agents read them through their real `modbus` probe: unit 1, input
//! register `n - 1` holds store `n`'s fridge temperature in tenths of a degree (i16).
//! Read Input Registers (4) and Read Holding Registers (3) are served, and Read Device
//! Identification (43/14) says who the controller is; anything else gets the Modbus
//! exception a real device would send.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The unit every simulated controller answers as.
pub const UNIT: u8 = 1;

/// Every simulated controller's registers, by address.
#[derive(Default, Clone)]
pub struct Registers(Arc<Mutex<HashMap<u16, u16>>>);

impl Registers {
    /// Sets a register.
    pub fn set(&self, address: u16, value: u16) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(address, value);
    }

    /// The register holding store `n`'s fridge temperature.
    pub fn fridge_address(n: usize) -> u16 {
        u16::try_from(n.saturating_sub(1)).unwrap_or(u16::MAX)
    }

    /// Sets store `n`'s fridge temperature, °C.
    pub fn set_fridge(&self, n: usize, celsius: f64) {
        let tenths = (celsius * 10.0).round().clamp(-32768.0, 32767.0) as i16;
        self.set(Self::fridge_address(n), tenths as u16);
    }

    /// The answer PDU to the request `pdu`.
    fn answer(&self, pdu: &[u8]) -> Vec<u8> {
        let exception = |f: u8, code: u8| vec![f | 0x80, code];
        match pdu {
            [f @ (3 | 4), a, b, c, d] => {
                let start = u16::from_be_bytes([*a, *b]);
                let count = u16::from_be_bytes([*c, *d]);
                if !(1..=125).contains(&count) {
                    return exception(*f, 3);
                }
                let regs = self
                    .0
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let mut out = vec![*f, (count * 2) as u8];
                for i in 0..count {
                    let Some(v) = start.checked_add(i).and_then(|a| regs.get(&a)) else {
                        return exception(*f, 2);
                    };
                    out.extend(v.to_be_bytes());
                }
                out
            }
            [0x2B, 0x0E, 1, _] => {
                let mut out = vec![0x2B, 0x0E, 1, 1, 0, 0, 3];
                for (i, text) in ["Carel", "pCOWeb", "2.4.3"].iter().enumerate() {
                    out.extend([i as u8, text.len() as u8]);
                    out.extend(text.as_bytes());
                }
                out
            }
            [f, ..] => exception(*f, 1),
            [] => exception(0, 1),
        }
    }

    async fn session(&self, mut s: TcpStream) -> std::io::Result<()> {
        loop {
            let mut header = [0u8; 7];
            s.read_exact(&mut header).await?;
            let len = usize::from(u16::from_be_bytes([header[4], header[5]]));
            if header[2..4] != [0, 0] || !(2..=254).contains(&len) {
                return Ok(()); // not Modbus TCP: hang up, as a device does
            }
            let mut pdu = vec![0u8; len - 1];
            s.read_exact(&mut pdu).await?;
            if header[6] != UNIT {
                continue; // no such unit: no answer
            }
            let answer = self.answer(&pdu);
            let mut out = header[..4].to_vec();
            out.extend(((answer.len() + 1) as u16).to_be_bytes());
            out.push(UNIT);
            out.extend(answer);
            s.write_all(&out).await?;
        }
    }
}

/// Serves `registers` on `listener` until cancelled.
pub async fn serve(listener: TcpListener, registers: Registers, token: CancellationToken) {
    loop {
        let s = tokio::select! {
            () = token.cancelled() => return,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(_) => continue,
            },
        };
        let (r, t) = (registers.clone(), token.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = t.cancelled() => {}
                _ = r.session(s) => {}
            }
        });
    }
}

/// The `[[devices]]` probe of store `n`'s fridge controller at `port`.
pub fn fridge_probe(n: usize, port: u16) -> String {
    format!(
        "{{ type = \"modbus\", address = \"127.0.0.1:{port}\", unit = {UNIT}, registers = [{{ name = \"temp_c\", kind = \"input\", address = {}, type = \"i16\", scale = 0.1, unit = \"C\" }}] }}",
        Registers::fridge_address(n)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent's own Modbus probe and its discovery read a simulated fridge controller;
    /// a register nobody set is the exception a device sends.
    #[tokio::test]
    async fn the_agents_modbus_probe_reads_a_simulated_fridge() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let regs = Registers::default();
        regs.set_fridge(7, -4.46);
        let token = CancellationToken::new();
        tokio::spawn(serve(listener, regs, token.clone()));
        let device = |n: usize| {
            let toml = format!(
                "id = \"fridge-1\"\nclass = \"fridge-sensor\"\ntimeout_ms = 1000\nprobe = {}",
                fridge_probe(n, port)
            );
            toml::from_str::<storefleet_agent::config::DeviceConfig>(&toml).unwrap()
        };
        let o = storefleet_agent::collect::probe::probe_once(&device(7)).await;
        assert!(o.up, "{o:?}");
        let t = o.metrics.iter().find(|(n, _)| n == "temp_c").unwrap().1;
        assert!((t + 4.5).abs() < 1e-9, "{t}");
        let other = storefleet_agent::collect::probe::probe_once(&device(8)).await;
        assert!(
            other
                .reason
                .unwrap_or_default()
                .contains("illegal data address"),
            "a register nobody set"
        );
        let id = storefleet_agent::collect::modbus::identify(&format!("127.0.0.1:{port}"), UNIT)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(id.vendor.as_deref(), Some("Carel"));
        token.cancel();
    }
}
