//! A one-line progress display on stderr for long commands, shown only when
//! stderr is a terminal (quiet in pipes, logs and tests). Plain `\r` updates,
//! at most five a second, so it costs nothing measurable.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const EVERY: Duration = Duration::from_millis(200);

/// Progress over a known number of bytes: the segments of one walk.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    total: u64,
    /// Bytes of the segments already read.
    segments_done: u64,
    label: &'static str,
    started: Instant,
    last: Option<Instant>,
    shown: bool,
}

impl Progress {
    /// Shows progress only if `wanted` and stderr is a terminal.
    pub fn new(wanted: bool, total: u64, label: &'static str) -> Self {
        Progress {
            enabled: wanted && std::io::stderr().is_terminal(),
            total,
            segments_done: 0,
            label,
            started: Instant::now(),
            last: None,
            shown: false,
        }
    }

    /// The walk is at byte `offset` of the segment it is reading.
    pub fn at(&mut self, offset: u64) {
        self.show(self.segments_done + offset);
    }

    /// The segment being read, of `file_len` bytes, is behind us.
    pub fn segment_done(&mut self, file_len: u64) {
        self.segments_done += file_len;
        self.show(self.segments_done);
    }

    /// `done` bytes of `total` are behind us.
    fn show(&mut self, done: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < EVERY) {
            return;
        }
        self.last = Some(now);
        let pct = (done.min(self.total) * 100)
            .checked_div(self.total)
            .unwrap_or(100);
        let secs = now.duration_since(self.started).as_secs_f64();
        let rate = if secs > 0.0 {
            done as f64 / 1e6 / secs
        } else {
            0.0
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{} {pct:>3}% {:.1}/{:.1} MB {rate:.0} MB/s ",
            self.label,
            done as f64 / 1e6,
            self.total as f64 / 1e6
        );
        let _ = err.flush();
        self.shown = true;
    }

    /// Runs `f` (which prints to stdout) with the progress line cleared, so
    /// the two do not interleave on a terminal.
    pub fn suspend<T>(&mut self, f: impl FnOnce() -> T) -> T {
        self.clear();
        f()
    }

    /// Clears the line.
    pub fn finish(&mut self) {
        self.clear();
    }

    fn clear(&mut self) {
        if self.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.shown = false;
            self.last = None;
        }
    }
}
