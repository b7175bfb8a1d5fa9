//! Writes the Ashford County demo jurisdiction into `./fixtures` (seed 7).
//!
//! Run from the repository root: `cargo run -p api --example gen_county`.

fn main() -> anyhow::Result<()> {
    let summary = api::county::write_county(std::path::Path::new("fixtures"), 7)?;
    println!("{summary:#?}");
    Ok(())
}
