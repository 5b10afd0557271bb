//! The o200k tokenizer: OpenAI's o200k vocabulary and pre-tokeniser through `bpe-openai` (the
//! counts of tiktoken, which the tests check, at about four times its speed), read on first use
//! from tables the crate's build embeds compressed.
//!
//! `bpe-openai` embeds its tables as 32 MB of MessagePack, and the pages it reads stay
//! resident for the life of the process. `build.rs` writes the same tables through zstd
//! (15 MB), and this module reads them back and pairs them with o200k's pre-tokeniser.
//! Written by hand because `bpe-openai` builds its o200k tokenizer only from its own copy.

use std::sync::LazyLock;

use bpe_openai::Tokenizer;
use bpe_openai::byte_pair_encoding::BytePairEncoding;

/// `bpe-openai`'s o200k tables, MessagePack through zstd (see `build.rs`).
static TABLES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/o200k_base.bpe.zst"));

/// o200k's pre-tokeniser as `bpe-openai` 0.3 writes it: tiktoken's pattern, whose negative
/// look-ahead `\s+(?!\S)` becomes the second pattern of [`load`], `\s+\s` with its last
/// character a look-ahead (the regex crate has no look-around).
const WORDS: [&str; 6] = [
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "\\p{N}{1,3}",
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*",
    "\\s*[\\r\\n]+",
    "\\s+$",
];

static O200K: LazyLock<Result<Tokenizer, String>> = LazyLock::new(load);

/// The tokenizer, read on first use (about 0.1 s); the error says why the embedded tables did
/// not read, which only a broken build can cause.
pub(super) fn tokenizer() -> Result<&'static Tokenizer, &'static str> {
    O200K.as_ref().map_err(String::as_str)
}

fn load() -> Result<Tokenizer, String> {
    let tables = zstd::Decoder::with_buffer(TABLES)
        .map_err(|e| format!("the embedded o200k tables do not decompress: {e}"))?;
    // MessagePack is read a few bytes at a time: buffered, the load takes half as long.
    let tables = std::io::BufReader::with_capacity(1 << 16, tables);
    let bpe: BytePairEncoding = rmp_serde::from_read(tables)
        .map_err(|e| format!("the embedded o200k tables do not read: {e}"))?;
    let words = WORDS.join("|");
    Tokenizer::new_lookahead(
        bpe,
        &[(&words, false), ("\\s+\\s", true), ("\\s+", false)],
        false,
    )
    .map_err(|e| format!("o200k's pre-tokeniser does not compile: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tokenizer read from the embedded tables counts what `bpe-openai`'s own does, on text
    /// that exercises every pattern of the pre-tokeniser and the tables' byte-level merges.
    #[test]
    fn counts_what_bpe_openai_counts() {
        let ours = tokenizer().unwrap_or_else(|reason| panic!("{reason}"));
        let theirs = bpe_openai::o200k_base();
        let texts = [
            "Hello, world! It's 2026; we've 12345 tokens.\r\n\r\n   trailing   ",
            "def f(x):\n    return x ** 2  # squared\n\n\tindent\t\n",
            "日本語のテキストと English mixed, Ünïcödé, emoji 🔥🚀 and Ωμέγα.",
            "{\"tool\":\"search\",\"args\":{\"q\":\"a/b/c\",\"n\":[1,2,3]}}",
            "CamelCaseWords ALLCAPS lowercase I'LL YOU'RE they'd",
            "\u{0}\u{1}\u{7f} control and combining e\u{301} marks",
        ];
        for text in texts {
            assert_eq!(ours.count(text), theirs.count(text), "{text:?}");
            assert_eq!(
                ours.split(text).collect::<Vec<_>>(),
                theirs.split(text).collect::<Vec<_>>(),
                "{text:?}"
            );
        }
        let long: String = texts.concat().repeat(50);
        assert_eq!(ours.count(&long), theirs.count(&long));
    }
}
