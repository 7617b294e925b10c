"""``alertlab fetch candles`` / ``alertlab fetch status``: candles for your calls from public APIs."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
import typer
from pydantic import ValidationError

from alertlab.cli.options import CallerOpt, ChainOpt, FromOpt, HomeOpt, JsonOpt, ToOpt, _pydantic_msg, fail
from alertlab.cli.render import console, frame_table, kv_table, print_json, print_tables
from alertlab.store import resolve_home


def register(app: typer.Typer) -> None:
    """Add the ``fetch`` command group to ``app``."""
    fetch_app = typer.Typer(
        no_args_is_help=True,
        help="Fetch candles for the alerts from public APIs (the only commands that use the network).",
    )
    app.add_typer(fetch_app, name="fetch")

    @fetch_app.command("candles")
    def fetch_candles(
        home: HomeOpt = None,
        from_: FromOpt = None,
        to: ToOpt = None,
        caller: CallerOpt = None,
        chain: ChainOpt = None,
        source: Annotated[
            str, typer.Option("--source", help="geckoterminal (no key) or birdeye (key in $BIRDEYE_API_KEY).")
        ] = "geckoterminal",
        timeframe: Annotated[str, typer.Option("--timeframe", help="Bar size: 1m, 5m, 15m or 1h.")] = "1m",
        pre_minutes: Annotated[
            float, typer.Option("--pre-minutes", help="Minutes before each alert.")
        ] = 60.0,
        horizon_hours: Annotated[
            float, typer.Option("--horizon-hours", help="Hours after the entry (window horizon).")
        ] = 48.0,
        rate_limit: Annotated[
            float, typer.Option("--rate-limit", help="Requests per minute, all requests of the run.")
        ] = 30.0,
        refresh: Annotated[
            bool,
            typer.Option("--refresh", help="Refetch ranges already fetched (ignores the response cache)."),
        ] = False,
        api_url: Annotated[
            str | None,
            typer.Option(
                "--api-url",
                help="Base URL of the source (a mirror; default "
                "$ALERTLAB_GECKOTERMINAL_URL / $ALERTLAB_BIRDEYE_URL or the public API).",
            ),
        ] = None,
        max_attempts: Annotated[
            int, typer.Option("--max-attempts", help="Tries per request (429, 5xx, timeouts).")
        ] = 5,
        timeout_s: Annotated[
            float, typer.Option("--timeout-s", help="Seconds before a request times out.")
        ] = 30.0,
        as_json: JsonOpt = False,
    ) -> None:
        """Fetch exactly the candles the selected alerts need into the store (rate-limited, resumable)."""
        from alertlab.ingest.fetch import FetchOptions, run_fetch
        from alertlab.windows.spec import Selection

        try:
            sel = Selection(
                date_from=from_.date() if from_ else None,
                date_to=to.date() if to else None,
                callers=caller or [],
                chains=chain or [],
            )
            opts = FetchOptions(
                source=source,
                timeframe=timeframe,
                pre_minutes=pre_minutes,
                horizon_hours=horizon_hours,
                rate_limit=rate_limit,
                refresh=refresh,
                api_url=api_url,
                max_attempts=max_attempts,
                timeout_s=timeout_s,
            )
        except ValidationError as exc:
            fail(_pydantic_msg(exc))
        try:
            rep = run_fetch(
                resolve_home(home),
                sel,
                opts,
                progress=not as_json,
                say=(lambda m: None) if as_json else (lambda m: console.print(m, highlight=False)),
            )
        except ValueError as exc:
            fail(str(exc))
        if as_json:
            print_json(rep.to_dict())
        else:
            _show(rep)
        if rep.aborted:
            fail(
                f"run stopped: {rep.aborted} ({rep.tokens_fetched} token(s) fetched before; rerun to continue)"
            )

    @fetch_app.command("status")
    def fetch_status_cmd(
        home: HomeOpt = None,
        as_json: JsonOpt = False,
        limit: Annotated[int, typer.Option(help="Tokens not ok to list.")] = 100,
    ) -> None:
        """Fetched ranges per source, token states, and the tokens without a pool or failed (with reason)."""
        from alertlab.ingest.fetch import fetch_status

        st = fetch_status(resolve_home(home))
        if as_json:
            print_json(st)
            return
        if st["summary"].empty:
            console.print(
                "nothing fetched yet: run `alertlab fetch candles` (after `alertlab ingest alerts`)"
            )
            return
        print_tables(
            [
                frame_table(st["summary"], "fetch status by source and state"),
                frame_table(st["ranges"], "fetched ranges"),
                frame_table(
                    st["problems"],
                    f"tokens not fetched ({len(st['problems'])}); "
                    "a rerun of `fetch candles` retries the failed ones",
                    max_rows=limit,
                ),
            ]
        )


def _show(rep) -> None:
    d = rep.to_dict()
    if d["tokens_to_fetch"] == 0 and not d["failures"]:
        console.print(
            f"nothing to fetch: the {d['tokens']} token(s) of {d['alerts']} alert(s) are already fetched "
            f"({d['tokens_already_fetched']}) or have no pool ({d['tokens_no_pool_earlier']}); "
            "--refresh refetches, `alertlab fetch status` shows the state"
        )
    head = {
        k: d[k]
        for k in (
            "alerts",
            "tokens",
            "tokens_already_fetched",
            "tokens_to_fetch",
            "tokens_fetched",
            "bars_written",
            "bars_rejected",
            "tokens_no_pool",
            "tokens_failed",
            "requests",
            "cached_responses",
        )
    }
    tables = [kv_table(head, f"fetch candles: {d['source']} {d['timeframe']}")]
    if d["no_pool"]:
        tables.append(frame_table(pd.DataFrame(d["no_pool"]), "tokens without a pool", max_rows=30))
    if d["failures"]:
        tables.append(
            frame_table(pd.DataFrame(d["failures"]), "tokens failed (a rerun retries them)", max_rows=50)
        )
    print_tables(tables)
