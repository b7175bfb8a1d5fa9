//! The demo kit, apart from the product: what `patrol demo`, `patrol simulate`,
//! `patrol generate` and `patrol fixtures` need and a station's server does not. The `patrol`
//! binary links it through its default `demo` feature; `--no-default-features` leaves it out.
//!
//! - [`county`]: the generator of the fixture county ("Ashford County"), seeded and
//!   deterministic.
//! - [`sim`]: the fleet simulator (units driving their roster over MQTT, with faults) and the
//!   bulk generator (days of pings straight into a store).
//! - [`fixtures`]: the committed fixture county, built into the binary, so the demo runs from
//!   any directory.

pub mod county;
pub mod fixtures;
pub mod sim;
