//! Where pings come from: the MQTT source, and the intake every source (the MQTT source and
//! the device gateways) hands its inputs to.
//!
//! **Architecture Invariant:** `mqtt` is the only module that names `rumqttc`. The embedded
//! broker of the demo and the tests (rumqttd) is in the dev kit, `devkit::broker`.

pub mod intake;
pub mod mqtt;
