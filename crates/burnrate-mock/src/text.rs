//! Deterministic ids, random numbers and reply text.
//!
//! Everything here is a pure function of the server seed and the call number, so a test that
//! sends the same requests to a fresh server sees the same ids and the same text.

/// One step of SplitMix64: a fast, well-mixed 64-bit hash.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A number in `[0, 1)` for call `number` of a server seeded with `seed`, on stream `salt`.
pub(crate) fn unit(seed: u64, number: u64, salt: u64) -> f64 {
    let bits = mix(seed ^ mix(number ^ salt.rotate_left(32)));
    // 53 random mantissa bits.
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// FNV-1a over `bytes`: a cheap stable hash for embedding vectors.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Ids of one call: each kind of id is drawn from its own salt.
#[derive(Clone, Copy)]
pub(crate) struct Ids {
    seed: u64,
}

impl Ids {
    /// Ids for call `number` of a server seeded with `seed`.
    pub(crate) fn new(seed: u64, number: u64) -> Self {
        Self {
            seed: mix(seed ^ mix(number)),
        }
    }

    fn draw(self, salt: u64, prefix: &str, len: usize, alphabet: &[u8]) -> String {
        let mut out = String::with_capacity(prefix.len() + len);
        out.push_str(prefix);
        let mut state = mix(self.seed ^ salt);
        let radix = alphabet.len() as u64;
        for i in 0..len {
            if i % 8 == 0 {
                state = mix(state);
            }
            let digit = (state % radix) as usize;
            state /= radix;
            out.push(char::from(alphabet[digit]));
        }
        out
    }

    /// `chatcmpl-` + 29 base-62 characters.
    pub(crate) fn chat_completion(self) -> String {
        self.draw(1, "chatcmpl-", 29, BASE62)
    }

    /// `call_` + 24 base-62 characters (OpenAI tool call ids).
    pub(crate) fn call(self) -> String {
        self.draw(2, "call_", 24, BASE62)
    }

    /// `resp_` + 50 hex characters (Responses API).
    pub(crate) fn response(self) -> String {
        self.draw(3, "resp_", 50, HEX)
    }

    /// A Responses output item id: `prefix` + 50 hex characters.
    pub(crate) fn item(self, prefix: &str, index: u64) -> String {
        self.draw(4 + index, prefix, 50, HEX)
    }

    /// `msg_01` + 22 base-62 characters (Anthropic message ids).
    pub(crate) fn anthropic_message(self) -> String {
        self.draw(20, "msg_01", 22, BASE62)
    }

    /// `toolu_01` + 22 base-62 characters (Anthropic tool use ids).
    pub(crate) fn tool_use(self) -> String {
        self.draw(21, "toolu_01", 22, BASE62)
    }

    /// A request id header value (`req_...`).
    pub(crate) fn request(self) -> String {
        self.draw(22, "req_011C", 20, BASE62)
    }

    /// An opaque signature for an Anthropic thinking block.
    pub(crate) fn signature(self) -> String {
        self.draw(23, "Eq", 94, BASE62)
    }
}

/// The reply text, one token per entry. Nothing here needs JSON escaping.
const WORDS: [&str; 32] = [
    "This",
    " is",
    " a",
    " deterministic",
    " reply",
    " from",
    " the",
    " burnrate",
    " mock",
    " provider",
    ".",
    " It",
    " counts",
    " tokens",
    " the",
    " way",
    " a",
    " real",
    " model",
    " would",
    ",",
    " so",
    " cost",
    " attribution",
    " can",
    " be",
    " tested",
    " end",
    " to",
    " end",
    " offline",
    ".",
];

/// The thinking text, one token per entry.
const THOUGHTS: [&str; 16] = [
    "Let", " me", " think", " about", " what", " the", " user", " is", " asking", ".", " A",
    " short", " answer", " should", " do", ".",
];

/// Token `i` of the reply text.
pub(crate) fn word(i: u64) -> &'static str {
    WORDS[(i % WORDS.len() as u64) as usize]
}

/// Token `i` of the thinking text.
pub(crate) fn thought(i: u64) -> &'static str {
    THOUGHTS[(i % THOUGHTS.len() as u64) as usize]
}

/// The first `tokens` tokens of the reply text.
pub(crate) fn reply(tokens: u64) -> String {
    (0..tokens).map(word).collect()
}

/// The first `tokens` tokens of the thinking text.
pub(crate) fn thinking(tokens: u64) -> String {
    (0..tokens).map(thought).collect()
}

const PAD: &str = "q7Xw2LmZp9KbR4tYc8VnJ3sHf6GdE1aU";

/// OpenAI's `obfuscation` padding for chunk `i`: a few characters that vary with the chunk.
pub(crate) fn obfuscation(i: u64) -> &'static str {
    let len = 4 + (i.wrapping_mul(7) % 12) as usize;
    &PAD[..len]
}

/// Splits `text` into pieces of about `size` bytes on character boundaries (for argument
/// deltas).
pub(crate) fn pieces(text: &str, size: usize) -> Vec<&str> {
    let mut out = Vec::with_capacity(text.len() / size.max(1) + 1);
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + size.max(1)).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        out.push(&text[start..end]);
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_provider_shapes_and_are_stable() {
        let ids = Ids::new(7, 3);
        let chat = ids.chat_completion();
        assert!(chat.starts_with("chatcmpl-") && chat.len() == 38);
        assert_eq!(chat, Ids::new(7, 3).chat_completion());
        assert_ne!(chat, Ids::new(7, 4).chat_completion());
        assert!(ids.anthropic_message().starts_with("msg_01"));
        assert_eq!(ids.response().len(), 55);
        assert!(ids.response()[5..].bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn text_and_pieces() {
        assert_eq!(reply(3), "This is a");
        assert_eq!(pieces("{\"é\":1}", 2).concat(), "{\"é\":1}");
        assert!(pieces("", 4).is_empty());
        let u = unit(1, 2, 3);
        assert!((0.0..1.0).contains(&u));
    }
}
