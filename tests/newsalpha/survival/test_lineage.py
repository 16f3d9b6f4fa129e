"""Lineage tables worked by hand, and the report rendered from them."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from evaluation.sharpe import deflated_sharpe
from newsalpha.survival.lineage import (
    champion_lineage,
    deflated_best,
    dm_decisions,
    general_gap,
    lineage_tables,
    survival_curves,
)
from newsalpha.survival.lineage_report import _rows, render_figures, verdict


def _agents() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two generations of 3 agents; generation 1 also has a control population."""
    rng = np.random.default_rng(0)
    sessions = pd.bdate_range("2024-01-02", periods=20)
    rows, daily = [], []
    spec = [
        (0, "population", "g00-a00", [], 0.002, "window_end", 20),
        (0, "population", "g00-a01", [], -0.001, "ruin", 5),
        (0, "population", "g00-a02", [], 0.000, "drawdown_stop", 12),
        (1, "population", "g01-a00", ["g00-a00"], 0.004, "window_end", 20),
        (1, "population", "g01-a01", ["g00-a00", "g00-a02"], 0.001, "window_end", 20),
        (1, "population", "g01-a02", ["g00-a02", "g00-a00"], -0.002, "drawdown_stop", 8),
        (1, "control", "g01-c00", ["g00-a00"], 0.000, "window_end", 20),
        (1, "control", "g01-c01", ["g00-a00", "g00-a02"], 0.000, "window_end", 20),
        (1, "control", "g01-c02", ["g00-a02", "g00-a00"], -0.001, "window_end", 20),
    ]
    for g, role, aid, parents, mu, outcome, stop in spec:
        r = rng.normal(mu, 0.01, len(sessions))
        daily.append(pd.DataFrame({"generation": g, "agent_id": aid, "role": role, "session": sessions, "ret": r}))
        rows.append(
            {
                "generation": g,
                "agent_id": aid,
                "role": role,
                "brain_path": f"brain{g}",
                "parents": parents,
                "gene_entry_z": 0.5,
                "gene_tickers": ["AAA", "BBB"],
                "fit_net_return": float(np.prod(1 + r) - 1),
                "fit_sharpe": float(r.mean() / r.std(ddof=1) * math.sqrt(252)),
                "fit_survived": outcome != "ruin",
                "fit_turnover": 0.5,
                "outcome": outcome,
                "stopped_session": stop,
            }
        )
    return pd.DataFrame(rows), pd.concat(daily, ignore_index=True)


def test_survival_curves_by_hand():
    agents, daily = _agents()
    s = survival_curves(agents, daily)
    g0 = s[(s["generation"] == 0) & (s["role"] == "population")].set_index("session")
    assert g0.loc[0, "alive"] == 1.0 and g0.loc[5, "alive"] == pytest.approx(2 / 3)  # a01 ruined after session 4
    assert g0.loc[12, "trading"] == pytest.approx(1 / 3) and g0.loc[11, "trading"] == pytest.approx(2 / 3)
    assert g0.loc[20, "alive"] == pytest.approx(2 / 3)  # a drawdown stop is alive, just not trading


def test_deflated_best_counts_every_trial_so_far():
    agents, daily = _agents()
    d = deflated_best(agents, daily).set_index("generation")
    assert list(d["n_trials"]) == [3, 6]
    pop = daily[daily["role"] == "population"]
    sr = pop.groupby("agent_id")["ret"].apply(lambda r: r.mean() / r.std(ddof=1))
    best1 = sr[sr.index.str.startswith("g01")].idxmax()
    assert d.loc[1, "best_agent"] == best1
    r = pop.loc[pop["agent_id"] == best1, "ret"].to_numpy()
    assert d.loc[1, "deflated_sharpe"] == pytest.approx(deflated_sharpe(r, 6, float(sr.var(ddof=1))))
    assert d.loc[1, "deflated_sharpe"] < d.loc[1, "psr"]  # the best of six is worth less than one try
    assert d.loc[1, "best_sharpe"] == pytest.approx(sr[best1] * math.sqrt(252))


def test_general_gap_is_paired_by_genome():
    agents, _ = _agents()
    gap = general_gap(agents).set_index("generation")
    assert gap.loc[0, "paired"] == 0 and gap.loc[0, "gap_mean"] == 0.0 and "general brain drives" in gap.loc[0, "note"]
    a = agents.set_index("agent_id")["fit_net_return"]
    diff = np.array([a[f"g01-a0{i}"] - a[f"g01-c0{i}"] for i in range(3)])
    assert gap.loc[1, "gap_mean"] == pytest.approx(diff.mean())
    t = diff.mean() / (diff.std(ddof=1) / math.sqrt(3))
    assert gap.loc[1, "gap_tstat"] == pytest.approx(t)
    assert gap.loc[1, "specialised_wins"] == pytest.approx(np.mean(diff > 0))


def test_champion_lineage_follows_first_parents():
    agents, _ = _agents()
    lineage = champion_lineage(agents)
    best = agents[(agents["generation"] == 1) & (agents["role"] == "population")]
    best = best.sort_values("fit_net_return").iloc[-1]
    assert lineage["agent_id"].iloc[-1] == best["agent_id"]
    assert list(lineage["generation"]) == [0, 1] and lineage["agent_id"].iloc[0] == best["parents"][0]
    assert lineage["parents"].iloc[0] == "(drawn)"


def test_dm_table_and_verdict():
    summaries = [
        {
            "generation": 0,
            "finetune": {"promoted": True, "dm_stat": 2.4, "dm_pvalue": 0.008, "test_window": ["a", "b"]},
        },
        {"generation": 1, "finetune": {"promoted": False, "child": None, "error": "too few test pairs"}},
        {"generation": 2, "finetune": None},
    ]
    dm = dm_decisions(summaries)
    assert list(dm["trained_on"]) == [0, 1] and list(dm["trades_in"]) == [1, 2]
    assert list(dm["promoted"]) == [True, False] and dm.loc[0, "test_window"] == "a to b"
    assert dm.loc[1, "error"] == "too few test pairs"
    agents, daily = _agents()
    tables = lineage_tables(agents, daily, summaries)
    text, significant = verdict(tables)
    assert "generation 1" in text and "1 of 2 fine-tuned children were promoted" in text
    gap = tables["gap"].set_index("generation").loc[1]
    assert significant == bool(gap["gap_pvalue"] < 0.05 and gap["gap_mean"] > 0)


def test_figures_are_pngs():
    agents, daily = _agents()
    figs = render_figures(agents, lineage_tables(agents, daily, []))
    assert set(figs) == {"fitness", "survival", "deflated", "gap"}
    assert all(png.startswith(b"\x89PNG") and len(png) > 5000 for png in figs.values())


def test_report_html_is_self_contained(tmp_path):
    from newsalpha.survival.lineage_report import build_lineage_report

    agents, daily = _agents()
    for g in (0, 1):
        folder = tmp_path / f"gen_{g:02d}"
        folder.mkdir()
        agents[agents["generation"] == g].to_parquet(folder / "agents.parquet")
        daily[daily["generation"] == g].to_parquet(folder / "daily.parquet")
        summary = {"generation": g, "window": {"first": "2024-01-02", "last": "2024-01-29", "n_articles": 9},
                   "champion": f"brain{g}", "next_champion": "brain1", "seconds": 1.0}  # fmt: skip
        (folder / "summary.json").write_text(pd.Series(summary).to_json())
    html = build_lineage_report(tmp_path).read_text()
    for section in ("fitness", "deflated", "gap", "dm", "champion", "fig-survival", "fig-fitness", "verdict"):
        assert f'id="{section}"' in html
    assert html.count("data:image/png;base64,") == 4
    assert not re.search(r"(src|href)=\"https?://", html)  # nothing fetched
    assert (tmp_path / "lineage" / "deflated.parquet").is_file()


def test_table_cells_keep_text_and_format_numbers():
    # text columns (role, agent ids, parents, notes, errors) once came out as "n/a" from the number formatter
    agents, daily = _agents()
    tables = lineage_tables(agents, daily, [{"generation": 0, "finetune": {"promoted": False, "dm_stat": -2.33,
                                              "test_window": ["2024-01-22", "2024-01-29"], "error": ""}}])  # fmt: skip
    cols, rows = _rows(tables["fitness"], {})
    assert [r[cols.index("role")] for r in rows] == ["population", "control", "population"]
    cols, rows = _rows(tables["champion"], {})
    assert [r[cols.index("agent_id")] for r in rows] == ["g00-a00", "g01-a00"]
    assert rows[0][cols.index("parents")] == "(drawn)" and rows[1][cols.index("parents")] == "g00-a00"
    assert rows[1][cols.index("survived")] == "True" and rows[1][cols.index("tickers")] == "2"
    cols, rows = _rows(tables["dm"], {})
    assert rows[0][cols.index("test_window")] == "2024-01-22 to 2024-01-29"
    assert rows[0][cols.index("dm_stat")] == "-2.33" and rows[0][cols.index("dm_pvalue")] == "n/a"
    assert rows[0][cols.index("promoted")] == "False" and rows[0][cols.index("error")] == ""
    cols, rows = _rows(tables["gap"], {})
    assert rows[0][cols.index("note")].startswith("no specialised brain yet")
