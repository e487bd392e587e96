//! Progress on stderr for long commands (`indicatif`), shown only when
//! stderr is a terminal (hidden in pipes, logs and tests) and asked for.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress over a known number of bytes: the segments of one walk.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    /// Bytes of the segments already read.
    segments_done: u64,
}

impl Progress {
    /// Shows progress only if `wanted` and stderr is a terminal.
    pub fn new(wanted: bool, total: u64, label: &'static str) -> Self {
        let bar = if wanted && std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(label);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress {
            bar,
            segments_done: 0,
        }
    }

    /// The walk is at byte `offset` of the segment it is reading.
    pub fn at(&mut self, offset: u64) {
        self.bar.set_position(self.segments_done + offset);
    }

    /// The segment being read, of `file_len` bytes, is behind us.
    pub fn segment_done(&mut self, file_len: u64) {
        self.segments_done += file_len;
        self.bar.set_position(self.segments_done);
    }

    /// Runs `f` (which prints to stdout) with the bar hidden, so the two do
    /// not interleave on a terminal.
    pub fn suspend<T>(&mut self, f: impl FnOnce() -> T) -> T {
        self.bar.suspend(f)
    }

    /// Clears the bar.
    pub fn finish(&mut self) {
        self.bar.finish_and_clear();
    }
}
