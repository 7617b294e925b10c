"""Reading delimited text files so that one bad line never sinks a file.

Used by alert and candle ingestion for ``.csv`` / ``.csv.gz`` / ``.tsv`` files:

* **Whole-file checks** (a :class:`~alertlab.errors.UserError` naming the file): a zero-byte or
  blank file ("empty file"), binary content (a NUL byte or invalid UTF-8 in the first 64 KiB),
  no delimiter-separated header.
* **Delimiter**: ``.tsv`` is tab-separated; otherwise the header line decides among ``,`` ``;``
  tab and ``|``: the candidate whose split names the most known columns wins (ties → more
  fields, then the order above). The choice is recorded in the ingest log (``delimiter``).
* **Malformed lines** (a different number of fields than the header, e.g. ``Smith, John`` in an
  unquoted field) are not fatal: they are returned as :class:`BadLine` records (physical line
  number, reason, the line's text) for the quarantine, and every other line is read.
* **Invalid UTF-8** inside one value quarantines that row (reason ``invalid UTF-8 text``), not
  the file.
* **Blank lines** are skipped and counted (``blank_lines``), neither rows nor rejects.
* **Line numbers**: every kept row carries the physical line number of its record (header =
  line 1), derived from the record index and the malformed lines skipped before it; it is exact
  as long as no quoted value spans several lines (each such value shifts later rows by its
  extra lines).

Values are read as text (numbers are parsed later, per column, by the ingest rules).
"""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from alertlab.errors import UserError

DELIMITERS = (",", ";", "\t", "|")
_SNIFF_BYTES = 1 << 16
_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


@dataclass
class BadLine:
    """A line that could not be read as a record: physical line number, reason, its text."""

    line: int
    reason: str
    text: str


@dataclass
class CsvBatch:
    """Rows of one block: text columns (original names), their line numbers, rows quarantined
    here because of invalid UTF-8 (``bad_utf8``: positions in ``table``)."""

    table: pa.Table
    lines: np.ndarray
    bad_utf8: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    #: columns asked for in ``parse_as`` whose every value parsed directly, as that type (the text
    #: stays in ``table``); computed on the reading threads
    parsed: dict[str, pa.Array] = field(default_factory=dict)


@dataclass
class CsvFile:
    """What :func:`open_text_table` learned about a file; ``bad_lines``/``blank_lines`` grow while reading."""

    path: Path
    delimiter: str
    header: list[str]
    bad_lines: list[BadLine] = field(default_factory=list)
    blank_lines: int = 0

    @property
    def delimiter_name(self) -> str:
        return _NAMES.get(self.delimiter, repr(self.delimiter))


def _head(path: Path) -> bytes:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            return fh.read(_SNIFF_BYTES)
    except (OSError, EOFError) as exc:  # e.g. a .gz that is not gzip
        raise UserError(f"{path}: cannot read the file ({exc}); is it a text CSV file?") from exc


def sniff(path: Path, known: Iterable[str]) -> tuple[str, list[str]]:
    """``(delimiter, header names)`` of a text table; whole-file problems raise :class:`UserError`."""
    head = _head(path)
    if not head.strip():
        raise UserError(f"{path}: empty file (no header, no rows); remove it or export it again")
    if b"\x00" in head:
        raise UserError(f"{path}: binary file, not CSV text (NUL bytes); give a CSV, Parquet or JSON export")
    cut = head if len(head) < _SNIFF_BYTES else head[: max(head.rfind(b"\n"), 1)]
    text = cut.decode("utf-8-sig", errors="replace")
    odd = text.count("\ufffd") + sum(1 for c in text if c < " " and c not in "\t\r\n")
    if odd > max(8, 0.05 * len(text)):
        raise UserError(
            f"{path}: binary file or not UTF-8 text ({odd} undecodable or control characters "
            f"in the first {len(cut):,} bytes); give a UTF-8 CSV, Parquet or JSON export"
        )
    first = text.lstrip("\r\n").splitlines()[0] if text.strip() else ""
    if "\ufffd" in first:
        raise UserError(f"{path}: the header line is not UTF-8 text; re-export the file as UTF-8 CSV")
    known = {k.lower() for k in known}
    if path.name.lower().endswith(".tsv"):
        delim = "\t"
    else:

        def score(d: str) -> tuple[int, int]:
            names = [c.strip().strip('"').lower() for c in first.split(d)]
            return sum(n in known for n in names), len(names)

        delim = max(DELIMITERS, key=lambda d: (score(d), -DELIMITERS.index(d)))
    header = [c.strip().strip('"') for c in first.split(delim)]
    return delim, header


def _fix_utf8(col: pa.ChunkedArray) -> tuple[pa.ChunkedArray, np.ndarray]:
    """Binary column → string; values that are not UTF-8 become null and are reported."""
    try:
        return pc.cast(col, pa.string()), np.empty(0, np.int64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        vals = col.to_pylist()
        bad: list[int] = []
        out: list[str | None] = []
        for i, v in enumerate(vals):
            if v is None:
                out.append(None)
                continue
            try:
                out.append(v.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(None)
                bad.append(i)
        return pa.chunked_array([pa.array(out, pa.string())]), np.asarray(bad, np.int64)


def read_text_table(  # noqa: C901 (TODO: split; rewritten for speed in issue 13, not yet cut into one-job helpers)
    path: Path,
    known: Iterable[str],
    multiline: bool = False,
    block_rows_hint: int = 64 << 20,
    parse_as: dict[str, pa.DataType] | None = None,
) -> tuple[CsvFile, Iterator[CsvBatch]]:
    """Open a delimited text file: its :class:`CsvFile` info and an iterator of :class:`CsvBatch`.

    ``multiline`` allows quoted values with newlines (alert exports with message text). The
    iterator fills ``info.bad_lines`` as it goes. ``parse_as`` (header names, matched trimmed and
    case-insensitively → Arrow type) asks for :attr:`CsvBatch.parsed` columns.
    """
    delim, header = sniff(path, known)
    if len(header) < 2:
        raise UserError(
            f"{path}: no {('/'.join(_NAMES[d] for d in DELIMITERS))}-separated header "
            f"(first line {header[0][:60]!r}); give a CSV with a header row"
        )
    info = CsvFile(path, delim, header)
    seen = set()
    for h in header:
        if h in seen:
            raise UserError(f"{path}: duplicate column {h!r} in the header; rename one of them")
        seen.add(h)

    def handler(skipped: list[int], bad_lines: list[BadLine], blanks: list[int], base: int) -> Callable:
        """An invalid-row handler recording into the given lists; line numbers offset by ``base``.

        Lists, not counters: blocks are parsed on worker threads and collected in file order."""

        def on_invalid(row: pacsv.InvalidRow) -> str:
            number = int(row.number) + base if row.number is not None else -1
            if row.number is not None:
                skipped.append(number)
            if not (row.text or "").strip():  # a whitespace-only line: blank, not a reject
                blanks.append(number)
                return "skip"
            bad_lines.append(
                BadLine(
                    number,
                    f"malformed line: {row.actual_columns} field(s) where the header has {row.expected_columns}"
                    + (
                        " (an unclosed quote took in the lines after it)"
                        if "\n" in (row.text or "")
                        else f" (an unquoted {_NAMES.get(delim, delim)} inside a value?)"
                        if row.actual_columns > row.expected_columns
                        else ""
                    ),
                    (row.text or "")[:2000],
                )
            )
            return "skip"

        return on_invalid

    def options(on_invalid: Callable, skip_rows: int) -> dict:
        return {
            "read_options": pacsv.ReadOptions(
                block_size=block_rows_hint,
                use_threads=False,
                encoding="utf8",
                skip_rows=skip_rows,
                column_names=header,
            ),
            "parse_options": pacsv.ParseOptions(
                delimiter=delim,
                invalid_row_handler=on_invalid,
                ignore_empty_lines=False,
                newlines_in_values=multiline,
            ),
            "convert_options": pacsv.ConvertOptions(
                column_types={h: pa.binary() for h in header}, strings_can_be_null=False
            ),
        }

    def finish(t: pa.Table, lines: np.ndarray) -> tuple[CsvBatch, int]:
        """Text columns (invalid UTF-8 values reported), blank records dropped: ``(batch, blanks)``."""
        n = t.num_rows
        cols, bad_utf8 = {}, []
        for name in header:
            cols[name], b = _fix_utf8(t[name])
            bad_utf8.append(b)
        t = pa.table(cols)
        # blank lines: every value empty (a one-field header never reaches here, see sniff)
        blank = pc.equal(pc.binary_length(t[header[-1]]), 0).to_numpy(zero_copy_only=False)
        if blank.any():  # a blank line has no second field: only those rows are looked at closely
            cand = np.flatnonzero(blank)
            sub = t.take(pa.array(cand))
            for name in header:
                blank[cand] &= (
                    pc.fill_null(pc.utf8_length(pc.utf8_trim_whitespace(sub[name])), 0).to_numpy() == 0
                )
        n_blank = int(blank.sum())
        if n_blank:
            keep = np.flatnonzero(~blank)
            t = t.take(pa.array(keep))
            lines = lines[keep]
            remap = np.full(n, -1, np.int64)
            remap[keep] = np.arange(len(keep))
            bad_utf8 = [remap[b][remap[b] >= 0] for b in bad_utf8]
        bu = np.unique(np.concatenate(bad_utf8)) if bad_utf8 else np.empty(0, np.int64)
        parsed = {}
        for name in header:
            typ = (parse_as or {}).get(name.strip().lower())
            if typ is not None and pa.types.is_string(t[name].type):
                # not every value parses: no parsed column, the caller reads the text
                with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    parsed[name] = pc.cast(t[name].combine_chunks(), typ)
        return CsvBatch(t, lines, bu, parsed), n_blank

    def line_numbers(n: int, skipped: list[int], first: int) -> np.ndarray:
        """Physical line of each of ``n`` kept records whose first could be line ``first``."""
        k = np.arange(n, dtype=np.int64)
        bad = np.asarray(sorted(skipped), np.int64)
        adj = bad - first - np.arange(len(bad))  # kept records before each skipped line
        return k + first + np.searchsorted(adj, k, side="right")

    def serial() -> Iterator[CsvBatch]:
        skipped: list[int] = []  # physical numbers of every line the parser skipped
        blanks: list[int] = []
        reader = pacsv.open_csv(path, **options(handler(skipped, info.bad_lines, blanks, 0), 1))
        kept = 0
        for rb in reader:
            t = pa.Table.from_batches([rb])
            lines = line_numbers(kept + t.num_rows, skipped, 2)[kept:]
            kept += t.num_rows
            batch, n_blank = finish(t, lines)
            info.blank_lines += len(blanks) + n_blank
            blanks.clear()
            yield batch
        info.blank_lines += len(blanks)

    def parallel() -> Iterator[CsvBatch]:
        """Blocks cut at line ends, parsed two at a time (Arrow's serial parser per block, so its
        line numbers stay exact), yielded in file order."""

        def parse(block: memoryview, base: int, first: bool) -> tuple[CsvBatch, list[BadLine], int]:
            skipped: list[int] = []
            bad: list[BadLine] = []
            blanks: list[int] = []
            t = pacsv.read_csv(
                pa.BufferReader(block), **options(handler(skipped, bad, blanks, base), int(first))
            )
            lines = base + line_numbers(t.num_rows, [x - base for x in skipped], 2 if first else 1)
            batch, n_blank = finish(t, lines)
            return batch, bad, len(blanks) + n_blank

        with open(path, "rb") as fh, ThreadPoolExecutor(max_workers=2) as pool:
            pending: list = []
            base, carry, first = 0, b"", True
            while True:
                chunk = fh.read(block_rows_hint)
                data = carry + chunk
                cut = len(data) if not chunk else data.rfind(b"\n") + 1
                if chunk and cut == 0:  # no line end yet: read on
                    carry = data
                    continue
                block, carry = memoryview(data)[:cut], data[cut:]  # the block is a view: no copy
                if cut:
                    pending.append(pool.submit(parse, block, base, first))
                    base += data.count(b"\n", 0, cut)
                    first = False
                while pending and (len(pending) > 1 or not chunk):
                    batch, bad, n_blank = pending.pop(0).result()
                    info.bad_lines.extend(bad)
                    info.blank_lines += n_blank
                    yield batch
                if not chunk:
                    return

    big = path.stat().st_size > 2 * block_rows_hint
    plain = not multiline and not path.name.lower().endswith(".gz")
    return info, (parallel() if big and plain else serial())
