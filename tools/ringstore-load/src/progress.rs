//! A one-line progress bar on stderr while the workload runs; silent when
//! stderr is not a terminal (CI logs, pipes).

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use crate::workload::Live;

const WIDTH: usize = 30;
const REFRESH: Duration = Duration::from_millis(200);

/// What "done" means for the bar.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// A total number of puts.
    Puts(u64),
    /// A run time.
    Time(Duration),
}

/// Starts the bar's thread if stderr is a terminal; it ends when the writers
/// are done.
pub fn spawn<'scope>(
    scope: &'scope Scope<'scope, '_>,
    live: &'scope Live,
    target: Target,
) -> Option<ScopedJoinHandle<'scope, ()>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    std::thread::Builder::new()
        .name("progress".into())
        .spawn_scoped(scope, move || run(live, target))
        .ok()
}

fn run(live: &Live, target: Target) {
    let started = Instant::now();
    let mut err = std::io::stderr();
    while !live.writers_done.load(Ordering::Acquire) {
        let puts = live.puts.load(Ordering::Relaxed);
        let gets = live.gets.load(Ordering::Relaxed);
        let elapsed = started.elapsed();
        let fraction = match target {
            Target::Puts(total) => puts as f64 / total.max(1) as f64,
            Target::Time(d) => elapsed.as_secs_f64() / d.as_secs_f64().max(1e-9),
        }
        .clamp(0.0, 1.0);
        let filled = (fraction * WIDTH as f64) as usize;
        let bar: String = (0..WIDTH)
            .map(|i| if i < filled { '#' } else { '-' })
            .collect();
        let _ = write!(
            err,
            "\r  [{bar}] {:>3.0}%  puts {puts}  gets {gets}  {:.1} s ",
            fraction * 100.0,
            elapsed.as_secs_f64()
        );
        let _ = err.flush();
        std::thread::sleep(REFRESH);
    }
    let _ = write!(err, "\r{:width$}\r", "", width = WIDTH + 60);
    let _ = err.flush();
}
