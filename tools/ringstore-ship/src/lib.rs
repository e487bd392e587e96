//! `ringstore-ship`: ships the sealed segments of a ringstore data dir,
//! exactly once, into one Apache Iceberg table through an Iceberg REST
//! catalog, as Parquet data files on S3-compatible storage.
//!
//! # What it reads and writes
//!
//! The data dir is read only, while a store may be running on it: sealed
//! segments only ([`segments`]), through the log tool's walker and the
//! library's one decoder ([`convert`]). The one file it writes there is
//! `<dir>/SHIPPED` (below). Rows go to Parquet files under the table's
//! location (`<location>/data/`), committed by a fast append.
//!
//! # Table schema
//!
//! One row per frame, put or delete (`op`); see [`schema`] for the columns.
//! The newest record per key (what `Store::open` recovers), in DuckDB, Spark
//! or Trino SQL: rank every row of a key as recovery ranks frames, and leave
//! out the keys whose newest row is a delete (after ranking, never before):
//!
//! ```sql
//! SELECT * FROM (
//!   SELECT *, row_number() OVER (
//!     PARTITION BY instance, key
//!     ORDER BY version DESC, generation DESC, lsn DESC) AS rn
//!   FROM lake.ringstore.history) t
//! WHERE rn = 1 AND op = 'put';
//! ```
//!
//! # Exactly once
//!
//! The table holds what is committed: the property
//! `ringstore.ship.watermark.<instance>` names, per shard folder, the newest
//! segment in the table (`shard:seq:generation:created_unix_ns`; segments of
//! a folder are shipped in seq order). Every commit adds the rows of some
//! segments and raises that property in one atomic table update, planned
//! against one table metadata version and committed with the catalog's
//! `assert-ref-snapshot-id` requirement ([`catalog::Guarded`]): if anyone
//! committed meanwhile, the shipper reloads, drops what is now committed and
//! plans again. A shipper killed at any point leaves either the whole commit
//! or none of it; its uploaded but uncommitted files are orphans nobody
//! reads. Each snapshot's summary also lists its segments
//! (`ringstore.ship.instance`, `ringstore.ship.segments`).
//!
//! # `SHIPPED`: the watermark for the store
//!
//! After each commit, and at start, the shipper writes `<dir>/SHIPPED`
//! (temporary file `SHIPPED.<pid>.tmp`, fsync, rename, fsync of the dir):
//!
//! ```text
//! ringstore-shipped 1
//! instance <name>
//! table <namespace>.<table>
//! shard-<i> <seq> <generation> <created_unix_ns>     (one line per shard folder)
//! end
//! ```
//!
//! Segment `shard-<i>/<s>.seg` is in the table when `s <= seq` on its
//! folder's line; a folder without a line has nothing shipped. A file without
//! the final `end` line is not a watermark. It is derived from the table, so
//! it may lag it (after a crash) but never lead it.
//!
//! # Exit codes
//!
//! 0 done; 1 a damaged sealed segment; 2 usage or local I/O error;
//! 3 catalog or object store unreachable or failing (rerun); 4 credentials
//! refused; 5 table schema incompatible, or the instance name already used
//! by another data dir.

pub mod catalog;
pub mod convert;
pub mod error;
pub mod failpoint;
pub mod progress;
pub mod schema;
pub mod segments;
pub mod ship;
pub mod watermark;

pub use error::{
    EXIT_CREDENTIALS, EXIT_DAMAGED, EXIT_ERROR, EXIT_INCOMPATIBLE, EXIT_OK, EXIT_UNREACHABLE,
    ShipError,
};
pub use ship::{Mode, ShipOptions, Summary, run};
