//! `export` as a process: JSON Lines equal to `dump`, Parquet read back with
//! the parquet crate (row count and typed values), `--latest`, and refusal to
//! write inside the data dir.

mod common;

use common::{export, json_lines, populate, stdout, temp_dir};

#[test]
fn jsonl_export_equals_dump() {
    let dir = temp_dir();
    populate(dir.path(), 4, 2);
    let out_dir = temp_dir();
    let out = out_dir.path().join("all.jsonl");
    let o = export(dir.path(), "jsonl", &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    let dumped = stdout(&common::run_on("dump", dir.path(), &[]));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), dumped);

    let latest = out_dir.path().join("latest.jsonl");
    let o = export(dir.path(), "jsonl", &latest, &["--latest"]);
    assert_eq!(o.status.code(), Some(0));
    let lines = json_lines(&std::fs::read_to_string(&latest).unwrap());
    assert_eq!(lines.len(), 4);
    assert_eq!(
        std::fs::read_to_string(&latest).unwrap(),
        stdout(&common::run_on("latest", dir.path(), &[]))
    );
}

#[test]
fn refuses_to_write_inside_the_data_dir() {
    let dir = temp_dir();
    populate(dir.path(), 2, 1);
    let out = dir.path().join("x.jsonl");
    let o = export(dir.path(), "jsonl", &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!out.exists());
}

#[cfg(feature = "parquet")]
mod parquet_export {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;

    #[test]
    fn parquet_rows_and_typed_values_read_back() {
        let dir = temp_dir();
        let w = populate(dir.path(), 5, 3);
        let out_dir = temp_dir();
        let out = out_dir.path().join("all.parquet");
        let o = export(dir.path(), "parquet", &out, &[]);
        assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));

        let reader = SerializedFileReader::new(std::fs::File::open(&out).unwrap()).unwrap();
        let meta = reader.metadata().file_metadata();
        assert_eq!(meta.num_rows() as usize, w.puts.len());
        let schema = meta.schema_descr();
        let names: Vec<String> = schema
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "key",
                "version",
                "op",
                "shard",
                "segment",
                "offset",
                "deleted_at_unix_ns",
                "collection_time",
                "name",
                "ok",
                "raw",
                "tags",
                "x"
            ]
        );
        let col = |n: &str| names.iter().position(|c| c == n).unwrap();
        let dumped = json_lines(&stdout(&common::run_on("dump", dir.path(), &[])));
        let mut n = 0;
        for (row, line) in reader.get_row_iter(None).unwrap().zip(&dumped) {
            let row = row.unwrap();
            let version = row.get_long(col("version")).unwrap();
            assert_eq!(
                row.get_string(col("key")).unwrap(),
                line["key"].as_str().unwrap()
            );
            assert_eq!(version, line["version"].as_i64().unwrap());
            assert_eq!(
                row.get_long(col("offset")).unwrap() as u64,
                line["offset"].as_u64().unwrap()
            );
            assert_eq!(row.get_long(col("collection_time")).unwrap(), version);
            assert_eq!(row.get_double(col("x")).unwrap(), version as f64 * 0.5);
            assert_eq!(row.get_bool(col("ok")).unwrap(), version % 2 == 0);
            assert_eq!(
                row.get_string(col("name")).unwrap(),
                line["record"]["name"].as_str().unwrap()
            );
            assert_eq!(row.get_bytes(col("raw")).unwrap().data()[1], 0xff);
            // Nested values are JSON text.
            let tags: serde_json::Value =
                serde_json::from_str(row.get_string(col("tags")).unwrap()).unwrap();
            assert_eq!(tags, line["record"]["tags"]);
            n += 1;
        }
        assert_eq!(n, w.puts.len());
    }

    #[test]
    fn parquet_latest_has_one_row_per_key() {
        let dir = temp_dir();
        populate(dir.path(), 5, 3);
        let out_dir = temp_dir();
        let out = out_dir.path().join("latest.parquet");
        let o = export(dir.path(), "parquet", &out, &["--latest"]);
        assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
        let reader = SerializedFileReader::new(std::fs::File::open(&out).unwrap()).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 5);
        let latest = json_lines(&stdout(&common::run_on("latest", dir.path(), &[])));
        for (row, line) in reader.get_row_iter(None).unwrap().zip(&latest) {
            let row = row.unwrap();
            assert_eq!(row.get_string(0).unwrap(), line["key"].as_str().unwrap());
            assert_eq!(row.get_long(1).unwrap(), line["version"].as_i64().unwrap());
        }
    }
}
