"""Benchmark quantile states for the rollups on embedded chDB: insert cost through a view, merge cost, accuracy.

Candidate ways to keep call-duration quantiles in a per-minute ``AggregatingMergeTree`` rollup,
filled by a materialized view from a raw span table, each in its own table and view:

=======  ===================================================================================
``N``    count only (``Calls``), no quantile column: the cost of having a view at all
``A``    t-digest, ``AggregateFunction(quantilesTDigest(...), UInt64)``
``B``    log-bucket histogram, ``SimpleAggregateFunction(sumMap, Map(UInt16, UInt64))`` built
         with ``sumMap(map(bucket, 1))``; bucket = ``round(log(Duration) / log(1.02))``
``B2``   the same histogram in the tuple form, ``Tuple(Array(UInt16), Array(UInt64))``
``B5``   the ``B`` column built as ``CAST((groupArray(bucket), [1, ...]), 'Map(...)')``
``C``    ``AggregateFunction(quantilesBFloat16(...), UInt64)``
``D``    DDSketch, ``AggregateFunction(quantilesDD(0.01, ...), UInt64)``
=======  ===================================================================================

A histogram is read back by ``sumMap`` over the selected rows, a cumulative sum of the counts
and, per level, the first bucket whose running count passes ``level x total``, returned as
``1.02 ^ bucket``. With ratio 1.02 that is at most half a bucket, about 1 % of the value,
away from the true quantile (plus whatever the exact rank in the bucket adds).

The source is ``--rows`` synthetic spans over 7 days: 2,000 keys (``Key``), 20 teams
(``Team``), log-normal durations (median 0.5 s, sigma 1). ``--key`` picks the view's group key.

* Insert (``--insert``): the time to insert all rows in two halves ("big") and 20 inserts of
  512 rows ("small", the exporter's batch size) into the raw table with no view (``none``) or
  with one variant's view; best of ``--repeat`` runs, and the ratio to ``none``.
* Query (``--query``): every selected view is filled from one insert of all rows and merged
  (``OPTIMIZE FINAL``); then hourly quantiles over all keys and over about 5 % of them are
  timed (median of 5 runs) and compared per hour with ``quantilesExact`` over the raw rows:
  the max and mean relative error for each level.

The raw table here has 4 narrow columns, far fewer bytes per row than ``otel_traces``, so the
insert ratios are upper bounds of what the views cost on real rows. ::

    python bench/bench_rollup_sketches.py                                  # everything, 1M rows
    python bench/bench_rollup_sketches.py --rows 100000 --repeat 1         # quick
    python bench/bench_rollup_sketches.py --insert --variants N,A,B --optimize-on-insert 0
    python bench/bench_rollup_sketches.py --query --key Team --dir /tmp/sk --keep
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chdb import session

DB = "bench"
LEVELS = (0.5, 0.95, 0.99)
LV = ", ".join(str(level) for level in LEVELS)
LABELS = tuple(f"p{round(level * 100)}" for level in LEVELS)
KEYS = 2000
TEAMS = 20
SPAN_NS = 7 * 86400 * 10**9
SMALL_INSERTS = 20
SMALL_ROWS = 512
QUERY_RUNS = 5
# The "about 5 %" filter, per group key: 110 of 2,000 keys or 1 of 20 teams.
FILTERS = {"Key": "< 'k0110'", "Team": "= 'team1'"}
BUCKET = "toUInt16(round(log(greatest(Duration, 1)) / log(1.02)))"
# Lambda parameters are named so that no column or alias (Start, Key, Calls, Q, h, m, ks, cs,
# total, ...) can shadow them.
HIST_READ = (
    f"arrayMap(lvl_ -> if(total = 0, nan, pow(1.02, ks[arrayFirstIndex(cum_ -> cum_ > lvl_ * total, cs)])), [{LV}])"
)


@dataclass(frozen=True)
class Variant:
    """A rollup column: its type, the view's expression, and how a query reads it (over ``Q``)."""

    column: str | None = None
    state: str | None = None
    merge: str | None = None
    hist_parts: tuple[str, str] | None = None  # keys and counts of the merged histogram ``m``

    def read(self) -> str:
        """The SELECT expression of the merged quantiles (levels ``LEVELS``)."""
        return HIST_READ if self.hist_parts else str(self.merge)

    def with_clause(self) -> str:
        if not self.hist_parts:
            return ""
        keys, counts = self.hist_parts
        return f"WITH sumMap(Q) AS m, {keys} AS ks, arrayCumSum({counts}) AS cs, cs[-1] AS total "


MAP_PARTS = ("mapKeys(m)", "mapValues(m)")
VARIANTS = {
    "N": Variant(),
    "A": Variant(
        f"AggregateFunction(quantilesTDigest({LV}), UInt64)",
        f"quantilesTDigestState({LV})(Duration)",
        f"quantilesTDigestMerge({LV})(Q)",
    ),
    "B": Variant(
        "SimpleAggregateFunction(sumMap, Map(UInt16, UInt64))",
        f"sumMap(map({BUCKET}, toUInt64(1)))",
        hist_parts=MAP_PARTS,
    ),
    "B2": Variant(
        "SimpleAggregateFunction(sumMap, Tuple(Array(UInt16), Array(UInt64)))",
        f"sumMap([{BUCKET}], [toUInt64(1)])",
        hist_parts=("m.1", "m.2"),
    ),
    "B5": Variant(
        "SimpleAggregateFunction(sumMap, Map(UInt16, UInt64))",
        f"CAST((groupArray({BUCKET}), arrayWithConstant(count(), toUInt64(1))), 'Map(UInt16, UInt64)')",
        hist_parts=MAP_PARTS,
    ),
    "C": Variant(
        f"AggregateFunction(quantilesBFloat16({LV}), UInt64)",
        f"quantilesBFloat16State({LV})(Duration)",
        f"quantilesBFloat16Merge({LV})(Q)",
    ),
    "D": Variant(
        f"AggregateFunction(quantilesDD(0.01, {LV}), UInt64)",
        f"quantilesDDState(0.01, {LV})(Duration)",
        f"quantilesDDMerge(0.01, {LV})(Q)",
    ),
}


@dataclass(frozen=True)
class Db:
    """A chDB session with the run's settings."""

    session: session.Session
    key: str
    insert_settings: str

    def run(self, sql: str, fmt: str = "CSV") -> str:
        return str(self.session.query(sql, fmt).bytes().decode())

    def rows(self, sql: str) -> list[list[Any]]:
        return [json.loads(line) for line in self.run(sql, "JSONCompactEachRow").splitlines() if line]


def setup_source(db: Db, rows: int) -> None:
    """Create ``DB.src`` with ``rows`` spans, unless it already holds that many."""
    db.run(f"CREATE DATABASE IF NOT EXISTS {DB}")
    if db.rows(f"SELECT count() FROM system.tables WHERE database = '{DB}' AND name = 'src'")[0][0]:
        if db.rows(f"SELECT count() FROM {DB}.src")[0][0] == rows:
            return
        db.run(f"DROP TABLE {DB}.src SYNC")
    step = SPAN_NS // rows
    db.run(f"""CREATE TABLE {DB}.src (id UInt64, Timestamp DateTime64(9, 'UTC'), Key String, Team String,
        Duration UInt64) ENGINE = MergeTree ORDER BY id""")
    db.run(f"""INSERT INTO {DB}.src SELECT number,
        toDateTime64('2025-01-06 00:00:00', 9, 'UTC') + toIntervalNanosecond(number * {step} + rand() % {step}),
        concat('k', leftPad(toString(k), 4, '0')), concat('team', toString(k % {TEAMS})),
        toUInt64(randLogNormal(log(5e8), 1.0))
        FROM (SELECT number, rand(1) % {KEYS} AS k FROM numbers({rows}))""")
    stats = db.rows(f"""SELECT count(), uniqExact(Key), uniqExact(Team), min(Timestamp), max(Timestamp),
        quantiles(0.5, 0.99)(Duration), max(Duration) FROM {DB}.src""")[0]
    print("source rows, keys, teams, first, last, p50/p99 and max Duration (ns):", stats)


def drop_all(db: Db) -> None:
    """Drop every view and table of ``DB`` but the source."""
    views = db.rows(f"SELECT name FROM system.tables WHERE database = '{DB}' AND engine = 'MaterializedView'")
    for (name,) in views:
        db.run(f"DROP VIEW {DB}.{name} SYNC")
    for (name,) in db.rows(f"SELECT name FROM system.tables WHERE database = '{DB}' AND name != 'src'"):
        db.run(f"DROP TABLE {DB}.{name} SYNC")


def create_view(db: Db, name: str) -> None:
    variant = VARIANTS[name]
    column = f",\n Q {variant.column}" if variant.column else ""
    state = f", {variant.state} AS Q" if variant.state else ""
    db.run(f"""CREATE TABLE {DB}.t_{name} (Start DateTime('UTC'), Key String,
        Calls SimpleAggregateFunction(sum, UInt64){column}) ENGINE = AggregatingMergeTree ORDER BY (Start, Key)""")
    db.run(f"""CREATE MATERIALIZED VIEW {DB}.mv_{name} TO {DB}.t_{name} AS
        SELECT toStartOfMinute(toDateTime(Timestamp, 'UTC')) AS Start, {db.key} AS Key, count() AS Calls{state}
        FROM {DB}.raw GROUP BY Start, {db.key}""")


def create(db: Db, names: Sequence[str]) -> None:
    """A fresh raw table and the views of ``names``."""
    drop_all(db)
    db.run(f"""CREATE TABLE {DB}.raw (Timestamp DateTime64(9, 'UTC'), Key String, Team String, Duration UInt64)
        ENGINE = MergeTree ORDER BY (Key, Timestamp)""")
    for name in names:
        create_view(db, name)


def insert(db: Db, low: int, high: int) -> None:
    db.run(
        f"INSERT INTO {DB}.raw SELECT Timestamp, Key, Team, Duration FROM {DB}.src"
        f" WHERE id >= {low} AND id < {high}{db.insert_settings}"
    )


def insert_big(db: Db, rows: int) -> float:
    """Seconds to insert all ``rows`` in two halves."""
    started = time.perf_counter()
    insert(db, 0, rows // 2)
    insert(db, rows // 2, rows)
    return time.perf_counter() - started


def insert_small(db: Db) -> float:
    """Seconds for ``SMALL_INSERTS`` inserts of ``SMALL_ROWS`` rows."""
    started = time.perf_counter()
    for i in range(SMALL_INSERTS):
        insert(db, i * SMALL_ROWS, (i + 1) * SMALL_ROWS)
    return time.perf_counter() - started


def insert_bench(db: Db, names: Sequence[str], rows: int, repeat: int) -> None:
    kinds: dict[str, Callable[[], float]] = {"big": lambda: insert_big(db, rows), "small": lambda: insert_small(db)}
    results = {name: {kind: [] for kind in kinds} for name in ["none", *names]}
    for _ in range(repeat):
        for name, times in results.items():
            for kind, fn in kinds.items():
                create(db, [] if name == "none" else [name])
                times[kind].append(fn())
    base = {kind: min(results["none"][kind]) for kind in kinds}
    print(
        f"\nINSERT best-of-{repeat} (s), ratio to none: {rows:,} rows as 2 x {rows // 2:,}"
        f" | {SMALL_INSERTS} x {SMALL_ROWS} rows{db.insert_settings}"
    )
    for name, times in results.items():
        cells = []
        for kind in kinds:
            best = min(times[kind])
            runs = " ".join(f"{x:.3f}" for x in times[kind])
            cells.append(f"{kind} {best:6.3f} x{best / base[kind]:.2f}  all=[{runs}]")
        print(f"  {name:5s} " + "   ".join(cells))


def query_sql(name: str, where: str = "") -> str:
    variant = VARIANTS[name]
    value = "sum(Calls)" if name == "N" else variant.read()
    return (
        f"{variant.with_clause()}SELECT toStartOfHour(Start) AS h, {value} AS qs"
        f" FROM {DB}.t_{name} {where} GROUP BY h ORDER BY h"
    )


def relative_error(got: float | None, exact: float) -> float:
    """|got - exact| / exact; NaN (``null``) is an infinite error, exact 0 counts only an exact hit."""
    if got is None or math.isnan(got):
        return math.inf
    if exact == 0:
        return 0.0 if got == 0 else math.inf
    return abs(got - exact) / exact


def accuracy(got: list[list[Any]], exact: list[list[Any]]) -> str:
    """Max and mean relative error per level over the hours."""
    if [row[0] for row in got] != [row[0] for row in exact]:
        raise RuntimeError(f"hours differ from quantilesExact: {len(got)} rows vs {len(exact)}")
    if not exact:
        return "  err: no rows"
    cells = []
    for i, label in enumerate(LABELS):
        errors = [relative_error(g[1][i], e[1][i]) for g, e in zip(got, exact, strict=True)]
        cells.append(f"{label}: max {max(errors) * 100:.2f}% mean {statistics.mean(errors) * 100:.2f}%")
    return "  err " + " ".join(cells)


def time_query(db: Db, sql: str) -> list[float]:
    """Milliseconds of ``QUERY_RUNS`` runs after one warm-up."""
    db.run(sql)
    samples = []
    for _ in range(QUERY_RUNS):
        started = time.perf_counter()
        db.run(sql)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def fill_and_merge(db: Db, names: Sequence[str], rows: int) -> None:
    create(db, names)
    insert_big(db, rows)
    for name in names:
        db.run(f"OPTIMIZE TABLE {DB}.t_{name} FINAL")


def print_states(db: Db, names: Sequence[str], view_filter: str) -> None:
    print("\nstate rows / bytes on disk / parts:")
    for name in names:
        size = db.rows(f"""SELECT sum(rows), formatReadableSize(sum(bytes_on_disk)), count() FROM system.parts
            WHERE database = '{DB}' AND table = 't_{name}' AND active""")[0]
        print(f"  {name:3s} {size}")
    states = db.rows(f"SELECT count() FROM {DB}.t_{names[0]} {view_filter}")[0][0]
    print(f"  states for the filter ({view_filter}): {states:,}")
    for name in names:
        if parts := VARIANTS[name].hist_parts:
            check = db.rows(f"""SELECT min(arraySort(ks) = ks), max(length(ks)) FROM (SELECT toStartOfHour(Start) AS h,
                sumMap(Q) AS m, {parts[0]} AS ks FROM {DB}.t_{name} GROUP BY h)""")[0]
            print(f"  {name} keys sorted in sumMap output, max buckets per hour: {check}")


def query_bench(db: Db, names: Sequence[str], rows: int) -> None:
    fill_and_merge(db, names, rows)
    view_filter = f"WHERE Key {FILTERS[db.key]}"
    print_states(db, names, view_filter)
    for where in ("", view_filter):
        raw_where = f"WHERE {db.key} {FILTERS[db.key]}" if where else ""
        exact = db.rows(f"""SELECT toStartOfHour(toDateTime(Timestamp, 'UTC')) AS h, quantilesExact({LV})(Duration)
            FROM {DB}.raw {raw_where} GROUP BY h ORDER BY h""")
        print(
            f"\nQUERY {where or 'all keys'}: median of {QUERY_RUNS} (ms);"
            " max / mean rel err vs quantilesExact per level"
        )
        for name in names:
            sql = query_sql(name, where)
            samples = time_query(db, sql)
            runs = " ".join(f"{x:.0f}" for x in samples)
            line = f"  {name:3s} {statistics.median(samples):7.1f} ms  runs=[{runs}]"
            if name != "N":
                line += accuracy(db.rows(sql), exact)
            print(line)
    if "B" in names:
        print("\nB SQL:", query_sql("B"))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", help="chDB data directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--rows", type=int, default=1_000_000, help="source spans")
    parser.add_argument("--repeat", type=int, default=3, help="insert runs per variant (best is shown)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma list of " + ",".join(VARIANTS))
    parser.add_argument("--insert", action="store_true", help="run the insert part (default: both parts)")
    parser.add_argument("--query", action="store_true", help="run the query part (default: both parts)")
    parser.add_argument("--optimize-on-insert", choices=("0", "1"), help="append SETTINGS optimize_on_insert=...")
    parser.add_argument("--key", choices=tuple(FILTERS), default="Key", help="the views' group key")
    args = parser.parse_args()
    names = [name.strip() for name in args.variants.split(",") if name.strip()]
    if not names or set(names) - VARIANTS.keys():
        parser.error(f"--variants: expected a comma list of {','.join(VARIANTS)}")
    args.variants = [name for name in VARIANTS if name in names]
    if args.rows < SMALL_INSERTS * SMALL_ROWS:
        parser.error(f"--rows must be at least {SMALL_INSERTS * SMALL_ROWS}")
    if not (args.insert or args.query):
        args.insert = args.query = True
    return args


def main() -> None:
    args = parse_args()
    directory = args.dir or tempfile.mkdtemp(prefix="bench-rollup-sketches-")
    settings = f" SETTINGS optimize_on_insert={args.optimize_on_insert}" if args.optimize_on_insert else ""
    db = Db(session.Session(directory), args.key, settings)
    try:
        print("chDB", db.run("SELECT version()").strip(), "in", directory, "| group key:", args.key)
        setup_source(db, args.rows)
        if args.insert:
            insert_bench(db, args.variants, args.rows, args.repeat)
        if args.query:
            query_bench(db, args.variants, args.rows)
    finally:
        db.session.close()
        if args.dir or args.keep:
            print(f"chDB directory: {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
