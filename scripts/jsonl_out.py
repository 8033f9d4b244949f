"""Atomic output for the data scripts (flights_to_jsonl.py, nyc_tables_to_jsonl.py).

`output(path)` is a context manager giving a text file to write JSON Lines to:
stdout for "-", else a temporary file beside `path` (its directory created)
that replaces `path` only when the block ends without an exception, so a
half-written file never takes the place of a good one.
"""
import contextlib
import os
import sys


@contextlib.contextmanager
def output(path):
    if path == "-":
        yield sys.stdout
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    out = open(tmp, "w", encoding="utf-8", newline="\n")
    try:
        yield out
        out.close()
        os.replace(tmp, path)
    except BaseException:
        out.close()
        os.remove(tmp)
        raise
