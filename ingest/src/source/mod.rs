//! Where pings come from: the MQTT source.
//!
//! **Architecture Invariant:** this is the only module that names `rumqttc`. The embedded broker
//! of the demo and the tests (rumqttd) is in the dev kit, `devkit::broker`.

pub mod mqtt;
