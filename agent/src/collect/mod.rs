//! Collectors: what the agent gathers and where it comes from.
//!
//! - [`host`]: the gateway's own metrics.
//! - [`probe`]: configured devices, probed on their intervals.
//! - [`icmp`]: ICMP echo over an unprivileged ping socket, for the `icmp` probe.
//! - [`ipp`]: a printer's state over IPP, for the `ipp` probe.
//! - [`modbus`]: registers over Modbus TCP, for the `modbus` probe.
//! - [`snmp`]: SNMP v2c/v3 polling and the device profiles, for the `snmp` probe.
//! - [`inventory`]: what the gateway is and which devices it watches.
//! - [`ingest`]: the loopback endpoint where store applications push data.

pub mod host;
pub mod http;
pub mod icmp;
pub mod ingest;
pub mod inventory;
pub mod ipp;
pub mod modbus;
pub mod modbus_rtu;
pub mod probe;
pub mod snmp;
