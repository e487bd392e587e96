//! Opens a data dir, prints how long recovery took and what it read, then
//! closes it. `cargo run --release --example open_time -- DIR [shards]`.

use std::time::Instant;

use ringstore::{Config, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: open_time DIR [shards]")?;
    let mut config = Config::new(&dir);
    if let Some(shards) = args.next() {
        config = config.shards(shards.parse()?);
    }
    let started = Instant::now();
    let store = Store::open(config)?;
    let open_s = started.elapsed().as_secs_f64();
    let r = store.recovery_report();
    let gb = r.bytes as f64 / 1e9;
    println!(
        "open {open_s:.3} s (recovery {:.3} s): {} segments ({} from hints), {} frames, {gb:.2} GB of log, {} keys, {:.2} GB/s of log covered",
        r.elapsed.as_secs_f64(),
        r.segments,
        r.hinted_segments,
        r.frames,
        r.keys,
        gb / r.elapsed.as_secs_f64().max(1e-9),
    );
    store.close()?;
    Ok(())
}
