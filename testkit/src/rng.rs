//! A small deterministic random generator for the randomized tests, so that a failing
//! seed can be replayed.

/// A small deterministic generator (SplitMix64), so a failing seed can be replayed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next_u64() % items.len() as u64) as usize]
    }
}

impl Rng {
    /// A string of up to `max` characters drawn from SQL-ish and hostile pieces.
    pub fn sql_string(&mut self, max: usize) -> String {
        const PIECES: &[&str] = &[
            "a",
            "Z",
            "0",
            "9",
            " ",
            "\n",
            "\t",
            "'",
            "''",
            "\"",
            ";",
            "--",
            "/*",
            "*/",
            "::",
            "$1",
            "%",
            "_",
            "\\",
            "\u{0}",
            "\u{7}",
            "é",
            "模",
            "🦀",
            "SELECT",
            "DROP TABLE models",
            "NULL",
            "(",
            ")",
            ",",
        ];
        let len = (self.next_u64() % (max as u64 + 1)) as usize;
        (0..len).map(|_| *self.pick(PIECES)).collect()
    }
}
