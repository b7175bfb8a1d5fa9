//! The device side of each protocol: the frames a tracker, phone or radio gateway sends and
//! the parsers of the replies it reads. The simulator speaks the protocols with them, and
//! the tests and benchmarks drive the gateways with them.

pub mod gt06;
pub mod jt808;
pub mod lip;
pub mod nmea;
pub mod osmand;
pub mod teltonika;
