//! Seeded randomness (SplitMix64): the simulation is the same for the same seed. The
//! daemon's timers take their random source as a `fn() -> u64`, so the simulation hands
//! them [`timer_random`], which draws from a thread-local generator seeded by [`seed`].

use std::cell::Cell;

/// SplitMix64: small, fast, and good enough to spread timers.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

thread_local! {
    static TIMERS: Cell<u64> = const { Cell::new(0) };
}

/// Seeds the generator behind [`timer_random`].
pub fn seed(seed: u64) {
    TIMERS.with(|s| s.set(seed));
}

/// The daemon timers' random source in the simulation.
pub fn timer_random() -> u64 {
    TIMERS.with(|s| {
        let mut r = Rng::new(s.get());
        let v = r.next();
        s.set(r.0);
        v
    })
}
