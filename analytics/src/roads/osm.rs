//! Streaming reader for OSM XML 0.6: every `<node>`, and the `<way>`s whose `highway` tag is a
//! drivable class. Node references are resolved after the whole file is read, so element order
//! does not matter; a way that references a node missing from the file is split at the gap.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::BufRead;
use std::str::FromStr;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::{Direction, RawNetwork, RawWay, RoadsError, SpeedTable, parse_maxspeed};

/// The tags of the way being read, plus its node references. Shared with the PBF reader.
#[derive(Debug, Default)]
pub(super) struct OpenWay {
    pub(super) refs: Vec<i64>,
    pub(super) highway: Option<String>,
    pub(super) oneway: Option<String>,
    pub(super) maxspeed: Option<String>,
    pub(super) junction: Option<String>,
}

impl OpenWay {
    /// The slot for a tag this reader keeps, or `None` for any other key.
    pub(super) fn tag_slot(&mut self, key: &str) -> Option<&mut Option<String>> {
        match key {
            "highway" => Some(&mut self.highway),
            "oneway" => Some(&mut self.oneway),
            "maxspeed" => Some(&mut self.maxspeed),
            "junction" => Some(&mut self.junction),
            _ => None,
        }
    }
}

/// A kept way whose node references are not resolved yet.
#[derive(Debug)]
pub(super) struct PendingWay {
    refs: Vec<i64>,
    kmh: f64,
    direction: Direction,
}

pub(crate) fn read(input: impl BufRead, speeds: &SpeedTable) -> Result<RawNetwork, RoadsError> {
    let mut xml = Reader::from_reader(input);
    let mut buf = Vec::new();
    let mut raw = RawNetwork::default();
    let mut index: HashMap<i64, u32> = HashMap::new();
    let mut pending = Vec::new();
    let mut open: Option<OpenWay> = None;
    loop {
        let event = xml
            .read_event_into(&mut buf)
            .map_err(|source| RoadsError::Xml {
                position: xml.buffer_position(),
                source,
            })?;
        let at = Attrs { reader: &xml };
        match &event {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"node" => {
                    let id: i64 = at.parse(e, "node", "id")?;
                    let lat: f64 = at.parse(e, "node", "lat")?;
                    let lon: f64 = at.parse(e, "node", "lon")?;
                    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                        let value = format!("{lat},{lon}");
                        return Err(RoadsError::BadAttribute {
                            element: "node",
                            attribute: "lat/lon",
                            value,
                        });
                    }
                    let slot = u32::try_from(raw.coords.len()).map_err(|_| RoadsError::TooLarge)?;
                    raw.coords.push((lat, lon));
                    index.insert(id, slot);
                }
                b"way" => {
                    raw.ways_read += 1;
                    // An empty `<way/>` has no tags, so it is never a road.
                    if matches!(event, Event::Start(_)) {
                        open = Some(OpenWay::default());
                    }
                }
                b"nd" => {
                    if let Some(way) = open.as_mut() {
                        way.refs.push(at.parse(e, "nd", "ref")?);
                    }
                }
                b"tag" => {
                    if let Some(way) = open.as_mut() {
                        let key = at.get(e, "tag", "k")?;
                        if let Some(slot) = way.tag_slot(&key) {
                            *slot = Some(at.get(e, "tag", "v")?.into_owned());
                        }
                    }
                }
                _ => {}
            },
            Event::End(e) if e.name().as_ref() == b"way" => {
                if let Some(way) = open.take() {
                    pending.extend(keep_way(way, speeds, &mut raw));
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    resolve(pending, &index, &mut raw);
    Ok(raw)
}

/// Turns pending ways into [`RawWay`]s over the node slots in `index`, splitting a way at
/// references to nodes that are not in the file.
pub(super) fn resolve(pending: Vec<PendingWay>, index: &HashMap<i64, u32>, raw: &mut RawNetwork) {
    for way in pending {
        for run in way.refs.split(|r| !index.contains_key(r)) {
            if run.len() >= 2 {
                let nodes = run.iter().filter_map(|r| index.get(r).copied()).collect();
                raw.ways.push(RawWay {
                    nodes,
                    kmh: way.kmh,
                    direction: way.direction,
                });
            }
        }
    }
}

/// Decides whether a finished way is a drivable road, counting it in `raw` if so.
pub(super) fn keep_way(
    way: OpenWay,
    speeds: &SpeedTable,
    raw: &mut RawNetwork,
) -> Option<PendingWay> {
    let class = way.highway?;
    speeds.kmh(&class)?;
    let maxspeed = way.maxspeed.as_deref().and_then(|m| {
        let parsed = parse_maxspeed(m);
        raw.bad_maxspeed += usize::from(parsed.is_none());
        parsed
    });
    let kmh = speeds.way_kmh(&class, maxspeed)?;
    let implied = Direction::implied(&class, way.junction.as_deref());
    let direction = Direction::from_oneway(way.oneway.as_deref(), implied);
    raw.ways_kept += 1;
    *raw.ways_by_class.entry(class).or_default() += 1;
    Some(PendingWay {
        refs: way.refs,
        kmh,
        direction,
    })
}

/// Attribute access with errors that name the element and attribute.
struct Attrs<'r, R> {
    reader: &'r Reader<R>,
}

impl<R> Attrs<'_, R> {
    fn get<'e>(
        &self,
        e: &'e BytesStart<'_>,
        element: &'static str,
        attribute: &'static str,
    ) -> Result<Cow<'e, str>, RoadsError> {
        let xml_err = |source: quick_xml::Error| RoadsError::Xml {
            position: self.reader.buffer_position(),
            source,
        };
        let attr = e
            .try_get_attribute(attribute)
            .map_err(|err| xml_err(err.into()))?
            .ok_or(RoadsError::BadAttribute {
                element,
                attribute,
                value: String::new(),
            })?;
        attr.decode_and_unescape_value(self.reader.decoder())
            .map_err(xml_err)
    }

    fn parse<T: FromStr>(
        &self,
        e: &BytesStart<'_>,
        element: &'static str,
        attribute: &'static str,
    ) -> Result<T, RoadsError> {
        let value = self.get(e, element, attribute)?;
        value.trim().parse().map_err(|_| RoadsError::BadAttribute {
            element,
            attribute,
            value: value.into_owned(),
        })
    }
}
