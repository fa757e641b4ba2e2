//! Plumbing shared by the Storefleet agent and controller. No domain logic lives here.
//!
//! # Layout
//!
//! - [`config`]: layered configuration loading (compiled-in defaults, the main file, sorted
//!   drop-ins, environment variables) with errors that name the file, the key and what was
//!   expected. Each binary owns its typed config and its validation.
//! - [`keyfile`]: key pairs and other secrets on disk, owner-only.
//! - [`mqtt_url`]: parsing of broker URLs.
//! - `http` (feature `http`): an HTTP client (reqwest) for JSON APIs and downloads over
//!   `http://` and `https://`, trusting what a `tls::Trust` says.
//! - `shutdown` (feature `signals`): SIGTERM/SIGINT to a cancellation token, and printing
//!   an error with its causes.
//! - `broker` (feature `broker`): the embedded MQTT broker (rumqttd) with settings for one
//!   machine, used by the controller and by the test peers.
//! - `tls` (feature `tls`): rustls configurations: clients of `mqtts://` and `https://`
//!   (CAs, pinned keys, client certificates) and servers.

#[cfg(feature = "broker")]
pub mod broker;
pub mod config;
#[cfg(feature = "http")]
pub mod http;
pub mod keyfile;
pub mod mqtt_url;
#[cfg(feature = "signals")]
pub mod shutdown;
#[cfg(feature = "tls")]
pub mod tls;
