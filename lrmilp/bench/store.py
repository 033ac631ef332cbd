"""Results of ``lrmilp bench``: JSON lines (the record of truth) and a CSV derived from them.

Each finished run appends one JSON line, flushed at once, so a killed batch loses at most the line
being written; :meth:`ResultStore.open` drops such a partial last line.  The CSV is rewritten from
the JSON lines when a batch starts (whole or not at all) and then appended in step with them, so it
never disagrees.  Neither file is written through a link or into a special file; a results file that
is not UTF-8 text is refused (it is not ours to append to), and every write error is an InputError
naming the file.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

from ..errors import InputError
from ..interrupts import deferred
from ..jsonout import dumps
from ..outputs import check_writable, open_append, oserror, write_text

WHAT = "results file"

CSV_COLUMNS = ("run_id", "model", "domain", "task", "options", "status", "value", "complete", "seconds",
               "time_limit", "error", "finished")
STATUSES = ("ok", "timeout", "error", "unavailable")


class ResultStore:
    """Append-only results at ``stem``.jsonl and ``stem``.csv."""

    def __init__(self, stem: Path) -> None:
        self.jsonl = Path(f"{stem}.jsonl")
        self.csv = Path(f"{stem}.csv")
        self.records: dict[str, dict] = {}  # run_id -> its latest record
        self._jf = self._cf = None

    def open(self) -> "ResultStore":
        """Read earlier records and open both files for appending."""
        try:
            self.jsonl.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise oserror(self.jsonl, WHAT, e) from None
        for path in (self.jsonl, self.csv):
            check_writable(path, WHAT)
        lines = self.read(repair=True)
        for rec in lines:
            self.records[rec["run_id"]] = rec
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(CSV_COLUMNS)
        for rec in lines:
            w.writerow(csv_row(rec))
        write_text(self.csv, buf.getvalue(), WHAT)
        self._jf = open_append(self.jsonl, WHAT, create=True)
        self._cf = open_append(self.csv, WHAT)
        return self

    def read(self, *, repair: bool = False) -> list[dict]:
        """The records in the JSON lines file, in order; ``repair`` cuts off an unfinished last line.
        InputError when the file is not UTF-8 text (then it is no lrmilp results file)."""
        if not self.jsonl.exists():
            return []
        try:
            raw = self.jsonl.read_bytes()
        except OSError as e:
            raise InputError(f"cannot read {WHAT} {self.jsonl}: {e.strerror or e}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{WHAT} {self.jsonl} is not UTF-8 text, so not lrmilp's; move it away or give "
                             "another output") from None
        if raw and not raw.endswith(b"\n"):  # a batch killed while writing its last line
            keep = raw.rfind(b"\n") + 1
            text = raw[:keep].decode("utf-8")
            if repair:
                print(f"[bench] {self.jsonl}: dropping an unfinished last line", file=sys.stderr)
                try:
                    with open_append(self.jsonl, WHAT) as f:
                        f.truncate(keep)
                except OSError as e:
                    raise oserror(self.jsonl, WHAT, e) from None
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                print(f"[bench] {self.jsonl}:{n}: skipping a line that is not JSON", file=sys.stderr)
                continue
            if isinstance(rec, dict) and "run_id" in rec and rec.get("status") in STATUSES:
                out.append(rec)
        return out

    def append(self, rec: dict) -> None:
        """Append one record to both files (a stop signal waits until both lines are written)."""
        with deferred():
            try:
                self._jf.write((dumps(rec) + "\n").encode("utf-8"))
                self._jf.flush()
            except OSError as e:
                raise oserror(self.jsonl, WHAT, e) from None
            try:
                buf = io.StringIO()
                csv.writer(buf).writerow(csv_row(rec))
                self._cf.write(buf.getvalue().encode("utf-8"))
                self._cf.flush()
            except OSError as e:
                raise oserror(self.csv, WHAT, e) from None
            self.records[rec["run_id"]] = rec

    def close(self) -> None:
        for f in (self._jf, self._cf):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass

    def __enter__(self) -> "ResultStore":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


def csv_row(rec: dict) -> list:
    return [rec.get("run_id"), rec.get("model"), rec.get("domain") or "", rec.get("task"),
            json.dumps(rec.get("options", {}), sort_keys=True), rec.get("status"),
            "" if rec.get("value") is None else rec["value"], "" if rec.get("complete") is None else rec["complete"],
            rec.get("seconds"), rec.get("time_limit"), rec.get("error") or "", rec.get("finished")]
