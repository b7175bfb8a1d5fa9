//! The committed fixture county (`fixtures/` at the repository root), built into the binary:
//! `patrol demo` started outside the repository writes it out and runs on it.

use std::path::Path;

use anyhow::Context;

/// The files of the fixture county: name, contents.
pub const FILES: [(&str, &str); 10] = [
    (
        "jurisdiction.toml",
        include_str!("../../fixtures/jurisdiction.toml"),
    ),
    (
        "county.geojson",
        include_str!("../../fixtures/county.geojson"),
    ),
    (
        "stations.geojson",
        include_str!("../../fixtures/stations.geojson"),
    ),
    (
        "beats.geojson",
        include_str!("../../fixtures/beats.geojson"),
    ),
    (
        "zones.geojson",
        include_str!("../../fixtures/zones.geojson"),
    ),
    (
        "checkpoints.geojson",
        include_str!("../../fixtures/checkpoints.geojson"),
    ),
    ("roads.osm", include_str!("../../fixtures/roads.osm")),
    ("units.csv", include_str!("../../fixtures/units.csv")),
    ("roster.csv", include_str!("../../fixtures/roster.csv")),
    (
        "incidents.csv",
        include_str!("../../fixtures/incidents.csv"),
    ),
];

/// Writes the fixture county into `dir` (created if missing), replacing files of the same
/// names.
///
/// # Errors
/// The directory or a file cannot be written.
pub fn write_to(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, text) in FILES {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    /// What is built in is the committed county, loaded by the one validator.
    #[test]
    fn the_built_in_county_loads() {
        let dir = tempfile::tempdir().unwrap();
        write_to(dir.path()).unwrap();
        let j = model::jurisdiction::Jurisdiction::load(dir.path()).unwrap();
        assert!(j.units().len() > 30 && !j.roster().is_empty());
        assert!(j.roads_path().is_some());
    }
}
