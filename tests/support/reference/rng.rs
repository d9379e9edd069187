//! splitmix64 random numbers and the run's seed, so that a printed seed replays a run.

/// splitmix64: a few lines, no dependency, and the same sequence everywhere, so a seed
/// replays a failure exactly.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high` (the modulo bias is irrelevant for test data).
    pub fn range(&mut self, low: i64, high: i64) -> i64 {
        let span = u64::try_from(high - low + 1).expect("low <= high");
        low + i64::try_from(self.next_u64() % span).expect("a small span")
    }

    /// Uniform in `0..bound` (modulo bias aside).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    pub fn index(&mut self, len: usize) -> usize {
        let high = i64::try_from(len).expect("a small length") - 1;
        usize::try_from(self.range(0, high)).expect("non-negative")
    }

    pub fn chance(&mut self, probability: f64) -> bool {
        // 53 random bits as a fraction in [0, 1).
        ((self.next_u64() >> 11) as f64) / ((1_u64 << 53) as f64) < probability
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.index(items.len())]
    }

    pub fn pick_ref<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }
}

/// The run's seed: the override from the environment, or a fresh one from the clock.
pub fn seed() -> u64 {
    match std::env::var("SIGHTLINE_DIFFERENTIAL_SEED") {
        Ok(text) => {
            let text = text.trim();
            let parsed = match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            };
            parsed.unwrap_or_else(|_| {
                panic!("SIGHTLINE_DIFFERENTIAL_SEED must be a number, not {text:?}")
            })
        }
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_nanos();
            // Mixed once, so seeds of runs started close together look unrelated.
            Rng::new(nanos as u64).next_u64()
        }
    }
}
