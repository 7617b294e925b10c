"""``alertlab ingest telegram`` (Telegram Desktop exports → alerts) and ``alertlab alerts`` (list them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from alertlab.cli.options import CallerOpt, ChainOpt, FromOpt, HomeOpt, JsonOpt, ToOpt, fail
from alertlab.cli.render import console, frame_table, kv_table, print_json, print_tables
from alertlab.store import resolve_home

NARROW = ["ts", "caller", "chain", "token", "ticker", "mcap"]  # fits 80 columns
WIDE = ["ts", "caller", "chain", "token", "ticker", "price", "mcap", "source", "msg"]  # fits 120 columns


def _money(v) -> str:
    if v is None or pd.isna(v):
        return "–"
    v = float(v)
    for div, suf in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(v) >= div:
            return f"${v / div:.3g}{suf}"
    return f"${v:.0f}"


def _short(s, keep: int) -> str:
    if s is None or (isinstance(s, float) and pd.isna(s)):
        return "–"
    s = str(s)
    return s if len(s) <= keep else s[: keep - 1] + "…"


def _token(s: str) -> str:
    return s if len(s) <= 11 else f"{s[:6]}…{s[-4:]}"


def alerts_view(df: pd.DataFrame, width: int) -> pd.DataFrame:
    """Terminal view of the alerts table: columns chosen to fit ``width`` (80 or 120 and up)."""
    wide = width >= 120
    v = pd.DataFrame(
        {
            "ts": pd.to_datetime(df["ts_ms"], unit="ms", utc=True).dt.strftime("%Y-%m-%d %H:%M"),
            "caller": [_short(c, 14) for c in df["caller"]],
            "chain": [_short(c, 8) for c in df["chain"]],
            "token": [_token(t) for t in df["token"]],
            "ticker": [_short(t, 8 if wide else 6) for t in df["ticker"]],
            "price": [("–" if pd.isna(p) else f"{p:.3g}") for p in df["price_at_alert"]],
            "mcap": [_money(m) for m in df["mcap_at_alert"]],
            "source": [_short(s, 14) for s in df["source"]],
            "msg": [_short(m, 6) for m in df["message_id"]],
        }
    )
    return v[WIDE if wide else NARROW]


def _print_telegram_report(r) -> None:
    """Tables of one Telegram ingest: counts, messages not taken, quarantine reasons and a sample."""
    ing = r.ingest
    head = {
        "files": len(r.files),
        "chats": r.chats,
        "messages": r.messages,
        "call messages": r.call_messages,
        "alerts accepted": ing.rows_accepted,
        "new alerts": ing.rows_new,
        "already stored": ing.rows_duplicate,
        "quarantined": ing.rows_rejected,
        "tx signatures ignored": r.tx_signatures_ignored,
    }
    tables = [kv_table(head, "ingest telegram")]
    if r.skipped:
        tables.append(
            frame_table(
                pd.DataFrame(list(r.skipped.items()), columns=["reason", "messages"]),
                "messages not taken",
            )
        )
    if ing.reject_reasons:
        tables.append(
            frame_table(
                pd.DataFrame(
                    sorted(ing.reject_reasons.items(), key=lambda kv: -kv[1]), columns=["reason", "rows"]
                ),
                "quarantined (see `alertlab rejects`)",
            )
        )
        sample = pd.DataFrame(ing.rejects_sample)
        sample["file"] = sample["file"].map(lambda f: Path(f).parent.name + "/" + Path(f).name)
        sample = sample.rename(columns={"row": "message"})
        tables.append(frame_table(sample, "sample of quarantined messages"))
    print_tables(tables)
    if r.ignored_files:
        console.print(
            f"{len(r.ignored_files)} JSON file(s) are not Telegram exports and were ignored, e.g. "
            f"{r.ignored_files[0]}",
            highlight=False,
        )
    if ing.rows_accepted == 0:
        console.print(
            "no calls found: no message named a valid token address (see 'messages not taken'); "
            "EVM calls need a chain hint or --evm-chain NAME",
            highlight=False,
        )


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    """Add ``ingest telegram`` to ``ingest_app`` and ``alerts`` to ``app``."""

    @ingest_app.command("telegram")
    def ingest_telegram_cmd(
        paths: Annotated[
            list[Path],
            typer.Argument(help="result.json (chat or whole account), messages*.html, or folders."),
        ],
        bots: Annotated[
            str | None,
            typer.Option(
                "--bots",
                help="Comma-separated bot names/usernames whose replies enrich calls "
                "(replaces the default list; 'default' expands to it).",
            ),
        ] = None,
        evm_chain: Annotated[
            str | None,
            typer.Option(
                "--evm-chain", help="Chain for EVM addresses with no hint (else they are quarantined)."
            ),
        ] = None,
        forwarded: Annotated[
            str,
            typer.Option(
                "--forwarded",
                help="Caller of forwarded calls: original (default), sender (who forwarded) or skip.",
            ),
        ] = "original",
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Ingest Telegram Desktop exports: calls become alerts, bot replies enrich them, bad calls are quarantined."""
        from alertlab.ingest.telegram.calls import ingest_telegram

        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            fail(f"no such file or directory: {', '.join(missing)}")
        try:
            r = ingest_telegram(
                resolve_home(home),
                paths,
                bots=bots,
                evm_chain=evm_chain,
                forwarded=forwarded,
                progress=not as_json,
            )
        except (ValueError, FileNotFoundError) as exc:
            fail(str(exc))
        if as_json:
            print_json(r.to_dict())
            return
        _print_telegram_report(r)

    @app.command("alerts")
    def alerts_cmd(
        home: HomeOpt = None,
        caller: CallerOpt = None,
        chain: ChainOpt = None,
        from_: FromOpt = None,
        to: ToOpt = None,
        limit: Annotated[
            int, typer.Option(help="Rows shown in the table (--json and Parquet get all).")
        ] = 50,
        as_json: JsonOpt = False,
        export_parquet: Annotated[
            Path | None,
            typer.Option("--export-parquet", help="Write the selected alerts (all columns) to FILE."),
        ] = None,
    ) -> None:
        """The canonical alerts table (from any source): who called what, when, with bot-reply enrichment."""
        from alertlab.ingest.alerts import count_alerts, list_alerts

        h = resolve_home(home)
        df = list_alerts(
            h,
            callers=caller,
            chains=chain,
            date_from=from_.date().isoformat() if from_ else None,
            date_to=to.date().isoformat() if to else None,
        )
        if df.empty:
            total = count_alerts(h)
            if total == 0:
                fail(
                    f"no alerts in {h.root}: ingest some with `alertlab ingest alerts FILE` or "
                    f"`alertlab ingest telegram EXPORT`"
                )
            fail(
                f"no alerts match the filters ({total} alerts stored): check --caller/--chain spelling "
                f"and the --from/--to dates"
            )
        if export_parquet is not None:
            out = df.assign(ts=pd.to_datetime(df["ts_ms"], unit="ms", utc=True))
            export_parquet.parent.mkdir(parents=True, exist_ok=True)
            out.to_parquet(export_parquet, index=False)
        if as_json:
            print_json(
                df.assign(ts=pd.to_datetime(df["ts_ms"], unit="ms", utc=True).map(lambda t: t.isoformat()))
            )
            return
        print_tables(
            [
                frame_table(
                    alerts_view(df, console.width),
                    f"alerts ({len(df)}; --json for all columns)",
                    max_rows=limit,
                )
            ]
        )
        if export_parquet is not None:
            console.print(f"wrote {len(df)} alerts to {export_parquet}", highlight=False)
