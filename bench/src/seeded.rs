//! A small seeded random number generator (SplitMix64), so every simulated figure is the same on
//! every run and with every version of the `rand` crate.

/// SplitMix64: a seed in, a fixed sequence of numbers out.
#[derive(Debug, Clone)]
pub struct Seeded(u64);

impl Seeded {
    /// The sequence of `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The sequence of several numbers (a benchmark case and its run number, say).
    pub fn of(parts: &[u64]) -> Self {
        let mut mixed = Self::new(0x5EED);
        for part in parts {
            mixed = Self::new(mixed.next_u64() ^ part);
        }
        mixed
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A number in `[low, high)`.
    pub fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_numbers_in_range() {
        let a: Vec<f64> = (0..100)
            .map({
                let mut s = Seeded::of(&[1, 2]);
                move |_| s.unit()
            })
            .collect();
        let b: Vec<f64> = (0..100)
            .map({
                let mut s = Seeded::of(&[1, 2]);
                move |_| s.unit()
            })
            .collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|x| (0.0..1.0).contains(x)));
        assert_ne!(
            Seeded::of(&[1, 2]).next_u64(),
            Seeded::of(&[2, 1]).next_u64()
        );
        let mean = a.iter().sum::<f64>() / a.len() as f64;
        assert!((0.35..0.65).contains(&mean), "{mean}");
    }
}
