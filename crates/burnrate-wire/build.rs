//! Embeds the o200k tokenizer's byte-pair tables compressed (read back by `src/layers/o200k.rs`).
//!
//! `bpe-openai` embeds its o200k tables as 32 MB of MessagePack; the pages it reads at first use
//! stay resident for the life of the process, about a fifth of the gateway's memory before any
//! call. The same tables through zstd take about 15 MB. This script takes them from
//! `bpe-openai` built for the build machine (so they are exactly its tables) and writes them to
//! `OUT_DIR/o200k_base.bpe.zst`.

use std::error::Error;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// zstd's highest level without `--ultra`.
const LEVEL: i32 = 19;

/// A 128 KB window (2^17): 15.3 MB instead of 13.1 with level 19's own 8 MB. Reading needs a
/// buffer of the window's size; one of 8 MB, freed after loading, raises glibc's thresholds
/// for returning memory to the system, and the gateway then held 2–3 KB more per open stream.
const WINDOW_LOG: u32 = 17;

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo::rerun-if-changed=build.rs");
    let out_dir = std::env::var_os("OUT_DIR").ok_or("cargo sets OUT_DIR for build scripts")?;
    let path = PathBuf::from(out_dir).join("o200k_base.bpe.zst");
    let mut encoder = zstd::Encoder::new(BufWriter::new(File::create(&path)?), LEVEL)?;
    encoder.window_log(WINDOW_LOG)?;
    encoder.include_checksum(true)?;
    rmp_serde::encode::write(&mut encoder, &bpe_openai::o200k_base().bpe)?;
    encoder.finish()?.flush()?;
    Ok(())
}
