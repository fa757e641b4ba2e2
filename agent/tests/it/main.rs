//! End-to-end tests of the agent: the real `storefleet-agent` binary, a real MQTT broker
//! (the embedded rumqttd as a process, and Mosquitto when `STOREFLEET_TEST_MQTT` is set),
//! real files, real signals.

mod commands;
mod common;
mod config_errors;
mod crash;
mod discover;
mod disk_full;
mod icmp;
mod ingest;
mod ipp;
mod modbus;
mod outage;
mod presence;
mod quota;
mod remote_config;
mod routines;
mod snmp;
mod tls;
mod upload;
