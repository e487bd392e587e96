"""Reads a ringstore-ship table with two readers nobody here wrote, pyiceberg
and DuckDB's iceberg extension (loaded from its wheel, no network), and
prints one JSON object with, per reader: rows, sum(version), an
order-independent hash of the keys, the number of duplicate (instance,
shard, segment, offset) rows, the number of delete rows, and the newest
version per key whose newest row is a put (the README's query). With --export FILE (JSON Lines of `ringstore-log export`), the same
figures for the export.

Connection settings come from the environment (see run-tests.sh):
RINGSTORE_SHIP_TEST_CATALOG, RINGSTORE_SHIP_TEST_WAREHOUSE,
RINGSTORE_SHIP_TEST_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
"""

import argparse
import hashlib
import json
import os
import pathlib
import sys
from urllib.parse import urlparse


def key_hash(keys):
    total = 0
    for k in keys:
        total = (total + int.from_bytes(hashlib.sha256(k.encode()).digest()[:8], "little")) % (1 << 64)
    return str(total)


def figures(rows, newest):
    """rows: (instance, key, version, shard, segment, offset, op) tuples."""
    places = {(r[0], r[3], r[4], r[5]) for r in rows}
    return {
        "rows": len(rows),
        "sum_version": sum(r[2] for r in rows),
        "key_hash": key_hash(r[1] for r in rows),
        "duplicates": len(rows) - len(places),
        "deletes": sum(1 for r in rows if r[6] == "delete"),
        "newest": newest,
    }


NEWEST = """
SELECT key, version FROM (
  SELECT *, row_number() OVER (
    PARTITION BY instance, key
    ORDER BY version DESC, generation DESC, lsn DESC) AS rn
  FROM {table}) t
WHERE rn = 1 AND op = 'put' AND instance = ?
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--namespace", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--instance", required=True)
    ap.add_argument("--export")
    args = ap.parse_args()
    env = os.environ
    uri = env["RINGSTORE_SHIP_TEST_CATALOG"]
    warehouse = env["RINGSTORE_SHIP_TEST_WAREHOUSE"]
    s3 = env["RINGSTORE_SHIP_TEST_S3"]
    key_id = env["AWS_ACCESS_KEY_ID"]
    secret = env["AWS_SECRET_ACCESS_KEY"]
    out = {}

    from pyiceberg.catalog import load_catalog

    cat = load_catalog(
        "check", type="rest", uri=uri, warehouse=warehouse, credential=f"{key_id}:{secret}",
        **{"s3.endpoint": s3, "s3.access-key-id": key_id, "s3.secret-access-key": secret,
           "s3.region": "us-east-1"},
    )
    t = cat.load_table(f"{args.namespace}.{args.table}")
    a = t.scan(row_filter=f"instance == '{args.instance}'").to_arrow()
    cols = [a.column(c).to_pylist()
            for c in ["instance", "key", "version", "shard", "segment", "offset", "op"]]
    rows = list(zip(*cols))
    best = {}
    gen = a.column("generation").to_pylist()
    lsn = a.column("lsn").to_pylist()
    records = a.column("record").to_pylist()
    for r, g, l, rec in zip(rows, gen, lsn, records):
        if r[6] == "delete" and rec != "null":
            raise SystemExit(f"delete row with a record: {r} {rec!r}")
        rank = (r[2], g, l)
        if r[1] not in best or rank > best[r[1]][0]:
            best[r[1]] = (rank, r[2], r[6])
    out["pyiceberg"] = figures(rows, {k: v[1] for k, v in best.items() if v[2] == "put"})
    out["pyiceberg"]["snapshots"] = len(t.snapshots())

    import duckdb

    site = pathlib.Path(duckdb.__file__).parent.parent
    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    for ext in ["httpfs", "avro", "iceberg"]:
        path = next((site / f"duckdb_extension_{ext}").rglob(f"{ext}.duckdb_extension"))
        con.execute(f"LOAD '{path}'")
    host = urlparse(s3).netloc
    con.execute(f"CREATE SECRET s3 (TYPE s3, KEY_ID '{key_id}', SECRET '{secret}', "
                f"ENDPOINT '{host}', URL_STYLE 'path', USE_SSL false, REGION 'us-east-1')")
    con.execute(f"CREATE SECRET ice (TYPE iceberg, CLIENT_ID '{key_id}', CLIENT_SECRET '{secret}', "
                f"OAUTH2_SERVER_URI '{uri}/v1/oauth/tokens')")
    bucket = urlparse(warehouse).netloc or warehouse
    con.execute(f"ATTACH '{bucket}' AS lake (TYPE iceberg, ENDPOINT '{uri}', SECRET ice)")
    table = f'lake."{args.namespace}"."{args.table}"'
    rows = con.execute(
        f'SELECT instance, key, version, shard, segment, "offset", op FROM {table} WHERE instance = ?',
        [args.instance]).fetchall()
    newest = dict(con.execute(NEWEST.format(table=table), [args.instance]).fetchall())
    out["duckdb"] = figures(rows, newest)

    if args.export:
        rows = []
        with open(args.export) as f:
            for line in f:
                o = json.loads(line)
                rows.append((args.instance, o["key"], o["version"], o["shard"], o["segment"],
                             o["offset"], o["op"]))
        out["export"] = figures(rows, {})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
