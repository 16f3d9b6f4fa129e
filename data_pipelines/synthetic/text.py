"""The language of the synthetic market: ticker-tagged news whose meaning needs understanding.

Every article gets a *score* in [-1, 1], the direction and strength of the news for its ticker, which
:mod:`data_pipelines.synthetic.market` turns into a planted return. Scores are built so that counting words
recovers only part of them:

``plain``      one event ("Norvex topped Wall Street forecasts"), or a quantity moving ("costs fell 12%":
               the same verb is good for revenue and bad for costs, so direction x quantity is an interaction)
``negated``    the event negated ("did not miss estimates" is mildly good), score -0.5 x the event's
``hedged``     rumour or doubt around the event ("It is unclear whether ..."), a fraction of the event's score
``reversal``   two opposite clauses; the main one dominates whether it comes first or last
               ("Although A, B", "B, even though A", "A, but B")
``role``       two companies, one gains and one loses ("X lost a major customer to Y"): the same words score
               opposite by which company the article is tagged with
``neutral``    distractors that move nothing, many with loaded words ("Rival Y beat estimates", "did not respond")

Paraphrase lists have disjoint vocabularies and Zipf-like frequencies, so rare wordings are seldom seen in
training; slots (companies, numbers, periods, cities, fillers) make exact repeats across splits rare.
Generation draws one row of uniforms per article up front, so it is deterministic and costs a few
microseconds per article in pure Python.

Every word table lives in a :class:`Bank`. :data:`BANK_A` holds the tables below; :data:`BANK_B`
(:mod:`data_pipelines.synthetic.drift`) phrases the same meanings in other words, for a market whose
vocabulary drifts. The same uniforms render the same score and event in either bank.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

import numpy as np

KINDS = ("plain", "negated", "hedged", "reversal", "role", "neutral")
DEFAULT_MIX = {"plain": 0.30, "negated": 0.12, "hedged": 0.10, "reversal": 0.14, "role": 0.08, "neutral": 0.26}
N_UNIFORMS = 32  # uniforms drawn per article; each draw below consumes one (wrapping around if ever short)

# event name -> (score, phrases (past tense, after the subject), negated phrases)
EVENTS: dict[str, tuple[float, tuple[str, ...], tuple[str, ...]]] = {
    "beat": (
        1.0,
        (
            "beat analysts' estimates",
            "topped Wall Street forecasts",
            "came in ahead of consensus",
            "exceeded what the Street had projected",
            "surpassed expectations",
        ),
        ("did not beat estimates", "failed to top forecasts", "could not come in ahead of consensus"),
    ),
    "miss": (
        -1.0,
        (
            "missed analysts' estimates",
            "fell short of forecasts",
            "came in below consensus",
            "disappointed the Street",
            "undershot projections",
        ),
        ("did not miss estimates", "avoided falling short of forecasts", "did not come in below consensus"),
    ),
    "raise_guidance": (
        0.9,
        (
            "raised its full-year outlook",
            "lifted guidance",
            "boosted its forecast for the year",
            "hiked its annual targets",
        ),
        ("did not raise its outlook", "declined to lift guidance", "held off on boosting its forecast"),
    ),
    "cut_guidance": (
        -0.9,
        (
            "cut its full-year outlook",
            "lowered guidance",
            "trimmed its forecast for the year",
            "slashed its annual targets",
        ),
        ("did not cut its outlook", "refrained from lowering guidance", "stopped short of trimming its forecast"),
    ),
    "cut_costs": (
        0.6,
        ("cut costs", "trimmed expenses", "slashed overhead", "reined in spending"),
        ("did not cut costs", "failed to trim expenses"),
    ),
    "cut_dividend": (
        -0.8,
        ("cut its dividend", "slashed its payout", "reduced its quarterly distribution"),
        ("did not cut its dividend", "kept its payout intact rather than slashing it"),
    ),
    "raise_dividend": (
        0.6,
        ("raised its dividend", "increased its payout", "lifted its quarterly distribution"),
        ("did not raise its dividend", "left its payout unchanged"),
    ),
    "approval": (
        0.9,
        (
            "won regulatory approval for its lead product",
            "received the green light from regulators",
            "was cleared by the FDA to sell its new treatment",
        ),
        ("did not win approval for its lead product", "failed to get the green light from regulators"),
    ),
    "rejection": (
        -0.9,
        (
            "had its application rejected by regulators",
            "was denied approval for its lead product",
            "received a refusal letter from the FDA",
        ),
        ("was not rejected by regulators", "avoided a refusal letter from the FDA"),
    ),
    "lawsuit_won": (
        0.6,
        ("won a lawsuit brought by a former partner", "prevailed in court against a patent claim"),
        ("did not win its lawsuit", "failed to prevail in court"),
    ),
    "lawsuit_lost": (
        -0.7,
        ("lost a lawsuit brought by a former partner", "was ordered by a court to pay damages"),
        ("did not lose its lawsuit", "was not ordered to pay damages"),
    ),
    "recall": (
        -0.7,
        ("recalled thousands of units over a safety defect", "pulled a flagship product from shelves"),
        ("did not need to recall any units", "ruled out pulling its flagship product"),
    ),
    "buyback": (
        0.5,
        ("announced a large share repurchase", "unveiled a multibillion-dollar buyback"),
        ("did not announce a buyback", "ruled out a share repurchase"),
    ),
    "upgrade": (
        0.6,
        ("was upgraded to buy by analysts", "won an upgrade to outperform"),
        ("was not upgraded by analysts", "failed to win an upgrade"),
    ),
    "downgrade": (
        -0.6,
        ("was downgraded to sell by analysts", "suffered a downgrade to underperform"),
        ("was not downgraded by analysts", "escaped a downgrade"),
    ),
}

# quantity -> (valence: +1 good when it grows, -1 bad when it grows, paraphrases)
QUANTITIES: dict[str, tuple[int, tuple[str, ...]]] = {
    "revenue": (1, ("revenue", "sales", "top-line receipts", "turnover")),
    "profit": (1, ("net income", "profit", "earnings", "bottom line")),
    "margin": (1, ("gross margin", "operating margin", "profitability")),
    "orders": (1, ("orders", "bookings", "backlog")),
    "customers": (1, ("subscribers", "paying customers", "user base")),
    "costs": (-1, ("costs", "expenses", "operating outlays", "spending")),
    "debt": (-1, ("debt", "borrowings", "leverage")),
    "losses": (-1, ("losses", "net loss", "red ink")),
    "churn": (-1, ("customer churn", "cancellations", "attrition")),
}
UP_VERBS = ("rose", "climbed", "increased", "jumped", "grew", "surged", "advanced", "swelled", "ballooned")
DOWN_VERBS = ("fell", "declined", "dropped", "decreased", "slid", "shrank", "tumbled", "contracted", "eased")
UP_BASE = ("rise", "climb", "increase", "grow")
DOWN_BASE = ("fall", "decline", "drop", "shrink")
UP_NOUNS = ("increase", "rise", "jump", "gain", "surge")
DOWN_NOUNS = ("decline", "drop", "fall", "decrease", "slump")
UP_ADJ = ("higher", "larger", "bigger")
DOWN_ADJ = ("lower", "smaller", "thinner")

# hedge frame -> weight of the hedged clause's score
HEDGES: tuple[tuple[str, float], ...] = (
    ("It is unclear whether {c}", 0.15),
    ("Unconfirmed reports suggest {c}", 0.4),
    ("People familiar with the matter said {c}, though the company declined to comment", 0.5),
    ("Some analysts speculate that {c}", 0.3),
    ("A blog post claimed {c}; the claim could not be verified", 0.2),
)
# reversal frame -> True if the clause {b} (the dominant one) is the main clause
REVERSALS = (
    "{a}, but {b}",
    "{a}. However, {b}",
    "Although {a}, {b}",
    "{b}, even though {a}",
    "{b}, despite the fact that {a}",
    "{a}; still, {b}",
)
ROLE_PHRASES = (  # (phrase with {x} winner and {y} loser)
    "{y} lost a major customer to {x}",
    "{x} won a contract that {y} had held for years",
    "{x} took market share from {y}",
    "{y} was outbid by {x} for a key supply deal",
)
NEUTRAL = (
    "{s} will present at the {conf} conference on {day}",
    "{s} is scheduled to report {period} results on {day}",
    "{s} named {person} as head of investor relations",
    "{s} shares are among the most mentioned in {city} trading rooms this week",
    "{s} moved its annual meeting to {city}",
    "Rival {r} reported that its {qty} {upv} {pct}%, while {s} has not yet reported",
    "Rival {r} beat estimates; {s} did not comment on the results",
    "{s} said it will not change its reporting calendar",
    "{s} confirmed the date of its {period} call, neither raising nor cutting anything",
    "{s} published its sustainability report",
)
FILLERS = (
    "A spokesperson did not respond to a request for comment.",
    "The company is headquartered in {city}.",
    "{s} will hold a conference call at {hour} a.m.",
    "The figures cover the {period}.",
    "The results were released {when}.",
    "Analysts had not expected any change.",
    "",
    "",
    "",
)
PERIODS = (
    "first quarter",
    "second quarter",
    "third quarter",
    "fourth quarter",
    "fiscal year",
    "first half",
    "second half",
    "holiday quarter",
)
CITIES = (
    "Boston",
    "Chicago",
    "Austin",
    "Denver",
    "Seattle",
    "Atlanta",
    "Dallas",
    "Phoenix",
    "Toronto",
    "London",
    "San Jose",
    "Charlotte",
    "Miami",
    "Minneapolis",
)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
WHENS = ("before the bell", "after the close", "late on " + "Thursday", "in a regulatory filing", "on its website")
CONFS = (
    "Goldman Sachs technology",
    "JPMorgan healthcare",
    "Barclays industrials",
    "Bernstein strategic",
    "Morgan Stanley consumer",
    "UBS financials",
)
PEOPLE = (
    "Dana Whitfield",
    "Marcus Ohene",
    "Priya Raman",
    "Lena Kowalski",
    "Tomas Rivera",
    "Grace Liu",
    "Samuel Adeyemi",
    "Ingrid Holm",
)
SYLLABLES = (
    "nor",
    "vex",
    "al",
    "tri",
    "qua",
    "zen",
    "lum",
    "bar",
    "cor",
    "dex",
    "fin",
    "gal",
    "hel",
    "ion",
    "jor",
    "kel",
    "mar",
    "nex",
    "ori",
    "pel",
    "ros",
    "sol",
    "tav",
    "ul",
    "ver",
    "wex",
    "xan",
    "yor",
)
SUFFIXES = ("Corp", "Inc", "Holdings", "Group", "Systems", "Labs", "Industries", "Therapeutics", "Energy", "Brands")


def _zipf_cum(n: int, a: float = 0.8) -> list[float]:
    """Cumulative Zipf(a) weights over ``n`` choices (first most common), for ``bisect``."""
    w = [1.0 / (k + 1) ** a for k in range(n)]
    total = sum(w)
    return list(accumulate(x / total for x in w))


_CUM_CACHE: dict[int, list[float]] = {}


class _Draw:
    """Consume one article's pre-drawn uniforms in a fixed order."""

    __slots__ = ("u", "i", "bank")

    def __init__(self, u: Sequence[float], bank: Bank | None = None):
        self.u, self.i = u, 0
        self.bank = bank or BANK_A

    def next(self) -> float:
        self.i += 1
        return self.u[(self.i - 1) % len(self.u)]

    def zipf(self, seq: Sequence) -> object:
        """An element of ``seq`` with Zipf-like frequencies (rare paraphrases exist)."""
        cum = _CUM_CACHE.get(len(seq)) or _CUM_CACHE.setdefault(len(seq), _zipf_cum(len(seq)))
        return seq[min(bisect.bisect(cum, self.next()), len(seq) - 1)]

    def pick(self, seq: Sequence) -> object:
        """A uniformly chosen element of ``seq``."""
        return seq[min(int(self.next() * len(seq)), len(seq) - 1)]


def company_names(n: int, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """``n`` distinct pseudo company names and tickers (2-5 upper-case letters, never ``MKT``).

    Returns
    -------
    (names, tickers) : tuple of lists
    """
    names: list[str] = []
    tickers: list[str] = []
    seen: set[str] = {"MKT"}
    while len(names) < n:
        k = 2 + int(rng.integers(0, 2))
        stem = "".join(SYLLABLES[int(i)] for i in rng.integers(0, len(SYLLABLES), size=k)).capitalize()
        tick = (stem[0] + "".join(c for c in stem[1:] if c not in "aeiou"))[:4].upper()
        if len(tick) < 2 or tick in seen:
            continue
        seen.add(tick)
        names.append(f"{stem} {SUFFIXES[int(rng.integers(0, len(SUFFIXES)))]}")
        tickers.append(tick)
    return names, tickers


def _poss(subj: str) -> str:
    """Possessive of a subject ("it" -> "its", "Norvex Corp (NRVX)" -> "Norvex Corp's")."""
    if subj == "it":
        return "its"
    return f"{subj.split(' (')[0]}'s"


def _a(pct: int) -> str:
    return "an" if str(pct).startswith("8") or pct in (11, 18) else "a"


def _quantity_clause(d: _Draw, subj: str, sign: int = 0) -> tuple[str, float]:
    """A quantity moving up or down; score = direction x valence x size (``sign`` forces the score's sign)."""
    b = d.bank
    qname = d.pick(tuple(b.quantities))
    valence, words = b.quantities[qname]
    qty = d.zipf(words)
    up = d.next() < 0.5 if sign == 0 else sign * valence > 0
    pct = 1 + int(d.next() * 30)
    size = 0.5 if pct < 5 else 1.0
    score = (1 if up else -1) * valence * size
    form = d.next()
    slots = {"poss": _poss(subj), "subj": subj, "qty": qty, "pct": pct, "a": _a(pct)}
    if form < 0.45:
        text = b.quantity_forms[0].format(verb=d.zipf(b.up_verbs if up else b.down_verbs), **slots)
    elif form < 0.8:
        text = b.quantity_forms[1].format(noun=d.zipf(b.up_nouns if up else b.down_nouns), **slots)
    else:
        text = b.quantity_forms[2].format(adj=d.zipf(b.up_adj if up else b.down_adj), **slots)
    return text, score


def _negated_quantity(d: _Draw, subj: str) -> tuple[str, float]:
    b = d.bank
    valence, words = b.quantities[d.pick(tuple(b.quantities))]
    up = d.next() < 0.5
    base = d.zipf(b.up_base if up else b.down_base)
    text = b.negated_quantity.format(poss=_poss(subj), qty=d.zipf(words), base=base, period=d.pick(PERIODS))
    return text, -0.5 * (1 if up else -1) * valence


def _event_clause(d: _Draw, subj: str, negated: bool = False, sign: int = 0) -> tuple[str, float, str]:
    """An event clause (``subj`` + phrase) with its score and name (``sign`` forces the score's sign)."""
    events = d.bank.events
    positive = tuple(k for k, v in events.items() if v[0] > 0)
    negative = tuple(k for k, v in events.items() if v[0] < 0)
    name = d.pick(tuple(events) if sign == 0 else (positive if sign > 0 else negative))
    score, phrases, neg = events[name]
    if negated:
        return f"{subj} {d.zipf(neg)}", -0.5 * score, name
    return f"{subj} {d.zipf(phrases)}", score, name


def _polar_clause(d: _Draw, subj: str, sign: int = 0) -> tuple[str, float, str]:
    """Either an event or a quantity clause (never neutral)."""
    if d.next() < 0.55:
        return _event_clause(d, subj, sign=sign)
    text, score = _quantity_clause(d, subj, sign=sign)
    return text, score, "quantity"


def _subject(d: _Draw, name: str, ticker: str) -> str:
    short = name.split(" ")[0]
    return d.pick((name, short, f"{name} ({ticker})", short))


class _Slots(dict):
    """Template slots drawn only when a template uses them (``str.format_map``)."""

    def __init__(self, d: _Draw, subj: str, rival: str):
        super().__init__(s=subj, r=rival)
        self.d = d

    def __missing__(self, key: str) -> str:
        d = self.d
        b = d.bank
        pools = {"conf": CONFS, "day": DAYS, "period": PERIODS, "person": PEOPLE, "city": CITIES, "when": b.whens}
        if key in pools:
            value = d.pick(pools[key])
        elif key == "qty":
            value = d.zipf(b.quantities[d.pick(tuple(b.quantities))][1])
        elif key == "upv":
            value = d.zipf(b.up_verbs if d.next() < 0.5 else b.down_verbs)
        elif key == "pct":
            value = str(1 + int(d.next() * 30))
        elif key == "hour":
            value = str(7 + int(d.next() * 4))
        else:
            raise KeyError(key)
        self[key] = value
        return value


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _reversal(d: _Draw, subj: str) -> tuple[str, float, str]:
    """Two clauses of opposite sign; the main clause ``b`` dominates wherever it stands."""
    frame = d.pick(d.bank.reversals)
    pron = d.pick((*d.bank.pronouns, subj.split(" ")[0]))
    a_subj, b_subj = (pron, subj) if frame.startswith("{b}") else (subj, pron)
    a, za, _ = _polar_clause(d, a_subj)
    b, zb, name = _polar_clause(d, b_subj, sign=-1 if za > 0 else 1)
    return _cap(frame.format(a=a, b=b)), 0.8 * zb + 0.2 * za, name


def render_article(
    u: Sequence[float], kind: str, name: str, ticker: str, rival: str, bank: Bank | None = None
) -> tuple[str, float, str]:
    """One article text from one row of uniforms.

    Parameters
    ----------
    u : sequence of float
        :data:`N_UNIFORMS` uniforms in [0, 1) (a list is fastest).
    kind : str
        One of :data:`KINDS`.
    name, ticker : str
        The tagged company's name and ticker.
    rival : str
        Another company's name (for role and distractor texts).
    bank : Bank, optional
        The paraphrase bank to phrase it from (default :data:`BANK_A`); the score does not depend on it.

    Returns
    -------
    (text, score, event) : tuple
        ``score`` in [-1, 1] is the meaning for the tagged ticker (0 for neutral news).
    """
    d = _Draw(u, bank)
    b = d.bank
    subj = _subject(d, name, ticker)
    rival_short = rival.split(" ")[0]
    if kind == "plain":
        text, score, event = _polar_clause(d, subj)
    elif kind == "negated":
        if d.next() < 0.6:
            text, score, event = _event_clause(d, subj, negated=True)
        else:
            (text, score), event = _negated_quantity(d, subj), "quantity"
    elif kind == "hedged":
        clause, z, event = _polar_clause(d, subj)
        frame, weight = d.pick(b.hedges)
        text, score = frame.format(c=clause), weight * z
    elif kind == "reversal":
        text, score, event = _reversal(d, subj)
    elif kind == "role":
        phrase = d.pick(b.role_phrases)
        tagged_wins = d.next() < 0.5
        x, y = (subj, rival_short) if tagged_wins else (rival_short, subj)
        text, score, event = phrase.format(x=x, y=y), (0.7 if tagged_wins else -0.7), "role"
    else:
        text, score, event = d.pick(b.neutral).format_map(_Slots(d, subj, rival_short)), 0.0, "neutral"
    filler = d.pick(b.fillers).format_map(_Slots(d, name.split(" ")[0], rival_short))
    tail = b.tail.format(period=d.pick(PERIODS)) if kind == "plain" and d.next() < 0.5 else ""
    text = _cap(text) + tail + "."
    return (text + " " + filler).strip(), max(-1.0, min(1.0, float(score))), event


def generate_texts(
    kinds: np.ndarray,
    company: np.ndarray,
    rival: np.ndarray,
    names: list[str],
    tickers: list[str],
    u: np.ndarray,
    bank: np.ndarray | None = None,
) -> tuple[list[str], np.ndarray, list[str]]:
    """Render many articles (see :func:`render_article`); rows of ``u`` are each article's uniforms.

    ``bank``, when given, holds each article's index into :data:`BANKS` (default: all :data:`BANK_A`).

    Returns
    -------
    (texts, scores, events)
    """
    texts: list[str] = []
    events: list[str] = []
    scores = np.empty(len(kinds), dtype=np.float64)
    rows = u.tolist()  # Python floats: indexing a list is much faster than numpy scalars
    which = [0] * len(kinds) if bank is None else bank.tolist()
    for i, (k, c, r) in enumerate(zip(kinds.tolist(), company.tolist(), rival.tolist(), strict=True)):
        text, score, event = render_article(rows[i], KINDS[k], names[c], tickers[c], names[r], BANKS[which[i]])
        texts.append(text)
        events.append(event)
        scores[i] = score
    return texts, scores, events


@dataclass(frozen=True)
class Bank:
    """One paraphrase bank: every word table an article is phrased from.

    Two banks describe the same meanings when their ``events`` have the same names and scores, their
    ``quantities`` the same names and valences, and their ``hedges`` the same weights, each in the same
    order (:func:`same_meanings`): then one row of uniforms renders the same score and event in both.
    """

    events: dict[str, tuple[float, tuple[str, ...], tuple[str, ...]]]
    quantities: dict[str, tuple[int, tuple[str, ...]]]
    up_verbs: tuple[str, ...]
    down_verbs: tuple[str, ...]
    up_base: tuple[str, ...]
    down_base: tuple[str, ...]
    up_nouns: tuple[str, ...]
    down_nouns: tuple[str, ...]
    up_adj: tuple[str, ...]
    down_adj: tuple[str, ...]
    quantity_forms: tuple[str, str, str]
    negated_quantity: str
    hedges: tuple[tuple[str, float], ...]
    reversals: tuple[str, ...]
    role_phrases: tuple[str, ...]
    neutral: tuple[str, ...]
    fillers: tuple[str, ...]
    whens: tuple[str, ...]
    pronouns: tuple[str, ...]
    tail: str


def same_meanings(a: Bank, b: Bank) -> bool:
    """Whether ``a`` and ``b`` render the same scores from the same uniforms (see :class:`Bank`)."""
    return (
        [(k, v[0]) for k, v in a.events.items()] == [(k, v[0]) for k, v in b.events.items()]
        and [(k, v[0]) for k, v in a.quantities.items()] == [(k, v[0]) for k, v in b.quantities.items()]
        and [w for _, w in a.hedges] == [w for _, w in b.hedges]
        and [f.startswith("{b}") for f in a.reversals] == [f.startswith("{b}") for f in b.reversals]
        and len(a.pronouns) == len(b.pronouns)
    )


BANK_A = Bank(
    events=EVENTS,
    quantities=QUANTITIES,
    up_verbs=UP_VERBS,
    down_verbs=DOWN_VERBS,
    up_base=UP_BASE,
    down_base=DOWN_BASE,
    up_nouns=UP_NOUNS,
    down_nouns=DOWN_NOUNS,
    up_adj=UP_ADJ,
    down_adj=DOWN_ADJ,
    quantity_forms=(
        "{poss} {qty} {verb} {pct}%",
        "{subj} reported {a} {pct}% {noun} in {qty}",
        "{subj} said {qty} were {pct}% {adj} than a year earlier",
    ),
    negated_quantity="{poss} {qty} did not {base} in the {period}",
    hedges=HEDGES,
    reversals=REVERSALS,
    role_phrases=ROLE_PHRASES,
    neutral=NEUTRAL,
    fillers=FILLERS,
    whens=WHENS,
    pronouns=("it", "the company"),
    tail=" in the {period}",
)


def _bank_b() -> Bank:
    from data_pipelines.synthetic import drift as B

    return Bank(
        events=B.EVENTS_B,
        quantities=B.QUANTITIES_B,
        up_verbs=B.UP_VERBS_B,
        down_verbs=B.DOWN_VERBS_B,
        up_base=B.UP_BASE_B,
        down_base=B.DOWN_BASE_B,
        up_nouns=B.UP_NOUNS_B,
        down_nouns=B.DOWN_NOUNS_B,
        up_adj=B.UP_ADJ_B,
        down_adj=B.DOWN_ADJ_B,
        quantity_forms=B.QUANTITY_FORMS_B,
        negated_quantity=B.NEGATED_QUANTITY_B,
        hedges=B.HEDGES_B,
        reversals=B.REVERSALS_B,
        role_phrases=B.ROLE_PHRASES_B,
        neutral=B.NEUTRAL_B,
        fillers=B.FILLERS_B,
        whens=B.WHENS_B,
        pronouns=B.PRONOUNS_B,
        tail=B.TAIL_B,
    )


BANK_B = _bank_b()
BANKS = (BANK_A, BANK_B)  # index 0: before a vocabulary drift, 1: after it
