"""``newsalpha pairs --config FILE [--out DIR]``: build the (article, forward return) pairs and their run folder."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pairs`` subcommand."""
    parser = subparsers.add_parser(
        "pairs",
        help="build leakage-free (article, forward return) pairs from news and prices",
        description="Read news and prices as a configs/pairs/*.yaml file says, align each article to its first "
        "tradable print, label it with forward returns and write pairs.parquet, quarantine.parquet and "
        "manifest.json to the run folder.",
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="a pairs config (configs/pairs/*.yaml)")
    parser.add_argument("--out", metavar="DIR", default=None, help="run folder (default: the config's 'out')")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the pairs and print a short summary; user mistakes raise NewsalphaError (the CLI prints one line)."""
    from data_pipelines.pairs import build_pairs_from_config

    result, folder = build_pairs_from_config(args.config, out=args.out)
    print(format_summary(result.manifest, str(folder)))
    return 0


def format_summary(manifest: dict, folder: str) -> str:
    """A few lines: where the files went, counts, sessions, share after the close, splits, quarantine reasons."""
    c, s = manifest["counts"], manifest["summary"]
    share = "n/a" if s["share_after_close"] is None else f"{100 * s['share_after_close']:.1f}%"
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(c["quarantined"].items(), key=lambda kv: -kv[1])) or "none"
    splits = ", ".join(f"{k} {v}" for k, v in s["splits"].items())
    lines = [
        f"pairs written to {folder}",
        f"  input rows {c['input_rows']}, articles {c['articles']}, (article, ticker) rows {c['exploded_rows']}, "
        f"pairs kept {c['kept']}",
        f"  sessions {s['sessions']} ({s['first_session']} to {s['last_session']}), tickers {s['tickers']}, "
        f"published after the close {share}",
        f"  splits: {splits}",
        f"  quarantined {sum(c['quarantined'].values())}: {reasons}",
    ]
    missing = c.get("labels_missing") or {}
    if missing:
        shown = ", ".join(f"{k} {sum(v.values())} ({', '.join(v)})" for k, v in missing.items())
        lines.append(f"  labels missing in kept pairs: {shown}")
    if "default_label" in manifest:
        lines.append(f"  default label: {manifest['default_label']['column']}")
    return "\n".join(lines)
