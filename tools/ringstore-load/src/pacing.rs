//! Deadline pacing, like a ticker: the k-th operation of a worker is due at
//! `origin + k × interval`, so sleep overshoot never accumulates into drift.
//! A worker that falls behind skips the ticks it missed (and counts them)
//! rather than firing them back to back, as Go's `time.Ticker` does.

use std::time::{Duration, Instant};

/// A worker's schedule.
#[derive(Debug)]
pub struct Ticker {
    origin: Instant,
    interval: Duration,
    next_tick: u32,
    missed: u64,
}

impl Ticker {
    /// A schedule starting now-ish at `origin`; a zero interval never waits.
    pub fn new(origin: Instant, interval: Duration) -> Ticker {
        Ticker {
            origin,
            interval,
            next_tick: 0,
            missed: 0,
        }
    }

    /// Sleeps until the next tick is due (returns at once when late).
    pub fn wait(&mut self) {
        if self.interval.is_zero() {
            return;
        }
        let due = self.origin + self.interval.saturating_mul(self.next_tick);
        let now = Instant::now();
        if now < due {
            std::thread::sleep(due - now);
        } else {
            let late_ticks = (now - due).as_nanos() / self.interval.as_nanos().max(1);
            let late_ticks = u32::try_from(late_ticks).unwrap_or(u32::MAX);
            self.missed += u64::from(late_ticks);
            self.next_tick = self.next_tick.saturating_add(late_ticks);
        }
        self.next_tick = self.next_tick.saturating_add(1);
    }

    /// Ticks skipped because the worker was late.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_do_not_drift() {
        let origin = Instant::now();
        let mut ticker = Ticker::new(origin, Duration::from_millis(2));
        for _ in 0..50 {
            ticker.wait();
        }
        // 50 waits: ticks 0..49 → due at 98 ms; sleeping 2 ms after each
        // operation instead would add every overshoot.
        let elapsed = origin.elapsed();
        assert!(elapsed >= Duration::from_millis(98), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(140), "{elapsed:?}");
    }

    #[test]
    fn late_ticks_are_skipped_not_bunched() {
        let origin = Instant::now();
        let mut ticker = Ticker::new(origin, Duration::from_millis(1));
        ticker.wait();
        std::thread::sleep(Duration::from_millis(10));
        ticker.wait();
        assert!(ticker.missed() >= 8, "missed {}", ticker.missed());
        // The schedule jumped past the missed ticks: the next one is due in
        // the future, not immediately (no catch-up burst).
        let due = origin + Duration::from_millis(1) * ticker.next_tick;
        assert!(due > Instant::now() - Duration::from_millis(1));
    }
}
