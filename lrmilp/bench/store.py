"""Results of ``lrmilp bench``: JSON lines (the record of truth) and a CSV derived from them.

Each finished run appends one JSON line, flushed at once, so a killed batch loses at most the line
being written; :meth:`ResultStore.open` drops such a partial last line.  The CSV is rewritten from
the JSON lines when a batch starts and then appended in step with them, so it never disagrees.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

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
        self.jsonl.parent.mkdir(parents=True, exist_ok=True)
        lines = self.read(repair=True)
        for rec in lines:
            self.records[rec["run_id"]] = rec
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(CSV_COLUMNS)
        for rec in lines:
            w.writerow(csv_row(rec))
        tmp = self.csv.with_name(self.csv.name + ".tmp")
        tmp.write_text(buf.getvalue())
        tmp.replace(self.csv)
        self._jf = open(self.jsonl, "a", encoding="utf-8")
        self._cf = open(self.csv, "a", newline="", encoding="utf-8")
        return self

    def read(self, *, repair: bool = False) -> list[dict]:
        """The records in the JSON lines file, in order; ``repair`` cuts off an unfinished last line."""
        if not self.jsonl.exists():
            return []
        raw = self.jsonl.read_bytes()
        if raw and not raw.endswith(b"\n"):  # a batch killed while writing its last line
            keep = raw.rfind(b"\n") + 1
            raw = raw[:keep]
            if repair:
                print(f"[bench] {self.jsonl}: dropping an unfinished last line", file=sys.stderr)
                with open(self.jsonl, "r+b") as f:
                    f.truncate(keep)
        out = []
        for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
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
        self._jf.write(json.dumps(rec) + "\n")
        self._jf.flush()
        csv.writer(self._cf).writerow(csv_row(rec))
        self._cf.flush()
        self.records[rec["run_id"]] = rec

    def close(self) -> None:
        for f in (self._jf, self._cf):
            if f is not None:
                f.close()

    def __enter__(self) -> "ResultStore":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


def csv_row(rec: dict) -> list:
    return [rec.get("run_id"), rec.get("model"), rec.get("domain") or "", rec.get("task"),
            json.dumps(rec.get("options", {}), sort_keys=True), rec.get("status"),
            "" if rec.get("value") is None else rec["value"], "" if rec.get("complete") is None else rec["complete"],
            rec.get("seconds"), rec.get("time_limit"), rec.get("error") or "", rec.get("finished")]
