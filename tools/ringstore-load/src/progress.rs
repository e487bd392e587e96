//! A progress bar on stderr while the workload runs (`indicatif`); silent
//! when stderr is not a terminal (CI logs, pipes).

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::workload::Live;

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
    let (len, template) = match target {
        Target::Puts(total) => (total, "  [{bar:30}] {percent:>3}%  {msg}  {elapsed}"),
        Target::Time(d) => (
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            "  [{bar:30}] {percent:>3}%  {msg}  {elapsed} of the run",
        ),
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("#>-"));
    }
    let started = Instant::now();
    while !live.writers_done.load(Ordering::Acquire) {
        let puts = live.puts.load(Ordering::Relaxed);
        let gets = live.gets.load(Ordering::Relaxed);
        bar.set_position(match target {
            Target::Puts(_) => puts,
            Target::Time(_) => u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
        bar.set_message(format!("puts {puts}  gets {gets}"));
        std::thread::sleep(REFRESH);
    }
    bar.finish_and_clear();
}
