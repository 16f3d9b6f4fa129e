"""The second paraphrase bank: the same events in other words, for markets whose vocabulary drifts.

After a market's ``drift_at`` (see :func:`data_pipelines.synthetic.market.make_market`) every article is
phrased from this bank instead of the first one (:data:`data_pipelines.synthetic.text.BANK_A`). The two
banks describe the same events with the same scores, the same quantities with the same valences and the
same hedges with the same weights, in the same order; only the words differ. So one row of uniforms renders
the same meaning (score and event) in either bank, and n-grams learned before the drift stop matching after
it: only a reader of meaning carries across. Company names, tickers, periods, cities and other slots are
shared, as they are in real news.

The content words of each table are disjoint from the first bank's (checked in the tests); function words
("the", "its", "to") and the shared slots are not.
"""

from __future__ import annotations

# event name -> (score, phrases, negated phrases); keys and scores as in text.EVENTS, in the same order
EVENTS_B: dict[str, tuple[float, tuple[str, ...], tuple[str, ...]]] = {
    "beat": (
        1.0,
        (
            "trounced sell-side models",
            "outran brokers' numbers",
            "posted numbers comfortably north of brokers' guesses",
            "vaulted the bar set by research desks",
            "delivered an upside surprise",
        ),
        ("was unable to outrun brokers' numbers", "never vaulted the bar set by research desks"),
    ),
    "miss": (
        -1.0,
        (
            "trailed sell-side models",
            "lagged brokers' numbers",
            "posted numbers comfortably south of brokers' guesses",
            "landed beneath the bar set by research desks",
            "delivered a downside surprise",
        ),
        ("never lagged brokers' numbers", "steered clear of a downside surprise"),
    ),
    "raise_guidance": (
        0.9,
        (
            "ratcheted up its yearly roadmap",
            "set loftier yearly ambitions",
            "told investors to expect a stronger twelve months",
        ),
        ("never ratcheted up its yearly roadmap", "was unable to set loftier yearly ambitions"),
    ),
    "cut_guidance": (
        -0.9,
        (
            "ratcheted down its yearly roadmap",
            "tempered its yearly ambitions",
            "warned investors of a weaker twelve months",
        ),
        ("never ratcheted down its yearly roadmap", "wouldn't temper its yearly ambitions"),
    ),
    "cut_costs": (
        0.6,
        ("tightened its belt", "streamlined operations to save money", "pared back payroll and travel"),
        ("never tightened its belt", "was unable to streamline operations"),
    ),
    "cut_dividend": (
        -0.8,
        ("suspended cash returns to stockholders", "halved the cash it hands back to stockholders"),
        ("never suspended cash returns to stockholders", "wouldn't halve the cash it hands back to stockholders"),
    ),
    "raise_dividend": (
        0.6,
        ("enlarged cash returns to stockholders", "doubled the cash it hands back to stockholders"),
        ("never enlarged cash returns to stockholders", "wouldn't sweeten the cash it hands back to stockholders"),
    ),
    "approval": (
        0.9,
        ("secured the agency's sign-off on its principal drug", "obtained the nod of health authorities"),
        ("never secured the agency's sign-off", "was unable to obtain the nod of health authorities"),
    ),
    "rejection": (
        -0.9,
        ("saw health authorities turn down its principal drug", "was handed a thumbs-down by the agency"),
        ("was never handed a thumbs-down by the agency", "wasn't turned down by health authorities"),
    ),
    "lawsuit_won": (
        0.6,
        ("triumphed in litigation with an ex-collaborator", "saw a judge dismiss an infringement suit it faced"),
        ("never triumphed in litigation", "couldn't have an infringement suit dismissed"),
    ),
    "lawsuit_lost": (
        -0.7,
        ("was defeated in litigation with an ex-collaborator", "was told by a judge to compensate an ex-collaborator"),
        ("was never defeated in litigation", "wasn't told by a judge to compensate anyone"),
    ),
    "recall": (
        -0.7,
        ("called back shipments once a hazard surfaced", "withdrew its best-selling device because of hazards"),
        ("was never forced to retrieve shipments", "saw no reason to withdraw its best-selling device"),
    ),
    "buyback": (
        0.5,
        ("authorized buying back its own stock", "will retire billions of dollars of its own stock"),
        ("never authorized buying back its own stock", "abandoned plans to retire its own stock"),
    ),
    "upgrade": (
        0.6,
        ("earned bullish coverage at a brokerage", "was bumped to overweight at a brokerage"),
        ("never earned bullish coverage at a brokerage", "wasn't bumped to overweight"),
    ),
    "downgrade": (
        -0.6,
        ("earned bearish coverage at a brokerage", "was bumped to underweight at a brokerage"),
        ("never earned bearish coverage at a brokerage", "wasn't bumped to underweight"),
    ),
}

# quantity -> (valence, paraphrases); keys and valences as in text.QUANTITIES, in the same order
QUANTITIES_B: dict[str, tuple[int, tuple[str, ...]]] = {
    "revenue": (1, ("billings", "takings", "intake")),
    "profit": (1, ("surplus", "after-tax result", "retained result")),
    "margin": (1, ("markup", "unit economics", "pricing power")),
    "orders": (1, ("purchase commitments", "pipeline", "incoming requests")),
    "customers": (1, ("clientele", "account holders", "active members")),
    "costs": (-1, ("outgoings", "expenditure", "cash burn")),
    "debt": (-1, ("liabilities", "obligations to lenders", "credit drawn")),
    "losses": (-1, ("deficit", "shortfall", "negative result")),
    "churn": (-1, ("defections", "lapsed accounts", "drop-offs")),
}
UP_VERBS_B = ("expanded", "soared", "spiked", "leapt", "mounted", "rallied", "widened", "accelerated", "firmed")
DOWN_VERBS_B = ("sank", "plunged", "dwindled", "waned", "slipped", "deteriorated", "narrowed", "retreated", "sagged")
UP_BASE_B = ("expand", "soar", "spike", "mount")
DOWN_BASE_B = ("sink", "dwindle", "wane", "sag")
UP_NOUNS_B = ("expansion", "upswing", "spike", "leap", "upturn")
DOWN_NOUNS_B = ("contraction", "downturn", "dip", "plunge", "erosion")
UP_ADJ_B = ("greater", "heftier", "stronger")
DOWN_ADJ_B = ("weaker", "slimmer", "leaner")
# the three quantity sentence forms and the negated one (same slots as the first bank's)
QUANTITY_FORMS_B = (
    "{poss} {qty} {verb} by {pct} percent",
    "{subj} posted {a} {pct} percent {noun} in {qty}",
    "{subj} disclosed {qty} {pct} percent {adj} versus twelve months prior",
)
NEGATED_QUANTITY_B = "{poss} {qty} never managed to {base} during the {period}"
# hedge frame -> weight: the weights of text.HEDGES, in the same order
HEDGES_B: tuple[tuple[str, float], ...] = (
    ("Nobody knows if {c}", 0.15),
    ("Chatter on dealing desks says {c}", 0.4),
    ("Insiders say {c}; management would not confirm", 0.5),
    ("A few strategists wonder if {c}", 0.3),
    ("An anonymous forum poster alleged {c}; nobody could substantiate it", 0.2),
)
# reversal frames: {b} dominates; a frame starting with {b} puts it first, as in text.REVERSALS
REVERSALS_B = (
    "{a}; regardless, {b}",
    "{a}. Nevertheless, {b}",
    "Whilst {a}, {b}",
    "{b}, notwithstanding that {a}",
    "{b}, in spite of word that {a}",
    "{a}; be that as it may, {b}",
)
ROLE_PHRASES_B = (  # {x} wins, {y} loses
    "{x} poached a big client of {y}",
    "{x} displaced {y}, becoming the main vendor on a long-running account",
    "{x} elbowed {y} aside in a lucrative niche",
    "{y} was beaten by {x} in a bidding war",
)
NEUTRAL_B = (
    "{s} will speak at the {conf} summit on {day}",
    "{s} plans to publish {period} numbers on {day}",
    "{s} appointed {person} to run shareholder communications",
    "{s} stock is a hot topic with {city} traders these days",
    "{s} relocated its yearly shareholder gathering to {city}",
    "Competitor {r} disclosed its {qty} {upv} by {pct} percent, whereas {s} is due to publish later",
    "Competitor {r} outran brokers' numbers; {s} stayed silent on them",
    "{s} stated its disclosure timetable stays untouched",
    "{s} reaffirmed when its {period} briefing takes place, with nothing altered",
    "{s} issued its environmental, social and governance review",
)
FILLERS_B = (
    "A representative could not be reached.",
    "The firm's main offices are in {city}.",
    "{s} will brief investors by phone at {hour} a.m.",
    "The numbers span the {period}.",
    "The disclosure arrived {when}.",
    "Few observers foresaw a shift.",
    "",
    "",
    "",
)
WHENS_B = (
    "early in the morning",
    "once the session ended",
    "in a note to the exchange",
    "in a press statement",
    "overnight",
)
PRONOUNS_B = ("it", "the firm")  # the pronouns a reversal's second clause may use besides the short name
TAIL_B = " during the {period}"
