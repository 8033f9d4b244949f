#!/usr/bin/env python3
"""Event-time disorder of a flights JSONL file (dep_ts), for sizing a watermark.

Reads the JSONL written by scripts/flights_to_jsonl.py in file (= stream) order
and looks only at dep_ts (epoch milliseconds); records with null dep_ts
(cancelled flights) are skipped entirely: they neither advance the maximum nor
count as late.

Reported:

  max out-of-orderness
      max over records of (max dep_ts of the records before it - its dep_ts),
      in minutes (0 if the stream never goes backwards). A bounded
      out-of-orderness watermark with at least this bound makes no record late
      relative to the watermark itself.

  late records per bound B, for 1-hour tumbling windows
      watermark after a record = (max dep_ts seen so far, including that
      record) - B; before the first record there is no watermark. Windows are
      [k*1h, (k+1)*1h) in epoch time (UTC; America/New_York offsets are whole
      hours, so these are also local clock hours). A window closes once
      window end <= watermark. A record is late when its window's end <= the
      watermark as it stood just before the record (its window has already
      closed).

  window-aware threshold
      max over records of (max dep_ts before it - its window end); a bound B
      gives zero late records exactly when B is greater than this value
      (it is at most 1 hour below the max out-of-orderness).

Usage: disorder_stats.py PATH [BOUND ...] [--head N]
  PATH      JSONL file (e.g. target/data/flights-2013.jsonl)
  BOUND     watermark bounds such as 24h, 24h30m, 25h, 90m, 1h30m, 45s
            (default: 24h 24h30m 25h 26h)
  --head N  only the first N lines of the file
"""
import argparse
import json
import re
import sys
from itertools import islice

MIN = 60_000
HOUR = 60 * MIN
UNITS = {"h": HOUR, "m": MIN, "s": 1000, "ms": 1}


def parse_bound(text):
    parts = re.findall(r"(\d+)(ms|h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"bad duration {text!r} (e.g. 24h, 24h30m, 90m)")
    return sum(int(n) * UNITS[u] for n, u in parts)


def fmt(ms):
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    h, rem = divmod(ms, HOUR)
    m, rem = divmod(rem, MIN)
    s = f"{sign}{h}h{m:02d}m"
    return s + (f"{rem / 1000:g}s" if rem else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("bounds", nargs="*", type=parse_bound, metavar="BOUND",
                    help="watermark bounds (default: 24h 24h30m 25h 26h)")
    ap.add_argument("--head", type=int, default=None, metavar="N", help="only the first N lines")
    args = ap.parse_args()
    bounds = args.bounds or [parse_bound(b) for b in ("24h", "24h30m", "25h", "26h")]

    lines = nulls = records = 0
    max_ts = None
    max_ooo = 0            # max (max_before - ts)
    max_ooo_line = None
    max_gap_end = None     # max (max_before - window_end)
    late = [0] * len(bounds)
    with open(args.path, encoding="utf-8") as f:
        for lineno, line in enumerate(islice(f, args.head), 1):
            lines += 1
            ts = json.loads(line)["dep_ts"]
            if ts is None:
                nulls += 1
                continue
            records += 1
            if max_ts is not None:
                if max_ts - ts > max_ooo:
                    max_ooo, max_ooo_line = max_ts - ts, lineno
                end = (ts // HOUR + 1) * HOUR
                gap = max_ts - end
                if max_gap_end is None or gap > max_gap_end:
                    max_gap_end = gap
                for i, b in enumerate(bounds):
                    late[i] += end <= max_ts - b
                max_ts = max(max_ts, ts)
            else:
                max_ts = ts

    print(f"{args.path}: {lines} lines" + (f" (--head {args.head})" if args.head is not None else "")
          + f", {records} with dep_ts, {nulls} null dep_ts skipped")
    where = f" (line {max_ooo_line})" if max_ooo_line else ""
    print(f"max out-of-orderness: {max_ooo / MIN:g} min = {fmt(max_ooo)}{where}")
    if max_gap_end is not None:
        print(f"window-aware threshold (1h windows): zero late iff bound > {max_gap_end / MIN:g} min"
              f" = {fmt(max_gap_end)}")
    print("late records with 1h tumbling windows:")
    for b, n in zip(bounds, late):
        print(f"  bound {fmt(b):>10} ({b / MIN:g} min): {n} late"
              f" ({100 * n / records if records else 0:.4f}% of records with dep_ts)")


if __name__ == "__main__":
    main()
