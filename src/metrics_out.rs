//! Cargo feature `metrics`: the shards' statistics through the `metrics`
//! facade, for whatever recorder the service installed (Prometheus,
//! StatsD, OpenTelemetry, ...). `Store::publish_metrics` sets every figure
//! to its current value; call it from the exporter's scrape hook or a
//! timer. Each figure is labelled `shard`.

use crate::shard::stats::ShardStats;

/// Publishes one shard's figures (counters as absolute totals since open,
/// durations in seconds) plus its key count.
pub(crate) fn publish(s: &ShardStats, keys: usize) {
    let shard = s.shard.to_string();
    let counter = |name: &'static str, value: u64| {
        metrics::counter!(name, "shard" => shard.clone()).absolute(value);
    };
    counter("ringstore_batches_total", s.batches);
    counter("ringstore_frames_total", s.frames);
    counter("ringstore_bytes_written_total", s.bytes);
    counter("ringstore_fdatasyncs_total", s.syncs);
    counter("ringstore_rotations_total", s.rotations);
    counter(
        "ringstore_rotations_into_spares_total",
        s.rotations_into_spares,
    );
    counter("ringstore_checkpoints_total", s.checkpoints);
    counter("ringstore_watchdog_wakes_total", s.watchdog_wakes);
    counter("ringstore_recheck_pickups_total", s.recheck_pickups);
    let gauge = |name: &'static str, value: f64| {
        metrics::gauge!(name, "shard" => shard.clone()).set(value);
    };
    gauge("ringstore_keys", keys as f64);
    gauge("ringstore_stage_seconds_total", s.stage.as_secs_f64());
    gauge("ringstore_write_seconds_total", s.write.as_secs_f64());
    gauge("ringstore_sync_seconds_total", s.sync.as_secs_f64());
    gauge("ringstore_idle_seconds_total", s.idle.as_secs_f64());
    gauge("ringstore_write_max_seconds", s.write_max.as_secs_f64());
    gauge(
        "ringstore_put_in_store_p99_seconds",
        s.put_in_store.quantile(0.99).as_secs_f64(),
    );
    gauge(
        "ringstore_put_queued_p99_seconds",
        s.put_queued.quantile(0.99).as_secs_f64(),
    );
}
