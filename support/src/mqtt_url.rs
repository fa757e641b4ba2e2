//! Broker URLs: `mqtt://host[:port]` and `mqtts://host[:port]`.

/// A parsed broker URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttUrl {
    /// `mqtts://`.
    pub tls: bool,
    /// Host name or address.
    pub host: String,
    /// Port (1883 or 8883 when not given).
    pub port: u16,
}

impl MqttUrl {
    /// Parses `mqtt://host[:port]` or `mqtts://host[:port]`.
    pub fn parse(url: &str) -> Result<MqttUrl, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("mqtt://") {
            (false, r)
        } else {
            return Err(format!(
                "expected mqtt://host:port or mqtts://host:port, got {url:?}"
            ));
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("port {p:?} is not a number from 1 to 65535"))?,
            ),
            _ => (rest, if tls { 8883 } else { 1883 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains('/') {
            return Err(format!("no host in {url:?}"));
        }
        Ok(MqttUrl {
            tls,
            host: host.to_owned(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_urls_parse_with_default_ports() {
        assert_eq!(
            MqttUrl::parse("mqtt://broker").unwrap(),
            MqttUrl {
                tls: false,
                host: "broker".into(),
                port: 1883
            }
        );
        assert_eq!(MqttUrl::parse("mqtts://b:9000").unwrap().port, 9000);
        assert_eq!(MqttUrl::parse("mqtt://[::1]:1884").unwrap().host, "::1");
        assert!(MqttUrl::parse("http://b").is_err());
        assert!(MqttUrl::parse("mqtt://b:x").is_err());
        assert!(MqttUrl::parse("mqtt://").is_err());
    }
}
