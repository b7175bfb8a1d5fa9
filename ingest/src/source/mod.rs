//! Where pings come from: the MQTT source and the embedded broker used by the demo and tests.
//!
//! **Architecture Invariant:** this is the only module that names `rumqttc` or `rumqttd`.

pub mod broker;
pub mod mqtt;
