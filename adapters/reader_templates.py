"""Everyday documents with exact question/answer pairs, for training the reader.

The reader first learned to read on Wikipedia prose (SQuAD), but users upload other things:
opening hours as lists, timetables, price lists, house rules, FAQs, manuals with error codes,
tables and CSV files, READMEs with shell commands, contact lists, event calendars. On those it
answered half a question (one of two closed days, a price without its unit, a name without
the year asked for) or picked the neighbouring row. These documents teach it such layouts.

Every reply is built only from `parts`, text that stands verbatim in the document, so a target
never adds a fact; questions may ask for several parts at once, numbers come with their units
and qualifiers, and about one question a document is not answered by it. Each kind is written
in several layouts over many domains, with made-up names, numbers, times and prices, and with
similar facts side by side (several days, routes, items), so that the reader learns to find
the asked fact rather than one phrasing; the documents are judged on real ones never seen.
"""

from __future__ import annotations

import csv
import datetime
import io
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from knowledge.reading import NOT_IN_DOCUMENTS


@dataclass(frozen=True)
class TemplateQuestion:
    """A question about one document and the reply the reader should give. The reply is made
    of `parts`, each verbatim in the document, so training never teaches an invented fact."""

    question: str
    reply: str
    parts: tuple[str, ...]
    unanswerable: bool = False


@dataclass(frozen=True)
class TemplateDocument:
    """A file as a user would upload it (`name` unique over one call, as in one folder)."""

    name: str
    text: str
    questions: tuple[TemplateQuestion, ...]
    kind: str


@dataclass(frozen=True)
class _Ask:
    question: str
    reply: str
    parts: tuple[str, ...]


@dataclass(frozen=True)
class _Gap:
    """A plausible question the document leaves open; `absent` are words whose absence from
    the text shows it does (the gap is dropped if one occurs, rather than risk a wrong target)."""

    question: str
    absent: tuple[str, ...]


@dataclass(frozen=True)
class _Fact:
    """A question a data entry answers; templates filled from the document's values. Without
    `parts` the reply itself is the one part."""

    question: str
    reply: str
    parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Entry:
    """A rule or FAQ item: the domains it fits (letters), its label, its text, the facts it
    answers and the words that show it is present."""

    tags: str
    label: str
    text: str
    facts: tuple[_Fact, ...]
    absent: tuple[str, ...]


# --- shared helpers: names, numbers, times, prices, layout pieces ---

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_FIRST = (
    "Ana", "Tomas", "Lena", "Omar", "Priya", "Jonas", "Mei", "Kwame", "Sofia", "Mateo", "Ingrid",
    "Yusuf", "Clara", "Emeka", "Hana", "Luca", "Nora", "Rafael", "Aiko", "Dmitri", "Fatima",
    "Oskar", "Leila", "Pedro", "Greta", "Samir", "Elena", "Kofi", "Marta", "Felix", "Zainab",
    "Henrik", "Rosa", "Ivan", "Amara", "Niko", "Tess", "Arjun", "Bea", "Ciaran", "Maja", "Tariq",
)  # fmt: skip
_STEMS = (
    "Bel", "Cor", "Dal", "Fen", "Har", "Kel", "Lin", "Mar", "Nor", "Ost", "Pel", "Ros", "Sel",
    "Tar", "Val", "Wes", "Ald", "Brin", "Cas", "Dun", "Eld", "Gar", "Hol", "Ivel", "Jun", "Kra",
    "Lom", "Mel", "Nes", "Orm", "Pra", "Rav", "Sten", "Tul", "Ves", "Wyn", "Zor", "Quin",
)  # fmt: skip
_PLACE_ENDS = (
    "by", "holm", "ford", "mouth", "wick", "haven", "field", "stead", "ton", "dale", "bridge",
    "sund", "ness", "thorpe", "bury", "minster",
)  # fmt: skip
_NAME_ENDS = ("son", "berg", "ek", "ner", "ani", "ova", "ley", "ski", "ez", "ard", "ling", "ic")
_BRAND_ENDS = ("ex", "ora", "ant", "ix", "en", "ova", "is", "o")
_COMPANY_ENDS = ("", "", " Ltd", " & Sons", " GmbH", " AS", " Group")


def _place(rng: random.Random) -> str:
    return rng.choice(_STEMS) + rng.choice(_PLACE_ENDS)


def _surname(rng: random.Random) -> str:
    return rng.choice(_STEMS) + rng.choice(_NAME_ENDS)


def _person(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {_surname(rng)}"


def _brand(rng: random.Random) -> str:
    return rng.choice(_STEMS) + rng.choice(_BRAND_ENDS)


def _company(rng: random.Random, trade: str) -> str:
    return f"{_brand(rng)} {trade}{rng.choice(_COMPANY_ENDS)}"


def _distinct(rng: random.Random, make: Callable[[random.Random], str], count: int) -> list[str]:
    """`count` values of which none contains another, so a part names exactly one of them."""
    values: list[str] = []
    while len(values) < count:
        value = make(rng)
        if not any(value in v or v in value for v in values):
            values.append(value)
    return values


def _email(first_last: str, domain: str) -> str:
    return ".".join(first_last.lower().split()) + "@" + domain


def _domain(rng: random.Random, name: str) -> str:
    """A web domain as organisations shorten their names: "Belholm Football Club" -> belholmfc."""
    words = re.findall(r"[a-z]+", name.lower()) or ["mail"]
    word = words[0] + "".join(w[0] for w in words[1:]) if rng.random() < 0.7 else "-".join(words)
    return word + rng.choice((".com", ".org", ".net", ".co.uk", ".de", ".eu"))


@dataclass(frozen=True)
class _Style:
    """How one document writes times, prices, phone numbers and dates: consistent within a
    document, varied between them, as different authors write."""

    clock: Callable[[int], str]
    money: Callable[[int], str]
    phone: Callable[[random.Random], str]
    date: Callable[[datetime.date], str]
    dash: str


def _style(rng: random.Random) -> _Style:
    clock_kind, money_kind, phone_kind, date_kind = (rng.randrange(n) for n in (5, 8, 4, 6))
    symbol, place = (
        ("€", "pre"),
        ("€", "post"),
        ("EUR", "code"),
        ("euros", "word"),
        ("$", "pre"),
        ("£", "pre"),
        ("CHF", "code"),
        ("kr", "post"),
    )[money_kind]
    cents_always = rng.random() < 0.4
    comma = symbol in ("€", "kr", "euros") and rng.random() < 0.5

    def clock(minutes: int) -> str:
        hour, minute = divmod(minutes, 60)
        if clock_kind == 0:
            return f"{hour:02d}:{minute:02d}"
        if clock_kind == 1:
            return f"{hour}:{minute:02d}"
        if clock_kind == 2:
            return f"{hour}.{minute:02d}"
        half = ("am" if hour < 12 else "pm") if clock_kind == 3 else ("AM" if hour < 12 else "PM")
        if clock_kind == 3 and minute == 0:
            return f"{hour % 12 or 12} {half}"
        return f"{hour % 12 or 12}:{minute:02d} {half}"

    def money(cents: int) -> str:
        whole, rest = divmod(cents, 100)
        number = str(whole) if rest == 0 and not cents_always else f"{whole}.{rest:02d}"
        number = number.replace(".", ",") if comma else number
        if place == "pre":
            return symbol + number
        if place == "post":
            return f"{number} {symbol}"
        if place == "code":
            return f"{symbol} {number}"
        return f"{number} {'euro' if cents == 100 else 'euros'}"

    def phone(r: random.Random) -> str:
        if phone_kind == 0:
            return f"0{r.randint(20, 99)} {r.randint(1000, 9999)} {r.randint(1000, 9999)}"
        if phone_kind == 1:
            return f"+44 {r.randint(1000, 9999)} {r.randint(100000, 999999)}"
        if phone_kind == 2:
            return f"({r.randint(200, 999)}) 555-{r.randint(1000, 9999)}"
        return f"+49 {r.randint(30, 89)} {r.randint(1000000, 9999999)}"

    def date(day: datetime.date) -> str:
        month, weekday = MONTHS[day.month - 1], DAYS[day.weekday()]
        return (
            f"{day.day} {month}",
            f"{month} {day.day}",
            f"{weekday} {day.day} {month}",
            f"{day.day:02d}.{day.month:02d}.{day.year}",
            day.isoformat(),
            f"{weekday[:3]} {day.day} {month[:3]}",
        )[date_kind]

    return _Style(clock, money, phone, date, rng.choice(("–", " - ", " to ", "-")))


def _join(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _ask(question: str, *parts: str, reply: str | None = None) -> _Ask:
    return _Ask(question, _join(parts) if reply is None else reply, parts)


def _heading(text: str, style: str, level: int = 1) -> str:
    """A title in one of the ways people write them: markdown, setext, reST or plain text."""
    if style == "md":
        return f"{'#' * level} {text}"
    if style == "setext":
        return f"{text}\n{('=' if level == 1 else '-') * len(text)}"
    if style == "rst":
        rule = ("=" if level == 1 else "-") * len(text)
        return f"{rule}\n{text}\n{rule}" if level == 1 else f"{text}\n{rule}"
    return text.upper() if level == 1 else f"{text}:"


def _suffix(style: str) -> str:
    return ".md" if style in ("md", "setext") else ".txt"


def _file_name(rng: random.Random, title: str, suffix: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", title)
    kind = rng.randrange(3)
    if kind == 0:
        stem = "-".join(w.lower() for w in words)
    elif kind == 1:
        stem = "_".join(words)
    else:
        stem = "-".join(w.lower() for w in words[:3])
    return stem + suffix


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().rstrip("\n")


def _aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) + 3 for i in range(len(header))]
    lines = ["".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    top = "".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()
    return "\n".join([top, "-" * len(top), *lines])


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _some(rng: random.Random, sentences: Sequence[str], low: int, high: int) -> str:
    """A few sentences of context, as real notices have around their facts."""
    return " ".join(rng.sample(list(sentences), rng.randint(low, high)))


def _document(
    rng: random.Random,
    kind: str,
    name: str,
    text: str,
    asks: Sequence[_Ask],
    gaps: Sequence[_Gap],
) -> TemplateDocument:
    """3-6 of the answerable questions and one the text leaves open, checked: a part missing
    from the text or an open question answered by it would teach the reader to invent."""
    unique = list({a.question: a for a in asks}.values())
    if len(unique) < 3:
        raise ValueError(f"{kind}: only {len(unique)} questions for {name}")
    chosen = rng.sample(unique, min(len(unique), rng.randint(3, 6)))
    questions = [TemplateQuestion(a.question, a.reply, a.parts) for a in chosen]
    lowered = text.lower()
    open_gaps = [g for g in gaps if not any(w.lower() in lowered for w in g.absent)]
    if open_gaps:
        gap = rng.choice(open_gaps)
        unanswerable = TemplateQuestion(gap.question, NOT_IN_DOCUMENTS, (), unanswerable=True)
        questions.insert(rng.randint(0, len(questions)), unanswerable)
    for question in questions:
        missing = [p for p in question.parts if p not in text]
        if missing or not question.reply:
            raise ValueError(f"{kind}: {question.question!r} lacks {missing} in {name}")
    return TemplateDocument(name, text.strip() + "\n", tuple(questions), kind)


def _entries(
    rng: random.Random, pool: Sequence[_Entry], tag: str, values: dict[str, str], count: int
) -> tuple[list[_Entry], list[_Ask], list[_Gap]]:
    """Some of the entries fitting a domain, their questions, and the left-out entries'
    first questions as gaps."""
    fitting = [e for e in pool if tag in e.tags]
    chosen = rng.sample(fitting, min(count, len(fitting)))
    asks = [
        _Ask(
            f.question.format(**values),
            f.reply.format(**values),
            tuple(p.format(**values) for p in (f.parts or (f.reply,))),
        )
        for e in chosen
        for f in e.facts
    ]
    gaps = [
        _Gap(e.facts[0].question.format(**values), e.absent) for e in fitting if e not in chosen
    ]
    return [e for e in fitting if e in chosen], asks, gaps


_PRICE_WORDS = ("€", "$", "£", "eur", "chf", "kr", "price", "fee", "cost", "admission", "ticket")
_PHONE_WORDS = ("phone", "call", "tel", "+4", "555")


# --- opening hours ---

_VENUES = (
    ("swimming pool", "{town} Swimming Pool", ("sauna", "learner pool"),
     "The pool has {n} lanes of 25 metres.", "How many lanes does {name} have?", "{n} lanes",
     4, 10),
    ("library", "{town} Public Library", ("children's library", "reading café"),
     "The reading room has {n} seats.", "How many seats does the reading room of {name} have?",
     "{n} seats", 20, 90),
    ("bakery", "{surname}'s Bakery", ("café",),
     "Our café has {n} tables.", "How many tables does the café at {name} have?", "{n} tables",
     4, 16),
    ("museum", "{town} Museum", ("museum shop", "café"),
     "The collection fills {n} rooms on two floors.", "How many rooms does {name} have?",
     "{n} rooms", 8, 40),
    ("health centre", "{town} Health Centre", ("pharmacy", "blood test service"),
     "{n} doctors work at the centre.", "How many doctors work at {name}?", "{n} doctors", 3, 12),
    ("gym", "{brand} Fitness", ("climbing wall", "sauna"),
     "The gym floor has {n} machines.", "How many machines does {name} have?", "{n} machines",
     30, 90),
    ("recycling centre", "{town} Recycling Centre", (),
     "There are {n} containers for different materials.",
     "How many containers are there at {name}?",
     "{n} containers", 10, 30),
)  # fmt: skip

_HOURS_NOTES = (
    "Changes are announced on the notice board at the entrance.",
    "Wheelchair access is through the side entrance.",
    "School groups are welcome by appointment.",
    "We look forward to your visit.",
    "The building may close early for special events; these are announced a week ahead.",
    "Bicycles can be left in the racks by the main door.",
)
Week = list[tuple[int, int] | None]


def _week(rng: random.Random) -> Week:
    closed = rng.choice(((6,), (0,), (0, 6), (5, 6), (6, rng.randrange(5)), (rng.randrange(7),)))
    opens, closes = rng.randrange(360, 601, 30), rng.randrange(960, 1261, 30)
    weekend = (rng.randrange(480, 661, 30), rng.randrange(720, 1081, 60))
    late = rng.randrange(5) if rng.random() < 0.6 else -1
    week: Week = []
    for day in range(7):
        if day in closed:
            week.append(None)
        else:
            week.append(
                weekend if day >= 5 else (opens, min(closes + 120, 1320) if day == late else closes)
            )
    return week


def _day_groups(week: Week, merge: bool, through: str) -> list[tuple[str, tuple[int, int] | None]]:
    """Days with the same hours as one line ("Monday to Friday"), as most notices write them;
    two days are named both, so every closed day stands in the text by name."""
    groups: list[tuple[str, tuple[int, int] | None]] = []
    start = 0
    for day in range(1, 8):
        if day == 7 or not merge or week[day] != week[start]:
            end = day - 1
            if end == start:
                label = DAYS[start]
            elif end == start + 1:
                label = f"{DAYS[start]} and {DAYS[end]}"
            else:
                label = f"{DAYS[start]}{through}{DAYS[end]}"
            groups.append((label, week[start]))
            start = day
    return groups


def _hours_asks(
    rng: random.Random, subject: str, week: Week, clock: Callable[[int], str], closed: str
) -> list[_Ask]:
    asks = []
    open_days = [d for d in range(7) if week[d]]
    shut = [DAYS[d] for d in range(7) if not week[d]]
    for day in rng.sample(open_days, min(2, len(open_days))):
        hours = week[day]
        assert hours is not None
        start, end, name = clock(hours[0]), clock(hours[1]), DAYS[day]
        asks.append(
            rng.choice(
                (
                    _ask(f"When does {subject} open on {name}?", start),
                    _ask(f"What time does {subject} open on {name}s?", start),
                    _ask(f"What time does {subject} close on {name}?", end),
                    _ask(f"Until when is {subject} open on {name}?", end),
                    _ask(
                        f"What are the opening hours of {subject} on {name}?",
                        start,
                        end,
                        reply=f"{start} to {end}",
                    ),
                    _ask(
                        f"Is {subject} open on {name}?", start, end, reply=f"Yes, {start} to {end}"
                    ),
                )
            )
        )
    day = rng.choice(shut)
    asks.append(
        _ask(
            rng.choice((f"Is {subject} open on {day}?", f"Can I go to {subject} on a {day}?")),
            closed,
            reply="No, it is closed",
        )
    )
    if len(shut) > 1:
        asks.append(
            _ask(
                rng.choice(
                    (f"Which days is {subject} closed?", f"On which days is {subject} closed?")
                ),
                *shut,
            )
        )
    else:
        asks.append(_ask(f"On which day of the week is {subject} closed?", *shut))
    return asks


def _hours(rng: random.Random) -> TemplateDocument:
    noun, pattern, extras, count_text, count_q, count_reply, low, high = rng.choice(_VENUES)
    style = _style(rng)
    town = _place(rng)
    name = pattern.format(town=town, surname=_surname(rng), brand=_brand(rng))
    layout = rng.randrange(5)
    merge, through = rng.random() < 0.6, rng.choice(("–", " to "))
    dash = rng.choice(("–", " to ")) if layout == 3 else style.dash
    closed = "closed" if layout == 2 else rng.choice(("closed", "Closed"))
    heading = (
        "md",
        "md",
        rng.choice(("md", "setext", "rst", "plain")),
        rng.choice(("setext", "rst")),
        "plain",
    )[layout]
    bullet = rng.choice(("-", "*"))
    sections = [
        (rng.choice(("Opening hours", "Opening times", "When we are open")), name, _week(rng))
    ]
    if extras and rng.random() < 0.5:
        extra = rng.choice(extras)
        sections.append((f"{_cap(extra)} hours", f"the {extra} at {name}", _week(rng)))

    def hours(h: tuple[int, int] | None) -> str:
        return closed if h is None else style.clock(h[0]) + dash + style.clock(h[1])

    def body(week: Week, noun_here: str) -> str:
        groups = _day_groups(week, merge, through)
        if layout in (0, 3):
            sep, prefix = (": ", f"{bullet} ") if layout == 0 else (" - ", "")
            return "\n".join(f"{prefix}{label}{sep}{hours(h)}" for label, h in groups)
        if layout == 1:
            if rng.random() < 0.5:
                return _md_table(("Day", "Hours"), [(g, hours(h)) for g, h in groups])
            rows = [
                (g, closed, "–") if h is None else (g, style.clock(h[0]), style.clock(h[1]))
                for g, h in groups
            ]
            return _md_table(("Day", "Opens", "Closes"), rows)
        if layout == 2:
            sentences = []
            for label, h in groups:
                when = label if through in label else f"on {label}"
                if h is None:
                    sentences.append(f"{_cap(when)}, the {noun_here} is closed.")
                else:
                    start, end = style.clock(h[0]), style.clock(h[1])
                    sentences.append(
                        rng.choice(
                            (
                                f"{_cap(when)}, the {noun_here} is open from {start} to {end}.",
                                f"{_cap(when)}, the {noun_here} opens at {start} and closes "
                                f"at {end}.",
                                f"{_cap(when)} we are open between {start} and {end}.",
                            )
                        )
                    )
            return " ".join(sentences)
        width = max(len(g) for g, _ in groups) + 4
        return "\n".join(f"{g.ljust(width)}{hours(h)}" for g, h in groups)

    title = rng.choice(
        (f"{name} – opening hours", f"Opening hours: {name}", name, f"When is {name} open?")
    )
    count = rng.randint(low, high)
    intro = [
        rng.choice(
            (
                f"These are the opening hours of {name} from {rng.choice(MONTHS)} on.",
                f"Welcome to {name} in {town}.",
                f"Plan your visit to {name}.",
            )
        )
    ]
    asks = []
    if rng.random() < 0.8:
        intro.append(count_text.format(n=count))
        asks.append(_ask(count_q.format(name=name), count_reply.format(n=count)))
    if rng.random() < 0.5:
        intro.append(f"Please arrive at least {rng.choice((15, 30, 45))} minutes before closing.")
    intro.append(_some(rng, _HOURS_NOTES, 2, 3))
    blocks = [_heading(title, heading), " ".join(intro)]
    for section_title, subject, week in sections:
        noun_here = noun if subject == name else subject.split(" at ")[0][4:]
        if len(sections) > 1 or rng.random() < 0.5:
            blocks.append(_heading(section_title, heading, 2))
        blocks.append(body(week, noun_here))
        asks += _hours_asks(rng, subject, week, style.clock, closed)
    if rng.random() < 0.5:
        if rng.random() < 0.5:
            blocks.append(f"On public holidays {name} is {closed.lower()}.")
            asks.append(
                _ask(
                    f"Is {name} open on public holidays?", closed.lower(), reply="No, it is closed"
                )
            )
        else:
            start, end = style.clock(rng.randrange(600, 721, 60)), style.clock(960)
            blocks.append(f"On public holidays we open from {start} to {end} only.")
            asks.append(
                _ask(
                    f"When is {name} open on public holidays?",
                    start,
                    end,
                    reply=f"{start} to {end}",
                )
            )
    if rng.random() < 0.4:
        phone = style.phone(rng)
        blocks.append(rng.choice((f"Questions? Call us on {phone}.", f"Phone: {phone}")))
        asks.append(_ask(f"What is the phone number of {name}?", phone))
    gaps = [
        _Gap(f"What is the phone number of {name}?", _PHONE_WORDS),
        _Gap(f"When is {name} open on public holidays?", ("holiday",)),
        _Gap(f"How much does a visit to {name} cost?", _PRICE_WORDS),
        _Gap(f"What is the email address of {name}?", ("@", "mail")),
    ]
    text = "\n\n".join(blocks)
    return _document(rng, "hours", _file_name(rng, title, _suffix(heading)), text, asks, gaps)


# --- timetables ---

_TRANSPORT = (
    ("ferry", "ferries", "crossing", ("Ferries", "Sea Lines", "Shipping"), "sails"),
    ("bus", "buses", "journey", ("Buses", "Coaches", "Transit"), "runs"),
    ("train", "trains", "journey", ("Rail", "Railway", "Trains"), "runs"),
    ("boat", "boats", "trip", ("Boat Tours", "Launches"), "sails"),
)


def _duration(minutes: int, kind: int) -> str:
    hours, rest = divmod(minutes, 60)
    if kind == 0 or hours == 0:
        return f"{minutes} min" if kind == 1 else f"{minutes} minutes"
    word = "hour" if hours == 1 else "hours"
    if rest == 0:
        return f"{hours} {word}"
    return f"{hours} {word} {rest} minutes" if kind == 2 else f"{hours} h {rest:02d} min"


def _timetable(rng: random.Random) -> TemplateDocument:
    vehicle, vehicles, trip, trades, verb = rng.choice(_TRANSPORT)
    style = _style(rng)
    places = _distinct(rng, _place, 5)
    layout = rng.randrange(5)
    pairs = [(places[0], places[1])]
    if rng.random() < 0.6:
        pairs.append((places[1], places[0]))
    pairs.append((places[0], places[2]))
    if layout != 2 and rng.random() < 0.4:
        pairs.append((places[2], places[3]))
    operators: dict[frozenset[str], str] = {}
    durations: dict[frozenset[str], int] = {}
    duration_kind = rng.randrange(4)
    routes = []
    for a, b in pairs:
        key = frozenset((a, b))
        operators.setdefault(key, _company(rng, rng.choice(trades)))
        durations.setdefault(key, rng.randrange(15, 150, 5))
        times, now = [], rng.randrange(330, 600, 5)
        for _ in range(rng.randint(3, 6)):
            if now > 1350:
                break
            times.append(now)
            now += rng.randrange(45, 181, 5)
        days: tuple[str, ...] = rng.choice(
            (
                ("daily",),
                ("every day",),
                ("Monday to Friday",),
                ("Monday to Saturday",),
                ("weekdays only",),
                (),
            )
        )
        if not days:
            days = tuple(DAYS[d] for d in sorted(rng.sample(range(7), rng.randint(2, 3))))
        routes.append((a, b, operators[key], times, durations[key], days))

    clock = style.clock
    arrow = rng.choice((" → ", " – ", " to ", " > "))
    title = rng.choice(
        (
            f"{_cap(vehicle)} timetable",
            f"{_cap(vehicle)} services from {places[0]}",
            f"Timetable: {places[0]} {vehicles}",
            f"{_cap(vehicle)} times",
        )
    )
    intro = rng.choice(
        (
            f"Timetable valid from {rng.randint(1, 28)} {rng.choice(MONTHS)}.",
            "Times may change at short notice, so please check before you travel.",
            f"All {vehicles} leave from the main stop in each town.",
        )
    )
    asks: list[_Ask] = []
    blocks: list[str] = []
    heading = rng.choice(("md", "setext")) if layout in (0, 1) else rng.choice(("rst", "plain"))
    for a, b, operator, times, minutes, days in routes:
        dur, deps = _duration(minutes, duration_kind), [clock(t) for t in times]
        days_text = _join(days)
        arrivals = [clock(t + minutes) for t in times]
        if layout == 0:
            blocks.append(_heading(f"{a}{arrow}{b}", "md" if heading == "md" else "setext", 2))
            blocks.append(
                "\n".join(
                    (
                        f"- Operator: {operator}",
                        f"- Runs: {days_text}",
                        f"- Departures: {', '.join(deps)} ({len(deps)} a day)",
                        f"- {_cap(trip)} time: {dur}",
                    )
                )
            )
        elif layout == 1:
            blocks.append(_heading(f"{a}{arrow}{b}", heading, 2))
            blocks.append(f"Operated by {operator}, {days_text}. The {trip} takes {dur}.")
            blocks.append(
                _md_table((f"Leaves {a}", f"Arrives {b}"), list(zip(deps, arrivals, strict=True)))
            )
        elif layout == 3:
            blocks.append(
                f"The {vehicle} from {a} to {b} is run by {operator} and {verb} {days_text}. "
                f"There are {len(deps)} departures: the first at {deps[0]}, then "
                f"{', '.join(deps[1:-1])} and the last at {deps[-1]}. "
                f"The {trip} takes {dur}."
            )
        elif layout == 4:
            blocks.append(_heading(f"{a} - {b}", heading, 2))
            blocks.append(
                "\n".join(
                    (
                        f"Operator - {operator}",
                        f"Days - {days_text}",
                        f"Departures - {'  '.join(deps)}",
                        f"Duration - {dur}",
                    )
                )
            )
        asks += [
            _ask(
                rng.choice(
                    (
                        f"When does the first {vehicle} from {a} to {b} leave?",
                        f"What time is the first {vehicle} from {a} to {b}?",
                    )
                ),
                deps[0],
            ),
            _ask(
                rng.choice(
                    (
                        f"When does the last {vehicle} from {a} to {b} leave?",
                        f"What time is the last {vehicle} from {a} to {b}?",
                    )
                ),
                deps[-1],
            ),
            _ask(f"How long does the {trip} from {a} to {b} take?", dur),
            _ask(
                rng.choice(
                    (
                        f"Which company runs the {vehicle} between {a} and {b}?",
                        f"Who operates the {vehicle} from {a} to {b}?",
                    )
                ),
                operator,
            ),
            _ask(f"On which days does the {vehicle} from {a} to {b} run?", *days),
        ]
        if layout in (1, 2) and len(times) > 1:
            i = rng.randrange(len(times))
            asks.append(
                _ask(f"When does the {deps[i]} {vehicle} from {a} arrive in {b}?", arrivals[i])
            )
        if layout in (0, 3):
            asks.append(_ask(f"How many {vehicles} leave {a} for {b} each day?", str(len(deps))))
    if layout == 2:
        header = rng.choice(
            (
                ("from", "to", "departure", "arrival", "operator", "days", "duration"),
                ("origin", "destination", "dep", "arr", "company", "runs", "time"),
            )
        )
        rows = [
            (a, b, clock(t), clock(t + m), op, _join(days), _duration(m, duration_kind))
            for a, b, op, times, m, days in routes
            for t in times
        ]
        text, name = _csv(header, rows), _file_name(rng, title, ".csv")
    else:
        text = "\n\n".join([_heading(title, heading), intro, *blocks])
        name = _file_name(rng, title, _suffix(heading))
    a = routes[0][0]
    gaps = [
        _Gap(f"When does the first {vehicle} from {a} to {places[4]} leave?", (places[4],)),
        _Gap(f"How much is a ticket for the {vehicle} from {a} to {routes[0][1]}?", _PRICE_WORDS),
        _Gap(f"Can you take a bicycle on the {vehicle} from {a}?", ("bicycle", "bike", "cycle")),
    ]
    return _document(rng, "timetable", name, text, asks, gaps)


# --- price lists ---

# label, phrase in questions, price low/high/step in cents, units, qualifiers, absence word
_PRICE_LISTS = (
    ("{town} {which} Car Park", "The car park has {n} spaces.",
     "How many spaces does {venue} have?", "{n} spaces", (80, 600), (
        ("Short stay", "short-stay parking", 150, 400, 50, ("per hour", "an hour"),
         ("cap", "evening"), "short"),
        ("Long stay", "long-stay parking", 600, 1500, 100, ("per day", "a day"), ("", "min_days"),
         "long"),
        ("Monthly permit", "a monthly permit", 4000, 12000, 500, ("per month",), ("",), "permit"),
        ("Lost ticket", "a lost ticket", 1500, 4000, 500, ("",), ("",), "lost"),
        ("Motorcycles", "motorcycle parking", 100, 300, 50, ("per day",), ("",), "motorcycle"),
        ("EV charging", "charging an electric car", 30, 70, 5, ("per kWh",), ("",), "charging"),
    )),
    ("{town} Camp Site", "There are {n} pitches on the site.",
     "How many pitches are there at {venue}?", "{n} pitches", (40, 250), (
        ("Tent pitch", "a tent pitch", 800, 2000, 100, ("per night",), ("weekend", "min_nights"),
         "tent"),
        ("Caravan pitch", "a caravan pitch", 1500, 3000, 100, ("per night",), ("weekend", ""),
         "caravan"),
        ("Adults", "an adult's stay", 400, 900, 50, ("per person per night",), ("",), "adult"),
        ("Children", "a child's stay", 200, 500, 50, ("per night",), ("kids",), "child"),
        ("Dogs", "bringing a dog", 200, 500, 50, ("per night",), ("",), "dog"),
        ("Electricity", "electricity", 300, 600, 50, ("per day",), ("",), "electric"),
        ("Hot shower", "a hot shower", 50, 150, 10, ("per token",), ("",), "shower"),
    )),
    ("{brand} Bike Hire", "Our fleet has {n} bikes.", "How many bikes does {venue} have?",
     "{n} bikes", (20, 150), (
        ("City bike", "a city bike", 300, 600, 50, ("per hour",), ("cap",), "city"),
        ("E-bike", "an e-bike", 600, 1200, 100, ("per hour",), ("cap", "min_hours"), "e-bike"),
        ("Cargo bike", "a cargo bike", 1500, 3500, 500, ("per day",), ("from", ""), "cargo"),
        ("Child seat", "a child seat", 300, 600, 100, ("per day",), ("",), "seat"),
        ("Helmet", "a helmet", 100, 300, 50, ("per day",), ("",), "helmet"),
        ("Tandem", "a tandem", 1000, 2500, 500, ("per half day",), ("",), "tandem"),
    )),
    ("{town} Museum", "The museum shows {n} objects.", "How many objects does {venue} show?",
     "{n} objects", (300, 4000), (
        ("Adults", "an adult ticket", 800, 1800, 50, ("",), ("",), "adult"),
        ("Children", "a child ticket", 300, 800, 50, ("",), ("kids",), "child"),
        ("Students", "a student ticket", 500, 1000, 50, ("",), ("",), "student"),
        ("Family ticket", "a family ticket", 2000, 4000, 100, ("",), ("",), "family"),
        ("Guided tour", "a guided tour", 300, 800, 50, ("per person",), ("min_people",), "tour"),
        ("Audio guide", "an audio guide", 200, 500, 50, ("",), ("",), "audio"),
    )),
    ("{brand} Fitness", "The club has {n} members.", "How many members does {venue} have?",
     "{n} members", (200, 2500), (
        ("Monthly membership", "a monthly membership", 2500, 6000, 500, ("per month",),
         ("min_months",), "membership"),
        ("Day pass", "a day pass", 800, 1500, 100, ("",), ("",), "day pass"),
        ("10-visit card", "a 10-visit card", 6000, 12000, 500, ("",), ("",), "10-visit"),
        ("Personal training", "personal training", 3000, 7000, 500, ("per session",), ("from", ""),
         "personal"),
        ("Sauna", "the sauna", 300, 800, 100, ("per visit",), ("",), "sauna"),
        ("Towel hire", "towel hire", 100, 300, 50, ("",), ("",), "towel"),
    )),
    ("{surname}'s Bakery", "We bake {n} kinds of bread every day.",
     "How many kinds of bread does {venue} bake?", "{n} kinds of bread", (6, 25), (
        ("Sourdough loaf", "a sourdough loaf", 350, 650, 10, ("",), ("",), "sourdough"),
        ("Croissant", "a croissant", 120, 250, 10, ("each",), ("",), "croissant"),
        ("Cinnamon bun", "a cinnamon bun", 150, 350, 10, ("each",), ("",), "cinnamon"),
        ("Birthday cake", "a birthday cake", 2500, 5000, 500, ("",), ("from",), "cake"),
        ("Coffee", "a coffee", 200, 400, 10, ("per cup",), ("",), "coffee"),
        ("Rye bread", "rye bread", 300, 600, 10, ("per loaf",), ("",), "rye"),
    )),
    ("{brand} Coworking", "The space has {n} desks.", "How many desks does {venue} have?",
     "{n} desks", (20, 120), (
        ("Hot desk", "a hot desk", 1500, 3000, 100, ("per day",), ("",), "hot desk"),
        ("Fixed desk", "a fixed desk", 15000, 35000, 1000, ("per month",), ("min_months",),
         "fixed"),
        ("Meeting room", "the meeting room", 1500, 4000, 500, ("per hour",), ("cap",), "meeting"),
        ("Locker", "a locker", 1000, 2500, 500, ("per month",), ("",), "locker"),
        ("Printing", "printing", 10, 30, 5, ("per page",), ("",), "print"),
    )),
)  # fmt: skip


_PRICE_NOTES = (
    "All prices include VAT.", "Prices may change without notice.",
    "Please ask at the desk if anything is unclear.", "Receipts are available on request.",
    "Special offers are announced on our website.",
)  # fmt: skip


def _price_segments(
    rng: random.Random,
    style: _Style,
    low: int,
    high: int,
    step: int,
    units: Sequence[str],
    qualifiers: Sequence[str],
) -> list[str]:
    """A price as the pieces a list writes it in: the amount with its unit, then a qualifier
    ("at most ... a day", "free for children under 6")."""
    base = rng.randrange(low, high + 1, step)
    unit = rng.choice(units)
    qualifier = rng.choice(qualifiers)
    main = f"{style.money(base)} {unit}".strip()
    if qualifier == "from":
        return [f"from {main}"]
    extra = {
        "cap": lambda: (
            f"at most {style.money(base * rng.choice((4, 5, 6, 8)))} "
            f"{rng.choice(('a day', 'per day'))}"
        ),
        "evening": lambda: f"free after {style.clock(rng.choice((1080, 1140, 1200)))}",
        "kids": lambda: f"free for children under {rng.randint(3, 6)}",
        "weekend": lambda: f"{style.money(base + step * rng.randint(1, 4))} at weekends",
        "min_nights": lambda: f"minimum {rng.randint(2, 4)} nights",
        "min_days": lambda: f"minimum {rng.randint(2, 3)} days",
        "min_hours": lambda: f"minimum {rng.randint(2, 3)} hours",
        "min_months": lambda: f"minimum {rng.choice((3, 6, 12))} months",
        "min_people": lambda: f"minimum {rng.randint(4, 10)} people",
    }.get(qualifier)
    return [main] if extra is None else [main, extra()]


def _prices(rng: random.Random) -> TemplateDocument:
    pattern, count_text, count_q, count_reply, (low, high), items = rng.choice(_PRICE_LISTS)
    style = _style(rng)
    venue = pattern.format(
        town=_place(rng),
        which=rng.choice(("Harbour", "Station", "Market")),
        brand=_brand(rng),
        surname=_surname(rng),
    )
    layout = rng.randrange(5)
    chosen = rng.sample(items, rng.randint(5, len(items)))
    priced = [(item, _price_segments(rng, style, *item[2:7])) for item in chosen]
    asks = [
        _ask(
            rng.choice(
                (
                    f"How much does {phrase} cost at {venue}?",
                    f"What is the price of {phrase} at {venue}?",
                    f"What do you pay for {phrase} at {venue}?",
                )
            ),
            *segments,
            reply=", ".join(segments),
        )
        for (_, phrase, *_), segments in priced
    ]
    listed = {item[1] for item, _ in priced}
    gaps = [
        _Gap(f"How much does {item[1]} cost at {venue}?", (item[-1],))
        for item in items
        if item[1] not in listed
    ]
    gaps.append(_Gap(f"Is there a discount for pensioners at {venue}?", ("pensioner", "senior")))
    notes = []
    if "Car Park" not in pattern and rng.random() < 0.6:
        group, pct = rng.randint(6, 15), rng.choice((10, 15, 20, 25))
        notes.append(f"Groups of {group} or more get {pct}% off.")
        asks += [
            _ask(f"How much discount do groups get at {venue}?", f"{pct}% off"),
            _ask(
                f"From how many people does the group discount at {venue} apply?",
                f"{group} or more",
            ),
        ]
    if rng.random() < 0.5:
        ways = rng.choice((("card", "cash"), ("cash", "bank transfer"), ("card", "mobile phone")))
        notes.append(f"You can pay by {ways[0]} or {ways[1]}.")
        asks.append(_ask(f"How can you pay at {venue}?", f"by {ways[0]} or {ways[1]}"))
    if rng.random() < 0.6:
        count = rng.randint(low, high)
        notes.append(count_text.format(n=count))
        asks.append(_ask(count_q.format(venue=venue), count_reply.format(n=count)))
    valid = f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(2023, 2026)}"
    notes.append(f"Prices valid from {valid}.")
    asks.append(_ask(f"Since when are the prices at {venue} valid?", valid))
    title = rng.choice((f"{venue} – prices", f"Price list: {venue}", f"{venue}: rates and fees"))
    heading = rng.choice(("md", "setext", "rst", "plain"))
    if layout == 0:
        bullet = rng.choice(("-", "*"))
        body = "\n".join(f"{bullet} {item[0]}: {', '.join(s)}" for item, s in priced)
    elif layout == 1:
        heading = "md"
        body = _md_table(
            ("Item", "Price", "Notes"),
            [(item[0], s[0], "; ".join(s[1:]) or "–") for item, s in priced],
        )
    elif layout == 2:
        sentences = [
            f"{_cap(item[1])} costs {s[0]}" + (f" ({s[1]})." if len(s) > 1 else ".")
            for item, s in priced
        ]
        body = " ".join(sentences)
    elif layout == 3:
        body = "\n".join(f"{item[0]} - {'; '.join(s)}" for item, s in priced)
    elif layout == 4:
        width = max(len(item[0]) for item, _ in priced) + 6
        body = "\n".join(
            f"{(item[0] + ' ').ljust(width, '.')} {', '.join(s)}" for item, s in priced
        )
    intro = rng.choice(
        (
            f"These are the current prices at {venue}.",
            f"Here is what things cost at {venue}.",
            f"{venue} – our rates.",
        )
    )
    notes.append(_some(rng, _PRICE_NOTES, 2, 3))
    text = "\n\n".join((_heading(title, heading), intro, body, " ".join(notes)))
    return _document(rng, "prices", _file_name(rng, title, _suffix(heading)), text, asks, gaps)


# --- house rules ---

# c camp site, f holiday flat, h hall of residence, p pool, g garden, y gym, l library, w coworking
_RULES = (
    _Entry("cfhgw", "Quiet hours", "Quiet hours are from {quiet_from} to {quiet_to}; please keep "
           "music and voices down.",
           (_Fact("When are the quiet hours at {place}?", "{quiet_from} to {quiet_to}",
                  ("{quiet_from}", "{quiet_to}")),), ("quiet",)),
    _Entry("cf", "Check-out", "Check-out is by {checkout} on the day you leave.",
           (_Fact("By what time do you have to check out of {place}?", "{checkout}"),),
           ("check-out", "check out")),
    _Entry("hpgyw", "Guests", "Each {member} may bring at most {guests} guests at a time.",
           (_Fact("How many guests may a {member} bring to {place}?", "at most {guests}"),),
           ("guest",)),
    _Entry("cply", "Children", "Children under {age} must be accompanied by an adult.",
           (_Fact("Up to what age must children be accompanied by an adult at {place}?",
                  "under {age}"),), ("children",)),
    _Entry("cf", "Dogs", "Dogs are welcome if kept on a lead; the charge is {dog_fee} per night.",
           (_Fact("How much does it cost to bring a dog to {place}?", "{dog_fee} per night"),),
           ("dog",)),
    _Entry("hplyw", "Dogs", "No dogs, except guide dogs.",
           (_Fact("Are dogs allowed at {place}?", "No, except guide dogs",
                  ("except guide dogs",)),), ("dog",)),
    _Entry("cfhpgylw", "Damage", "Report any damage or breakdowns to {warden} on {phone}.",
           (_Fact("Who should damage at {place} be reported to, and on which number?",
                  "{warden}, {phone}", ("{warden}", "{phone}")),
            _Fact("What number do you call to report damage at {place}?", "{phone}")),
           ("damage",)),
    _Entry("cfhg", "Rubbish", "Rubbish goes in the bins behind {landmark}; glass is collected "
           "every {glass_day}.",
           (_Fact("Where does rubbish go at {place}?", "in the bins behind {landmark}"),
            _Fact("On which day is glass collected at {place}?", "{glass_day}")),
           ("rubbish", "bins")),
    _Entry("cfhpgylw", "Smoking", "Smoking is only allowed {smoking_spot}.",
           (_Fact("Where is smoking allowed at {place}?", "{smoking_spot}"),), ("smok",)),
    _Entry("cfhlw", "Wi-Fi", "The Wi-Fi network is {ssid} and the password is {wifi_password}.",
           (_Fact("What is the Wi-Fi password at {place}?", "{wifi_password}"),
            _Fact("What are the Wi-Fi network name and password at {place}?",
                  "{ssid}, {wifi_password}", ("{ssid}", "{wifi_password}"))),
           ("wi-fi", "wifi", "password")),
    _Entry("cfyw", "Cancellations", "Bookings cancelled at least {cancel_days} days in advance are "
           "refunded in full; later cancellations are charged {cancel_pct}% of the price.",
           (_Fact("How many days in advance must you cancel a booking at {place} to get a full "
                  "refund?", "at least {cancel_days} days"),
            _Fact("How much is charged for a late cancellation at {place}?",
                  "{cancel_pct}% of the price")), ("cancel",)),
    _Entry("cfh", "Laundry", "The washing machines can be used from {wash_from} to {wash_to} and "
           "cost {wash_fee} per load.",
           (_Fact("How much does a load of washing cost at {place}?", "{wash_fee} per load"),
            _Fact("When can the washing machines at {place} be used?", "{wash_from} to {wash_to}",
                  ("{wash_from}", "{wash_to}"))), ("washing",)),
    _Entry("cgh", "Barbecues", "Barbecues are allowed only in the marked area near {landmark2}.",
           (_Fact("Where can you have a barbecue at {place}?",
                  "only in the marked area near {landmark2}"),), ("barbecue", "grill")),
    _Entry("chg", "Gate", "The main gate is locked at {gate_time}; late arrivals use the code "
           "{gate_code}.",
           (_Fact("What is the gate code for late arrivals at {place}?", "{gate_code}"),
            _Fact("What time is the main gate of {place} locked?", "{gate_time}")), ("gate",)),
    _Entry("fhyw", "Key cards", "A deposit of {deposit} is charged for each key card.",
           (_Fact("How much is the deposit for a key card at {place}?", "{deposit}"),),
           ("deposit",)),
    _Entry("y", "Machines", "When others are waiting, use each machine for at most "
           "{machine_minutes} minutes.",
           (_Fact("How long may you use a machine at {place} when others are waiting?",
                  "at most {machine_minutes} minutes"),), ("waiting",)),
    _Entry("pyw", "Lockers", "The lockers take a {coin} coin, which you get back.",
           (_Fact("Which coin do the lockers at {place} take?", "a {coin} coin"),), ("locker",)),
    _Entry("p", "Deep end", "The deep end is {depth} metres deep and only for swimmers who can "
           "swim {swim_length} metres.",
           (_Fact("How deep is the deep end at {place}?", "{depth} metres"),
            _Fact("How far must you be able to swim to use the deep end at {place}?",
                  "{swim_length} metres")), ("deep",)),
    _Entry("p", "Water slide", "The water slide is open only at weekends, from {slide_from} to "
           "{slide_to}.",
           (_Fact("When is the water slide at {place} open?",
                  "only at weekends, from {slide_from} to {slide_to}"),), ("slide",)),
    _Entry("g", "Water", "The water taps are turned off from {taps_off} to {taps_on}.",
           (_Fact("When are the water taps at {place} turned off?",
                  "from {taps_off} to {taps_on}"),), ("tap",)),
    _Entry("h", "Visitors", "Visitors must sign in at reception and leave by {visitors_until}.",
           (_Fact("By what time must visitors leave {place}?", "{visitors_until}"),),
           ("visitor",)),
    _Entry("l", "Loans", "Members may borrow up to {loans} items at a time for {loan_weeks} weeks.",
           (_Fact("How many items can you borrow at once from {place}?", "up to {loans} items"),
            _Fact("How many items can you borrow from {place}, and for how long?",
                  "up to {loans} items, {loan_weeks} weeks",
                  ("up to {loans} items", "{loan_weeks} weeks"))), ("borrow",)),
    _Entry("l", "Late returns", "Items returned late cost {overdue_fee} per day.",
           (_Fact("How much is the fine for returning items late to {place}?",
                  "{overdue_fee} per day"),), ("returned late",)),
    _Entry("l", "Silence", "The {silent_floor} floor is a silent study area.",
           (_Fact("Which floor of {place} is for silent study?", "{silent_floor} floor"),),
           ("silent",)),
    _Entry("w", "Meeting rooms", "Meeting rooms can be booked for at most {meeting_hours} hours a "
           "day.",
           (_Fact("How long can you book a meeting room at {place}?",
                  "at most {meeting_hours} hours a day"),), ("meeting",)),
)  # fmt: skip

_RULE_PLACES = (
    ("c", "{town} Camp Site", "guest", "Camp site rules"),
    ("f", "the holiday flat at {town} Road {n}", "guest", "House rules"),
    ("h", "{brand} Hall of Residence", "resident", "House rules"),
    ("p", "{town} Lido", "season-ticket holder", "Pool rules"),
    ("g", "{brand} Community Garden", "member", "Garden rules"),
    ("y", "{brand} Fitness Club", "member", "Gym rules"),
    ("l", "{town} Library", "member", "Library rules"),
    ("w", "{brand} Coworking", "member", "Rules of the space"),
)
_RULE_NOTES = (
    "Staff may ask anyone who ignores them to leave.",
    "Thank you for helping us keep the place clean and safe.",
    "The rules were last updated by the management board.",
    "Questions about the rules can be raised at the monthly meeting.",
)
_LANDMARKS = (
    "the reception building", "the car park", "the playground", "block C", "the tennis courts",
    "the old barn", "the bike shed", "the shop", "the boat ramp", "the east entrance",
)  # fmt: skip


def _rule_values(rng: random.Random, style: _Style) -> dict[str, str]:
    clock, money = style.clock, style.money
    landmark, landmark2 = rng.sample(_LANDMARKS, 2)
    return {
        "quiet_from": clock(rng.choice((1260, 1320, 1350, 1380))),
        "quiet_to": clock(rng.choice((390, 420, 480))),
        "checkout": clock(rng.choice((600, 630, 660, 720))),
        "guests": str(rng.randint(2, 5)),
        "age": str(rng.choice((8, 10, 12, 14, 16))),
        "dog_fee": money(rng.randrange(200, 801, 50)),
        "warden": _person(rng),
        "phone": style.phone(rng),
        "landmark": landmark,
        "landmark2": landmark2,
        "glass_day": rng.choice(DAYS[:6]),
        "smoking_spot": rng.choice(
            (
                "at the far end of the car park",
                "outside the main gate",
                "on the terrace behind the kiosk",
                "in the marked area by the bike racks",
            )
        ),
        "ssid": f"{_brand(rng)}-{rng.choice(('Guest', 'Net', 'WiFi', 'Free'))}",
        "wifi_password": f"{rng.choice(_STEMS).lower()}{rng.randint(100, 9999)}",
        "cancel_days": str(rng.choice((7, 14, 21, 30))),
        "cancel_pct": str(rng.choice((25, 50, 80, 100))),
        "wash_from": clock(rng.choice((420, 480, 540))),
        "wash_to": clock(rng.choice((1200, 1260, 1320))),
        "wash_fee": money(rng.randrange(150, 501, 50)),
        "gate_time": clock(rng.choice((1320, 1380, 1410))),
        "gate_code": str(rng.randint(1000, 9999)),
        "deposit": money(rng.randrange(1000, 5001, 500)),
        "machine_minutes": str(rng.choice((15, 20, 30))),
        "coin": money(rng.choice((50, 100, 200))),
        "depth": rng.choice(("3.5", "4", "3.8", "5")),
        "swim_length": str(rng.choice((25, 50, 100, 200))),
        "slide_from": clock(rng.choice((600, 660, 720))),
        "slide_to": clock(rng.choice((1020, 1080))),
        "taps_off": f"{rng.randint(1, 15)} {rng.choice(MONTHS[9:])}",
        "taps_on": f"{rng.randint(1, 15)} {rng.choice(MONTHS[2:4])}",
        "visitors_until": clock(rng.choice((1320, 1380, 1410))),
        "loans": str(rng.randint(5, 20)),
        "loan_weeks": str(rng.choice((2, 3, 4, 6))),
        "overdue_fee": money(rng.randrange(10, 101, 10)),
        "silent_floor": rng.choice(("second", "third", "top", "first")),
        "meeting_hours": str(rng.randint(2, 4)),
    }


def _rules(rng: random.Random) -> TemplateDocument:
    tag, pattern, member, heading_text = rng.choice(_RULE_PLACES)
    style = _style(rng)
    place = pattern.format(town=_place(rng), brand=_brand(rng), n=rng.randint(2, 90))
    values = _rule_values(rng, style) | {"place": place, "member": member}
    chosen, asks, gaps = _entries(rng, _RULES, tag, values, rng.randint(6, 10))
    texts = [(e.label, e.text.format(**values)) for e in chosen]
    layout = rng.randrange(5)
    heading = rng.choice(("md", "setext", "rst", "plain"))
    title = rng.choice(
        (
            f"{heading_text} – {_cap(place)}",
            f"{_cap(place)}: {heading_text.lower()}",
            f"{heading_text} for {place}",
        )
    )
    intro = rng.choice(
        (
            f"Welcome to {place}. Please read these rules and follow them.",
            f"To make {place} pleasant for everyone, we ask you to keep to these rules.",
            f"These rules apply to everyone at {place}.",
        )
    )
    intro += " " + _some(rng, _RULE_NOTES, 1, 2)
    if layout == 0:
        body = "\n".join(f"{i}. {t}" for i, (_, t) in enumerate(texts, 1))
    elif layout == 1:
        heading = "md"
        body = "\n".join(f"- **{label}:** {t}" for label, t in texts)
    elif layout == 2:
        middle = len(texts) // 2
        body = (
            " ".join(t for _, t in texts[:middle]) + "\n\n" + " ".join(t for _, t in texts[middle:])
        )
    elif layout == 3:
        heading = rng.choice(("setext", "rst"))
        middle = len(texts) // 2
        body = "\n\n".join(
            (
                _heading("General", heading, 2),
                "\n".join(f"* {t}" for _, t in texts[:middle]),
                _heading("Facilities and contacts", heading, 2),
                "\n".join(f"* {t}" for _, t in texts[middle:]),
            )
        )
    else:
        body = "\n\n".join(f"§ {i} {label}\n{t}" for i, (label, t) in enumerate(texts, 1))
    closing = rng.choice(
        (
            "Thank you, and enjoy your stay.",
            "Breaking these rules may lead to exclusion.",
            "The management",
        )
    )
    text = "\n\n".join((_heading(title, heading), intro, body, closing))
    return _document(rng, "rules", _file_name(rng, title, _suffix(heading)), text, asks, gaps)


# --- FAQs ---

# s: course or club that teaches, a: app or online service
_FAQ = (
    _Entry("s", "How do I sign up?", "Fill in the form on our website or come to the office at "
           "{address}. Registration for the {season} term closes on {close_date}.",
           (_Fact("When does registration for the {season} term at {org} close?", "{close_date}"),
            _Fact("Where is the office of {org}?", "{address}")), ("registration",)),
    _Entry("s", "Can I cancel my place?", "Yes. If you cancel at least {cancel_days} days before "
           "the start, we refund {refund}% of the fee.",
           (_Fact("How many days before the start must you cancel at {org} to get money back?",
                  "at least {cancel_days} days"),
            _Fact("How much of the fee does {org} refund if you cancel in time?", "{refund}%")),
           ("cancel",)),
    _Entry("s", "How much does it cost?", "A term of {lessons} lessons costs {fee}. Members pay "
           "{member_fee}, and siblings get {sibling}% off.",
           (_Fact("How much does a term cost at {org}?", "{fee}"),
            _Fact("How much do non-members and members pay for a term at {org}?",
                  "{fee} and {member_fee}", ("{fee}", "{member_fee}")),
            _Fact("How many lessons are there in a term at {org}?", "{lessons} lessons"),
            _Fact("What discount do siblings get at {org}?", "{sibling}% off")), ("term of",)),
    _Entry("s", "Who are the teachers?", "The beginners' group is taught by {teacher1}. The "
           "advanced group is taught by {teacher2}, who has been with us since {since}.",
           (_Fact("Who teaches the advanced group at {org}, and since which year?",
                  "{teacher2}, {since}", ("{teacher2}", "{since}")),
            _Fact("Who teaches the beginners' group at {org}?", "{teacher1}")), ("taught",)),
    _Entry("s", "When are the lessons?", "Lessons are on {day1} and {day2} from {start} to {end} "
           "in room {room}.",
           (_Fact("On which days are the lessons at {org}?", "{day1} and {day2}",
                  ("{day1}", "{day2}")),
            _Fact("What time do lessons at {org} start?", "{start}"),
            _Fact("Which room are the lessons at {org} in?", "room {room}")), ("lessons are on",)),
    _Entry("s", "Is there parking?", "There are {spaces} free spaces behind the building; street "
           "parking costs {parking_fee} per hour.",
           (_Fact("How many free parking spaces are there at {org}?", "{spaces}"),
            _Fact("How much does street parking near {org} cost?", "{parking_fee} per hour")),
           ("parking",)),
    _Entry("s", "How can I reach you?", "Email {email} or call {phone} on weekdays between "
           "{call_from} and {call_to}.",
           (_Fact("What is the email address of {org}?", "{email}"),
            _Fact("When can you phone {org}?", "on weekdays between {call_from} and {call_to}"),
            _Fact("What is the phone number of {org}?", "{phone}")), ("@",)),
    _Entry("s", "What should I bring?", "Please bring {item1} and {item2}. Everything else is "
           "provided.",
           (_Fact("What should you bring to {org}?", "{item1} and {item2}",
                  ("{item1}", "{item2}")),), ("bring",)),
    _Entry("s", "Is there an age limit?", "Participants must be at least {min_age} years old.",
           (_Fact("What is the minimum age at {org}?", "at least {min_age} years old"),),
           ("years old",)),
    _Entry("s", "Do I get a certificate?", "Yes. After {hours} hours of attendance you receive a "
           "certificate signed by {signer}.",
           (_Fact("How many hours must you attend at {org} to get a certificate?", "{hours} hours"),
            _Fact("Who signs the certificates at {org}?", "{signer}")), ("certificate",)),
    _Entry("s", "What if I miss a lesson?", "You can catch up in another group within "
           "{catch_up} weeks; just tell your teacher.",
           (_Fact("How long do you have to catch up a missed lesson at {org}?",
                  "within {catch_up} weeks"),), ("catch up",)),
    _Entry("a", "Is there a free trial?", "Yes, every new account gets a free trial of {trial} "
           "days. No card is needed.",
           (_Fact("How long is the free trial of {org}?", "{trial} days"),), ("trial",)),
    _Entry("a", "What plans are there?", "Basic costs {basic} per month for up to {basic_users} "
           "users; Team costs {team} per user per month.",
           (_Fact("How much does the Basic plan of {org} cost?", "{basic} per month"),
            _Fact("How many users does the Basic plan of {org} allow?",
                  "up to {basic_users} users"),
            _Fact("What does the Team plan of {org} cost?", "{team} per user per month")),
           ("basic",)),
    _Entry("a", "Can I export my data?", "Yes. Under Settings > Export you can download "
           "everything as {format1} or {format2}.",
           (_Fact("In which formats can you export data from {org}?", "{format1} or {format2}",
                  ("{format1}", "{format2}")),), ("export",)),
    _Entry("a", "What happens when I close my account?", "Your data is kept for {keep_days} days "
           "and then deleted for good.",
           (_Fact("How long does {org} keep your data after you close your account?",
                  "{keep_days} days"),), ("deleted",)),
    _Entry("a", "I forgot my password.", "Use the link on the sign-in page; the reset link is "
           "valid for {reset_hours} hours.",
           (_Fact("How long is the password reset link of {org} valid?", "{reset_hours} hours"),),
           ("reset",)),
    _Entry("a", "How do I contact support?", "Write to {email}; we answer within {answer_hours} "
           "working hours.",
           (_Fact("What is the support email address of {org}?", "{email}"),
            _Fact("How quickly does {org} support answer?", "within {answer_hours} working hours")),
           ("@",)),
    _Entry("a", "Which devices are supported?", "{org} runs in any modern browser and has apps "
           "for {platform1} and {platform2}.",
           (_Fact("For which systems does {org} have apps?", "{platform1} and {platform2}",
                  ("{platform1}", "{platform2}")),), ("apps for",)),
)  # fmt: skip

_FAQ_ORGS = (
    ("s", "{town} Language School"), ("s", "{town} Swim School"), ("s", "{brand} Pottery Studio"),
    ("s", "{town} Sailing Club"), ("s", "{town} Music School"), ("s", "{brand} Coding Club"),
    ("a", "{brand}"), ("a", "{brand} Cloud"), ("a", "{brand} Notes"),
)  # fmt: skip
_THINGS = (
    "a water bottle",
    "indoor shoes",
    "a notebook",
    "a packed lunch",
    "a towel",
    "photo ID",
    "a pencil case",
    "comfortable clothes",
)


def _faq_values(rng: random.Random, style: _Style, org: str) -> dict[str, str]:
    clock, money = style.clock, style.money
    day1, day2 = sorted(rng.sample(range(6), 2))
    start = rng.randrange(960, 1141, 30)
    item1, item2 = rng.sample(_THINGS, 2)
    f1, f2 = rng.sample(("CSV", "JSON", "PDF", "Markdown", "Excel"), 2)
    p1, p2 = rng.sample(("Android", "iOS", "Windows", "macOS", "Linux"), 2)
    return {
        "org": org,
        "address": f"{rng.randint(1, 120)} {_place(rng)} {rng.choice(('Street', 'Road', 'Lane'))}",
        "season": rng.choice(("spring", "summer", "autumn", "winter")),
        "close_date": f"{rng.randint(1, 28)} {rng.choice(MONTHS)}",
        "cancel_days": str(rng.choice((7, 10, 14))),
        "refund": str(rng.choice((50, 75, 80, 100))),
        "lessons": str(rng.randint(8, 14)),
        "fee": money(rng.randrange(8000, 25001, 500)),
        "member_fee": money(rng.randrange(5000, 7501, 500)),
        "sibling": str(rng.choice((10, 15, 20))),
        "teacher1": _person(rng),
        "teacher2": _person(rng),
        "since": str(rng.randint(1998, 2022)),
        "day1": DAYS[day1],
        "day2": DAYS[day2],
        "start": clock(start),
        "end": clock(start + rng.choice((60, 90, 120))),
        "room": f"{rng.randint(1, 3)}{rng.randint(1, 20):02d}",
        "spaces": str(rng.randint(4, 30)),
        "parking_fee": money(rng.randrange(100, 401, 50)),
        "email": f"{rng.choice(('info', 'hello', 'office', 'support'))}@{_domain(rng, org)}",
        "phone": style.phone(rng),
        "call_from": clock(rng.choice((480, 540, 600))),
        "call_to": clock(rng.choice((960, 1020, 1080))),
        "item1": item1,
        "item2": item2,
        "min_age": str(rng.randint(6, 18)),
        "hours": str(rng.choice((20, 24, 30, 40))),
        "signer": _person(rng),
        "catch_up": str(rng.randint(2, 4)),
        "trial": str(rng.choice((7, 14, 30))),
        "basic": money(rng.randrange(400, 1501, 100)),
        "basic_users": str(rng.choice((3, 5, 10))),
        "team": money(rng.randrange(500, 2001, 100)),
        "format1": f1,
        "format2": f2,
        "keep_days": str(rng.choice((30, 60, 90))),
        "reset_hours": str(rng.choice((1, 2, 24, 48))),
        "answer_hours": str(rng.choice((4, 8, 24))),
        "platform1": p1,
        "platform2": p2,
    }


def _faq(rng: random.Random) -> TemplateDocument:
    tag, pattern = rng.choice(_FAQ_ORGS)
    style = _style(rng)
    org = pattern.format(town=_place(rng), brand=_brand(rng))
    values = _faq_values(rng, style, org)
    chosen, asks, gaps = _entries(rng, _FAQ, tag, values, rng.randint(5, 7))
    pairs = [(e.label, e.text.format(**values)) for e in chosen]
    layout = rng.randrange(5)
    heading = "md" if layout in (1, 2) else rng.choice(("md", "setext", "rst", "plain"))
    if layout == 0:
        body = "\n\n".join(f"Q: {q}\nA: {a}" for q, a in pairs)
    elif layout == 1:
        body = "\n\n".join(f"### {q}\n\n{a}" for q, a in pairs)
    elif layout == 2:
        body = "\n\n".join(f"**{q}**\n{a}" for q, a in pairs)
    elif layout == 3:
        body = "\n\n".join(f"{i}. {q}\n   {a}" for i, (q, a) in enumerate(pairs, 1))
    else:
        heading = rng.choice(("setext", "rst"))
        body = "\n\n".join(f"{_heading(q, heading, 2)}\n\n{a}" for q, a in pairs)
    title = rng.choice(
        (f"{org} – frequently asked questions", f"FAQ: {org}", f"Questions and answers about {org}")
    )
    intro = rng.choice(
        (
            f"Answers to the questions we hear most often at {org}.",
            "Can't find your question here? Ask us at any time.",
            f"Everything you need to know before you start with {org}.",
        )
    )
    text = "\n\n".join((_heading(title, heading), intro, body))
    return _document(rng, "faq", _file_name(rng, title, _suffix(heading)), text, asks, gaps)


# --- manuals ---

# device, model prefix, codes (meaning, what to do), specs (label, question, value, low, high,
# step), procedures (text, question, reply, values)
_DEVICES = (
    ("dishwasher", "DW", (
        ("Water inlet blocked", "Check that the tap is open and the hose is not kinked"),
        ("Drain pump blocked", "Clean the filter at the bottom of the tub"),
        ("Water too hot", "Switch off for 30 minutes, then restart"),
        ("Door not closed", "Close the door until it clicks"),
        ("Leak detected", "Turn off the water and call customer service"),
        ("Heater fault", "Call customer service"),
        ("Salt level low", "Refill the salt container"),
    ), (
        ("Power", "What is the power rating of the {model}?", "{} W", 1700, 2400, 100),
        ("Noise", "How loud is the {model}?", "{} dB", 39, 49, 1),
        ("Capacity", "How many place settings does the {model} hold?", "{} place settings",
         9, 15, 1),
        ("Water use", "How much water does the {model} use per cycle?", "{} litres per cycle",
         7, 12, 1),
    ), (("To reset the {model}, hold the Start button for {n} seconds.",
         "How long do you hold the Start button to reset the {model}?", "{n} seconds", (3, 5, 10)),
        ("Clean the filter every {n} weeks.",
         "How often should the filter of the {model} be cleaned?",
         "every {n} weeks", (2, 4, 6)))),
    ("washing machine", "WM", (
        ("Door lock fault", "Close the door firmly and restart the programme"),
        ("No water supply", "Open the tap and check the inlet hose"),
        ("Drain blocked", "Clean the drain pump filter behind the front flap"),
        ("Unbalanced load", "Spread the laundry evenly in the drum"),
        ("Motor fault", "Call customer service"),
        ("Too much foam", "Use less detergent and run a rinse programme"),
    ), (
        ("Load", "How much laundry does the {model} take?", "{} kg", 6, 10, 1),
        ("Spin speed", "What is the maximum spin speed of the {model}?", "{} rpm", 1000, 1600, 200),
        ("Energy", "How much energy does the {model} use per cycle?", "{} kWh", 1, 2, 1),
    ), (("Run an empty {n}-degree cycle once a month to keep the drum clean.",
         "At what temperature should the empty cleaning cycle of the {model} run?", "{n}-degree",
         (60, 90)),)),
    ("router", "RT", (
        ("No internet signal on the WAN port", "Check the cable to the modem"),
        ("Overheating", "Place the router in a ventilated spot"),
        ("Firmware update failed", "Restart the router and try the update again"),
        ("Wrong PPPoE password", "Enter the password from your provider again"),
        ("DHCP pool full", "Raise the number of addresses in the LAN settings"),
        ("Wi-Fi radio off", "Press the Wi-Fi button on the side"),
    ), (
        ("LAN ports", "How many LAN ports does the {model} have?", "{} LAN ports", 2, 8, 1),
        ("Range", "What is the indoor range of the {model}?", "{} metres", 20, 60, 5),
        ("Power supply", "What power supply does the {model} need?", "{} V DC", 9, 12, 3),
    ), (("To restore the factory settings, hold the Reset button for {n} seconds.",
         "How long do you hold the Reset button to restore the factory settings of the {model}?",
         "{n} seconds", (5, 10, 15, 30)),
        ("The default admin page is at 192.168.{n}.1.",
         "What is the address of the admin page of the {model}?", "192.168.{n}.1", (0, 1, 2, 8)))),
    ("printer", "PR", (
        ("Paper jam", "Open the rear cover and remove the paper"),
        ("Toner low", "Order a new toner cartridge"),
        ("Cover open", "Close the front cover"),
        ("Paper tray empty", "Load paper into the tray"),
        ("Drum end of life", "Replace the drum unit"),
        ("Wrong paper size", "Check the paper size set in the driver"),
    ), (
        ("Speed", "How many pages per minute does the {model} print?", "{} pages per minute",
         15, 40, 1),
        ("Paper tray", "How many sheets does the paper tray of the {model} hold?", "{} sheets",
         100, 500, 50),
        ("Weight", "How much does the {model} weigh?", "{} kg", 6, 15, 1),
    ), (("Print a test page by holding the Go button for {n} seconds.",
         "How do you print a test page on the {model}?", "holding the Go button for {n} seconds",
         (2, 3, 5)),)),
    ("coffee machine", "CM", (
        ("Water tank empty", "Fill the water tank"),
        ("Grounds container full", "Empty the grounds container"),
        ("Descaling needed", "Run the descaling programme"),
        ("Brewing unit missing", "Insert the brewing unit until it clicks"),
        ("Bean container empty", "Fill the bean container"),
        ("Temperature sensor fault", "Unplug the machine and call customer service"),
    ), (
        ("Water tank", "How much water does the tank of the {model} hold?", "{} ml",
         1200, 2000, 100),
        ("Pump pressure", "What is the pump pressure of the {model}?", "{} bar", 9, 19, 1),
        ("Power", "What is the power rating of the {model}?", "{} W", 1200, 1600, 50),
    ), (("Descale the {model} every {n} cups, or when the display asks for it.",
         "How often should the {model} be descaled?", "every {n} cups", (200, 300, 500)),)),
    ("heat pump", "HP", (
        ("High pressure in the refrigerant circuit", "Check that the outdoor unit is not blocked"),
        ("Outdoor sensor fault", "Check the sensor cable and call your installer"),
        ("Flow too low", "Bleed the radiators and check the water pressure"),
        ("Defrost cycle running", "No action needed; wait until it ends"),
        ("Communication error", "Switch the indoor unit off and on again"),
    ), (
        ("Heating output", "What is the heating output of the {model}?", "{} kW", 5, 16, 1),
        ("Noise", "How loud is the outdoor unit of the {model}?", "{} dB", 45, 60, 1),
        ("Refrigerant", "Which refrigerant does the {model} use?", "R{}", 32, 32, 1),
    ), (("Keep at least {n} cm of free space around the outdoor unit.",
         "How much free space does the outdoor unit of the {model} need?", "{n} cm",
         (30, 50, 100)),)),
)  # fmt: skip


_SPEC_NOUNS = {
    "Power": "power rating", "Noise": "noise level", "Capacity": "capacity",
    "Water use": "water use", "Load": "load capacity", "Spin speed": "spin speed",
    "Energy": "energy use", "LAN ports": "number of LAN ports", "Range": "range",
    "Power supply": "power supply", "Speed": "print speed", "Paper tray": "paper tray capacity",
    "Weight": "weight", "Water tank": "water tank size", "Pump pressure": "pump pressure",
    "Heating output": "heating output", "Refrigerant": "refrigerant",
}  # fmt: skip


def _manual(rng: random.Random) -> TemplateDocument:
    device, prefix, codes, specs, procedures = rng.choice(_DEVICES)
    brand = _brand(rng)
    model = f"{brand} {prefix}-{rng.randint(1, 9) * 100 + rng.choice((0, 10, 50))}"
    code_format = rng.choice(("E{}", "E{:02d}", "F{}", "Err {}", "E-{}"))
    numbers = rng.sample(range(1, 40), len(codes) + 1)
    listed = [(code_format.format(n), m, a) for n, (m, a) in zip(numbers, codes, strict=False)]
    listed = rng.sample(listed, rng.randint(4, len(codes)))
    missing_code = code_format.format(numbers[-1])
    spec_values = [
        (label, q, unit.format(rng.randrange(low, high + 1, step)))
        for label, q, unit, low, high, step in rng.sample(specs, rng.randint(2, len(specs)))
    ]
    layout = rng.randrange(5)
    heading = ("md", "md", rng.choice(("setext", "rst")), "plain", rng.choice(("md", "plain")))[
        layout
    ]
    lower = layout == 2
    rows = [(c, m[0].lower() + m[1:] if lower else m, a) for c, m, a in listed]
    if layout == 0:
        codes_text = _md_table(("Code", "Meaning", "What to do"), rows)
    elif layout == 1:
        codes_text = "\n".join(f"- **{c}** – {m}. {a}." for c, m, a in rows)
    elif layout == 2:
        codes_text = "\n\n".join(
            f"If the display shows {c}, this means: {m}. {a}." for c, m, a in rows
        )
    elif layout == 3:
        codes_text = _aligned(("Code", "Meaning", "Remedy"), rows)
    else:
        codes_text = "\n".join(f"{c} - {m}. {a}." for c, m, a in rows)
    if layout in (0, 1):
        specs_text = "\n".join(f"- {label}: {value}" for label, _, value in spec_values)
    elif layout == 3:
        specs_text = "\n".join(f"{label:.<24} {value}" for label, _, value in spec_values)
    else:
        specs_text = " ".join(f"{label}: {value}." for label, _, value in spec_values)
    procedure_texts = []
    asks = []
    for text_t, question, reply, choices in rng.sample(procedures, len(procedures)):
        n = rng.choice(choices)
        procedure_texts.append(text_t.format(model=model, n=n))
        asks.append(_ask(question.format(model=model), reply.format(n=n)))
    for code, meaning, action in rng.sample(rows, 3):
        asks.append(
            rng.choice(
                (
                    _ask(f"What does error {code} mean on the {model}?", meaning),
                    _ask(f"What does the code {code} on my {device} mean?", meaning),
                )
            )
        )
        asks.append(_ask(f"What should you do when the {model} shows {code}?", action))
        asks.append(_ask(f"Which error code does the {model} show for {meaning.lower()}?", code))
    for _, question, value in spec_values:
        asks.append(_ask(question.format(model=model), value))
    (la, _, va), (lb, _, vb) = spec_values[:2]
    asks.append(
        _ask(
            f"What are the {_SPEC_NOUNS[la]} and the {_SPEC_NOUNS[lb]} of the {model}?",
            va,
            vb,
            reply=f"{va}, {vb}",
        )
    )
    title = rng.choice(
        (
            f"{model} {device} – user manual",
            f"{model}: troubleshooting",
            f"{_cap(device)} {model} quick guide",
        )
    )
    intro = rng.choice(
        (
            f"Thank you for choosing the {model}. Keep this guide near the {device}.",
            f"This guide covers the {model} {device}. Read it before first use.",
            f"Excerpt from the manual of the {brand} {device}.",
        )
    )
    blocks = [
        _heading(title, heading),
        intro,
        _heading("Technical data", heading, 2),
        specs_text,
        _heading("Error codes", heading, 2),
        codes_text,
        _heading("Care and maintenance", heading, 2),
        " ".join(procedure_texts),
    ]
    gaps = [_Gap(f"What does error {missing_code} mean on the {model}?", (missing_code,))]
    gaps += [
        _Gap(q.format(model=model), (label,))
        for label, q, *_ in specs
        if label not in [s[0] for s in spec_values]
    ]
    gaps.append(_Gap(f"How long is the warranty on the {model}?", ("warrant", "guarantee")))
    text = "\n\n".join(blocks)
    return _document(rng, "manual", _file_name(rng, title, _suffix(heading)), text, asks, gaps)


# --- tables and CSV files ---

Maker = Callable[[random.Random, _Style], str]


@dataclass(frozen=True)
class _Column:
    header: str
    make: Maker
    questions: tuple[str, ...]
    reverse: str = ""  # a question from the value back to the row's key, for unique values


@dataclass(frozen=True)
class _Table:
    title: str
    keys: Callable[[random.Random, int], list[str]]
    key_header: str
    columns: tuple[_Column, ...]
    pairs: tuple[tuple[str, str, str], ...]  # two columns asked together


def _pool(*names: str) -> Callable[[random.Random, int], list[str]]:
    return lambda rng, n: rng.sample(names, min(n + 1, len(names)))


_TABLES = (
    _Table("Courses {term}", _pool("Pottery for beginners", "Spanish A1", "Life drawing",
           "Yoga for all", "Watercolour", "Beginner guitar", "Python basics", "First aid",
           "Photography", "Italian cooking", "Creative writing", "Chess", "Woodwork",
           "Bread baking", "French B1"), "Course", (
        _Column("Teacher", lambda r, s: _person(r), ("Who teaches {key}?",
                "Who is the teacher of {key}?")),
        _Column("Day", lambda r, s: r.choice(DAYS[:6]), ("On which day is {key}?",)),
        _Column("Starts", lambda r, s: s.clock(r.randrange(540, 1201, 15)),
                ("What time does {key} start?",)),
        _Column("Room", lambda r, s: f"Room {r.randint(1, 4)}.{r.randint(1, 20):02d}",
                ("Which room is {key} in?", "Where does {key} take place?")),
        _Column("Places", lambda r, s: str(r.randint(6, 20)),
                ("How many places does {key} have?",)),
        _Column("Fee", lambda r, s: s.money(r.randrange(3000, 15001, 500)),
                ("How much does {key} cost?",)),
    ), (("Teacher", "Day", "Who teaches {key}, and on which day?"),
        ("Day", "Starts", "When does {key} take place?"))),
    _Table("{brand} Rentals – fleet", _pool("Compact hatchback", "Family estate", "Seven-seat van",
           "Small electric car", "Pickup truck", "Minibus", "Convertible", "Cargo van",
           "Estate with tow bar", "City scooter", "Camper van", "Luxury saloon"), "Vehicle", (
        _Column("Seats", lambda r, s: str(r.randint(2, 9)),
                ("How many seats does the {key} have?",)),
        _Column("Price per day", lambda r, s: s.money(r.randrange(3500, 15001, 500)),
                ("How much does the {key} cost per day?", "What is the daily rate for the {key}?")),
        _Column("Fuel", lambda r, s: r.choice(("petrol", "diesel", "electric", "hybrid")),
                ("What fuel does the {key} use?",)),
        _Column("Deposit", lambda r, s: s.money(r.randrange(20000, 100001, 10000)),
                ("How much is the deposit for the {key}?",)),
    ), (("Price per day", "Deposit", "What are the daily price and the deposit for the {key}?"),)),
    _Table("Staff list – {brand}", lambda r, n: _distinct(r, _person, n + 1), "Name", (
        _Column("Role", lambda r, s: r.choice(("Head of finance", "Receptionist", "IT support",
                "Office manager", "Caretaker", "HR adviser", "Sales lead", "Accountant")),
                ("What is {key}'s role?", "What does {key} do?"), "Who is the {value}?"),
        _Column("Extension", lambda r, s: str(r.randint(200, 499)),
                ("What is {key}'s phone extension?",)),
        _Column("Office", lambda r, s: f"{r.randint(1, 5)}.{r.randint(1, 30):02d}",
                ("Which office is {key} in?",)),
        _Column("Works", lambda r, s: r.choice(("Mon–Fri", "Mon–Wed", "Tue–Thu", "Wed–Fri")),
                ("On which days does {key} work?",)),
    ), (("Role", "Office", "What is {key}'s role, and which office is theirs?"),)),
    _Table("Room booking – {brand} Centre", _pool("Oak Room", "Birch Room", "Harbour View",
           "Attic", "Studio 1", "Studio 2", "Boardroom", "Garden Room", "Lecture Hall",
           "Music Room", "Kitchen Studio", "Quiet Room"), "Room", (
        _Column("Capacity", lambda r, s: str(r.randint(4, 120)),
                ("How many people fit in the {key}?",)),
        _Column("Floor", lambda r, s: r.choice(("ground", "1st", "2nd", "3rd", "basement")),
                ("On which floor is the {key}?",)),
        _Column("Equipment", lambda r, s: r.choice(("projector", "whiteboard", "video screen",
                "piano", "flip chart")), ("What equipment does the {key} have?",)),
        _Column("Per hour", lambda r, s: s.money(r.randrange(1000, 8001, 500)),
                ("How much does the {key} cost per hour?",)),
    ), (("Capacity", "Floor", "How many people fit in the {key}, and on which floor is it?"),)),
    _Table("Parking spaces {term}", lambda r, n: [f"Space {i}" for i in r.sample(range(1, 40),
           n + 1)], "Space", (
        _Column("Tenant", lambda r, s: _person(r), ("Who rents {key}?",)),
        _Column("Since", lambda r, s: str(r.randint(2005, 2024)),
                ("Since which year has {key} been rented?",)),
        _Column("Plate", lambda r, s: f"{r.choice(_STEMS).upper()[:2]}-{r.randint(100, 9999)}",
                ("Which number plate is registered for {key}?",),
                "Which space belongs to the car with number plate {value}?"),
        _Column("Monthly fee", lambda r, s: s.money(r.randrange(3000, 12001, 500)),
                ("How much is the monthly fee for {key}?",)),
    ), (("Tenant", "Since", "Who rents {key}, and since when?"),)),
    _Table("Stock list – {brand} office", _pool("A4 printer paper", "Staples", "Whiteboard markers",
           "Sticky notes", "C5 envelopes", "Toner cartridges", "AA batteries", "Coffee filters",
           "Paper towels", "Hand soap", "Printer labels", "Bin bags"),
           "Item", (
        _Column("In stock", lambda r, s: str(r.randint(0, 80)),
                ("How many {key} are in stock?", "How many {key} are there?")),
        _Column("Shelf", lambda r, s: f"{r.choice('ABCDEF')}{r.randint(1, 9)}",
                ("On which shelf are the {key}?",)),
        _Column("Supplier", lambda r, s: _company(r, "Supplies"), ("Who supplies the {key}?",)),
        _Column("Reorder at", lambda r, s: str(r.randint(5, 20)),
                ("At what stock level are {key} reordered?",)),
    ), (("In stock", "Shelf", "How many {key} are there, and on which shelf?"),)),
)  # fmt: skip


def _table(rng: random.Random) -> TemplateDocument:
    spec = rng.choice(_TABLES)
    style = _style(rng)
    title = spec.title.format(brand=_brand(rng), term=rng.choice(("spring", "autumn", "2025")))
    layout = rng.randrange(5)
    count = rng.randint(9, 11) if layout == 1 else rng.randint(5, 9)
    keys = spec.keys(rng, count)
    keys, spare = keys[:count], keys[count:]
    picked = spec.columns if layout == 1 else rng.sample(spec.columns, rng.randint(3, 4))
    columns = [c for c in spec.columns if c in picked]
    rows = [[key] + [c.make(rng, style) for c in columns] for key in keys]
    header = [spec.key_header] + [c.header for c in columns]
    asks = []
    for row in rng.sample(rows, min(4, len(rows))):
        column = rng.randrange(len(columns))
        asks.append(_ask(rng.choice(columns[column].questions).format(key=row[0]), row[column + 1]))
        for first, second, question in spec.pairs:
            names = [c.header for c in columns]
            if first in names and second in names and rng.random() < 0.4:
                a, b = row[names.index(first) + 1], row[names.index(second) + 1]
                asks.append(_ask(question.format(key=row[0]), a, b, reply=f"{a}, {b}"))
    for i, column in enumerate(columns, 1):
        values = [row[i] for row in rows]
        if column.reverse:
            value = rng.choice(values)
            if values.count(value) == 1:
                lowered = value[0].lower() + value[1:] if column.header == "Role" else value
                asks.append(
                    _ask(column.reverse.format(value=lowered), rows[values.index(value)][0])
                )
    gaps = [_Gap(rng.choice(spec.columns[0].questions).format(key=key), (key,)) for key in spare]
    gaps += [
        _Gap(c.questions[0].format(key=rng.choice(keys)), (c.header,))
        for c in spec.columns
        if c not in columns
    ]
    intro = _some(
        rng,
        (
            "Last updated by the office.",
            "Please tell us about any mistakes.",
            "Changes are marked in the shared calendar.",
            f"Overview: {title}.",
            "Ask at the front desk if you need a printed copy.",
        ),
        2,
        3,
    )
    heading = rng.choice(("md", "setext", "rst", "plain"))
    if layout == 0:
        heading = "md"
        text = "\n\n".join((_heading(title, heading), intro, _md_table(header, rows)))
    elif layout == 1:
        csv_header = [h.lower().replace(" ", "_") for h in header] if rng.random() < 0.5 else header
        text = _csv(csv_header, rows)
        return _document(rng, "table", _file_name(rng, title, ".csv"), text, asks, gaps)
    elif layout == 2:
        text = "\n\n".join((_heading(title, heading), intro, _aligned(header, rows)))
    elif layout == 3:
        heading = rng.choice(("md", "setext"))
        records = [
            _heading(row[0], heading, 2 if heading == "setext" else 3)
            + "\n"
            + "\n".join(f"- {h}: {v}" for h, v in zip(header[1:], row[1:], strict=True))
            for row in rows
        ]
        text = "\n\n".join([_heading(title, heading), intro, *records])
    else:
        lines = [
            f"{row[0]} - "
            + ", ".join(f"{h}: {v}" for h, v in zip(header[1:], row[1:], strict=True))
            for row in rows
        ]
        text = "\n\n".join((_heading(title, heading), intro, "\n".join(lines)))
    return _document(rng, "table", _file_name(rng, title, _suffix(heading)), text, asks, gaps)


# --- READMEs with shell commands ---

# installer: install, upgrade, uninstall, runtime needed (name, versions)
_INSTALLERS = (
    ("pip install {pkg}", "pip install --upgrade {pkg}", "pip uninstall {pkg}", "Python",
     ("3.9", "3.10", "3.11", "3.12")),
    ("pipx install {pkg}", "pipx upgrade {pkg}", "pipx uninstall {pkg}", "Python",
     ("3.10", "3.11", "3.12")),
    ("npm install -g {pkg}", "npm update -g {pkg}", "npm uninstall -g {pkg}", "Node.js",
     ("18", "20", "22")),
    ("cargo install {pkg}", "cargo install --force {pkg}", "cargo uninstall {pkg}", "Rust",
     ("1.74", "1.78", "1.80")),
    ("brew install {pkg}", "brew upgrade {pkg}", "brew uninstall {pkg}", "macOS", ("13", "14")),
    ("sudo apt install {pkg}", "sudo apt upgrade {pkg}", "sudo apt remove {pkg}", "Debian",
     ("11", "12")),
)  # fmt: skip
# intro, command, question, word whose absence shows the command is not given
_COMMANDS = (
    ("To create a new project, run:", "{tool} init {project}",
     "Which command creates a new project called {project} with {tool}?", "init"),
    ("To start the server on port {port}:", "{tool} serve --port {port}",
     "Which command starts the {tool} server on port {port}?", "serve"),
    ("To build everything into the `{outdir}` folder:", "{tool} build --out {outdir}",
     "How do you build the output of {tool} into {outdir}?", "build"),
    ("To back up your documents:", "{tool} backup ~/Documents --to {remote}",
     "Which command backs up the Documents folder with {tool}?", "backup"),
    ("To export a CSV report:", "{tool} export --format csv --out report.csv",
     "How do you export a CSV report with {tool}?", "export"),
    ("To check your setup for problems:", "{tool} doctor",
     "Which command checks the {tool} setup for problems?", "doctor"),
    ("To sign in:", "{tool} login --user {user}",
     "Which command signs the user {user} in to {tool}?", "login"),
)  # fmt: skip
_PURPOSES = (
    "backs up folders to cloud storage", "builds static websites from Markdown",
    "resizes and compresses images", "keeps notes in plain text files",
    "watches log files and sends alerts", "syncs calendars between accounts",
)  # fmt: skip


_FEATURES = (
    "Works offline", "Plain-text configuration", "Fast start-up", "Coloured terminal output",
    "Shell completion for bash and zsh", "No account needed", "Small single binary",
)  # fmt: skip


def _code(rng: random.Random) -> TemplateDocument:
    tool = rng.choice(_STEMS).lower() + rng.choice(("ly", "io", "kit", "sync", "ctl", "x", "er"))
    install, upgrade, uninstall, runtime, versions = rng.choice(_INSTALLERS)
    values = {
        "tool": tool,
        "pkg": tool,
        "project": rng.choice(("blog", "demo", "my-site", "notes")),
        "port": str(rng.choice((3000, 5000, 8000, 8080, 9000))),
        "outdir": rng.choice(("public", "dist", "site")),
        "user": _person(rng).split()[0].lower(),
        "remote": f"s3://{tool}-{rng.choice(('backup', 'archive'))}",
    }
    requirement = f"{runtime} {rng.choice(versions)} or later"
    default_port = str(rng.choice((4000, 7070, 8888, 5173)))
    env = f"{tool.upper()}_TOKEN"
    config = rng.choice(
        (f"~/.config/{tool}/config.toml", f"~/.{tool}rc", f"/etc/{tool}/{tool}.yaml")
    )
    version = f"{rng.randint(0, 3)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
    chosen = rng.sample(_COMMANDS, rng.randint(2, 4))
    commands = [
        (
            "To install, run:" if rng.random() < 0.5 else "Install it with:",
            install.format(**values),
            f"Which command installs {tool}?",
        )
    ]
    commands += [
        (i.format(**values), c.format(**values), q.format(**values)) for i, c, q, _ in chosen
    ]
    extras = [
        (f"To upgrade {tool}:", upgrade.format(**values), f"How do you upgrade {tool}?"),
        (f"To remove {tool}:", uninstall.format(**values), f"How do you uninstall {tool}?"),
    ]
    commands += rng.sample(extras, rng.randint(0, 2))
    asks = [_ask(q, c) for _, c, q in commands]
    facts = [
        (
            f"{tool} needs {requirement}.",
            _ask(f"Which {runtime} version does {tool} need?", requirement),
        ),
        (
            f"The server listens on port {default_port} by default.",
            _ask(f"What is the default port of {tool}?", default_port),
        ),
        (
            f"Set `{env}` to your API token.",
            _ask(f"Which environment variable holds the API token for {tool}?", env),
        ),
        (
            f"Settings are read from `{config}`.",
            _ask(f"Where is the configuration file of {tool}?", config),
        ),
        (
            f"The current release is {version}.",
            _ask(f"What is the current version of {tool}?", version),
        ),
    ]
    facts = rng.sample(facts, rng.randint(3, 5))
    asks += [a for _, a in facts]
    gaps = [_Gap(e[2].format(**values), (e[3],)) for e in _COMMANDS if e not in chosen]
    gaps += [
        _Gap(f"Under which licence is {tool} released?", ("licen",)),
        _Gap(f"Does {tool} run on Windows?", ("windows",)),
    ]
    if not any(c[2].startswith("How do you uninstall") for c in commands):
        gaps.append(_Gap(f"How do you uninstall {tool}?", ("uninstall", "remove")))
    purpose = rng.choice(_PURPOSES)
    layout = rng.randrange(4)
    notes = " ".join(t for t, _ in facts)
    features = "\n".join(f"- {f}" for f in rng.sample(_FEATURES, rng.randint(2, 4)))
    if layout in (0, 1):
        fence = rng.choice(("bash", "sh", "shell", "console", ""))
        prompt = "$ " if fence == "console" or layout == 1 else ""
        blocks = [f"# {tool}", f"`{tool}` {purpose}.\n\n{features}"]
        for intro, command, _ in commands:
            blocks.append(f"{intro}\n\n```{fence}\n{prompt}{command}\n```")
        blocks.insert(2, "## Installation")
        blocks.insert(4, "## Usage")
        blocks += ["## Configuration", notes]
        text, suffix = "\n\n".join(blocks), ".md"
    elif layout == 2:
        blocks = [
            _heading(tool, "rst"),
            f"{tool} {purpose}.",
            features.replace("- ", "* "),
            _heading("Usage", "rst", 2),
        ]
        for intro, command, _ in commands:
            blocks.append(f"{intro.rstrip(':')}::\n\n    {command}")
        blocks += [_heading("Configuration", "rst", 2), notes]
        text, suffix = "\n\n".join(blocks), ".txt"
    else:
        blocks = [f"{tool.upper()} - README", f"{tool} {purpose}. {notes}", features]
        for intro, command, _ in commands:
            blocks.append(f"{intro}\n\n    $ {command}")
        text, suffix = "\n\n".join(blocks), ".txt"
    name = rng.choice((f"README{suffix}", f"{tool}-readme{suffix}", f"{tool}{suffix}"))
    return _document(rng, "code", name, text, asks, gaps)


# --- contact lists ---

# service, what the company does (for questions), trade word
_SERVICES = (
    ("Heating", "maintains the heating", "Heating"), ("Lifts", "services the lifts", "Lifts"),
    ("Car park", "runs the car park", "Parking"), ("Cleaning", "cleans the stairwells", "Cleaning"),
    ("Garden", "looks after the garden", "Gardens"), ("Waste", "collects the waste", "Recycling"),
    ("Plumbing", "handles plumbing emergencies", "Plumbing"),
    ("Electrics", "handles electrical faults", "Electrical"),
    ("Laundry room", "runs the laundry room", "Laundry"),
    ("Security", "provides security", "Security"),
)  # fmt: skip
_WORKS = (
    ("the roof", "repaired"),
    ("the facade", "painted"),
    ("the lift", "replaced"),
    ("the windows", "replaced"),
    ("the boiler", "renewed"),
    ("the entrance door", "replaced"),
)
_ROLES = (
    "Chair",
    "Secretary",
    "Treasurer",
    "Head coach",
    "Youth coordinator",
    "Membership secretary",
    "Groundskeeper",
    "Events officer",
)


def _contacts(rng: random.Random) -> TemplateDocument:
    style = _style(rng)
    layout = rng.randrange(5)
    heading = rng.choice(("md", "setext", "rst", "plain")) if layout != 1 else "md"
    asks: list[_Ask] = []
    gaps: list[_Gap] = []
    if rng.random() < 0.55:
        place = f"{_place(rng)} {rng.choice(('Court', 'House', 'Tower', 'Gardens'))}"
        services = rng.sample(_SERVICES, rng.randint(7, 9) if layout == 4 else rng.randint(4, 6))
        entries = []
        for label, does, trade in services:
            company = _company(rng, trade)
            phone = style.phone(rng)
            entries.append((label, company, phone))
            asks += [
                _ask(f"Which company {does} at {place}?", company),
                _ask(
                    rng.choice(
                        (
                            f"What number do you call about the {label.lower()} at {place}?",
                            f"What is the phone number of the {label.lower()} company at {place}?",
                        )
                    ),
                    phone,
                ),
            ]
        label, company, phone = entries[0]
        asks.append(
            _ask(
                f"Who is responsible for the {label.lower()} at {place}, and what is their number?",
                company,
                phone,
                reply=f"{company}, {phone}",
            )
        )
        gaps += [
            _Gap(f"Which company {does} at {place}?", (label.lower(),))
            for label, does, _ in _SERVICES
            if label not in [e[0] for e in entries]
        ]
        title = rng.choice(
            (
                f"{place} – useful contacts",
                f"Contacts for residents of {place}",
                f"{place}: who to call",
            )
        )
        intro = _some(
            rng,
            (
                "In an emergency call 112 first.",
                f"Residents of {place}, please keep this list.",
                "For anything not listed, contact the residents' board.",
                "This list is updated every spring.",
            ),
            2,
            3,
        )
        header = ("Service", "Company", "Phone")
        works = []
        for thing, verb in rng.sample(_WORKS, rng.randint(1, 3)):
            year, company = str(rng.randint(2008, 2024)), _company(rng, "Builders")
            works.append(f"{year}: {thing} {verb} by {company}")
            asks.append(
                _ask(
                    f"Who {verb} {thing} at {place}, and in which year?",
                    company,
                    year,
                    reply=f"{company}, {year}",
                )
            )
        tail = _heading("Recent work", heading, 2) + "\n\n" + "\n".join(f"- {w}" for w in works)
    else:
        place = (
            f"{_place(rng)} {rng.choice(('Rowing Club', 'Football Club', 'Choir', 'Chess Club'))}"
        )
        roles = rng.sample(_ROLES, rng.randint(6, 8) if layout == 4 else rng.randint(4, 6))
        entries = []
        for role in roles:
            person, since = _person(rng), str(rng.randint(2005, 2024))
            email = _email(person, _domain(rng, place))
            entries.append((role, f"{person} (since {since})", email))
            asks += [
                _ask(f"Who is the {role.lower()} of {place}?", person),
                _ask(
                    f"Who is the {role.lower()} of {place}, and since when?",
                    person,
                    f"since {since}",
                    reply=f"{person}, since {since}",
                ),
                _ask(f"What is the email address of the {role.lower()} of {place}?", email),
            ]
        gaps += [
            _Gap(f"Who is the {role.lower()} of {place}?", (role.lower(),))
            for role in _ROLES
            if role not in roles
        ]
        gaps.append(
            _Gap(f"What is the phone number of the {roles[0].lower()} of {place}?", _PHONE_WORDS)
        )
        title = rng.choice(
            (f"{place} – committee", f"Who is who at {place}", f"{place}: committee contacts")
        )
        intro = _some(
            rng,
            (
                "Elected at the last general meeting.",
                "Write to us at any time.",
                f"The committee runs {place} on a voluntary basis.",
                "New volunteers are always welcome.",
            ),
            2,
            3,
        )
        header = ("Role", "Name", "Email")
        tail = rng.choice(("Meetings are held monthly.", "Thank you to all volunteers!"))
    if layout == 0:
        body = "\n".join(f"- **{a}**: {b}, {c}" for a, b, c in entries)
    elif layout == 1:
        body = _md_table(header, entries)
    elif layout == 2:
        body = "\n\n".join(
            f"{_heading(a, heading, 2)}\n{header[1]}: {b}\n{header[2]}: {c}" for a, b, c in entries
        )
    elif layout == 3:
        body = " ".join(f"{a}: {b}, reachable at {c}." for a, b, c in entries)
    else:
        text = _csv([h.lower() for h in header], entries)
        return _document(
            rng,
            "contacts",
            _file_name(rng, title, ".csv"),
            text,
            [a for a in asks if "in which year" not in a.question],
            gaps,
        )
    text = "\n\n".join((_heading(title, heading), intro, body, tail))
    return _document(rng, "contacts", _file_name(rng, title, _suffix(heading)), text, asks, gaps)


# --- event calendars ---

_EVENTS = (
    "Spring fair", "Summer concert", "Open day", "Quiz night", "Annual general meeting",
    "Flea market", "Beach clean-up", "Lantern walk", "Book sale", "Parents' evening",
    "Film night", "Charity run", "Harvest supper", "Jazz brunch", "Plant swap", "Craft workshop",
)  # fmt: skip


def _events(rng: random.Random) -> TemplateDocument:
    style = _style(rng)
    town = _place(rng)
    host = rng.choice(
        (
            f"{town} Community Association",
            f"{town} Town Council",
            f"{town} Primary School",
            f"{_brand(rng)} Arts Centre",
        )
    )
    year = rng.randint(2024, 2027)
    venues = [
        f"{town} Town Hall",
        "the community centre",
        f"{_brand(rng)} Park",
        "the school hall",
        f"St {rng.choice(_FIRST)}'s Church",
        "the harbour",
        f"{town} Library",
    ]
    layout = rng.randrange(5)
    titles = rng.sample(_EVENTS, rng.randint(7, 10) if layout == 4 else rng.randint(4, 7))
    start = datetime.date(year, rng.randint(1, 9), 1)
    days = sorted(rng.sample(range(0, 120), len(titles)))
    events = []
    for title, offset in zip(titles, days, strict=True):
        when = style.date(start + datetime.timedelta(days=offset))
        begins = rng.randrange(600, 1201, 30)
        price = rng.choice(
            (
                "free",
                style.money(rng.randrange(300, 2001, 50)),
                f"{style.money(rng.randrange(300, 1501, 50))} per person",
                f"{style.money(rng.randrange(500, 2001, 50))}, children free",
            )
        )
        events.append(
            (
                title,
                when,
                style.clock(begins),
                style.clock(begins + rng.choice((90, 120, 180))),
                rng.choice(venues),
                price,
                _person(rng),
            )
        )
    organiser = layout in (2, 3)
    asks = []
    for title, when, begins, ends, venue, price, person in events:
        t = title.lower()
        asks += [
            _ask(rng.choice((f"When is the {t}?", f"On which date is the {t} in {town}?")), when),
            _ask(f"What time does the {t} start?", begins),
            _ask(f"Where is the {t} held?", venue),
            _ask(f"When and where is the {t}?", when, venue, reply=f"{when}, {venue}"),
            _ask(f"How much does the {t} cost?", price),
        ]
        if layout != 1:
            asks.append(_ask(f"What time does the {t} end?", ends))
        if organiser:
            asks.append(_ask(f"Who organises the {t}?", person))
    free = [e[0] for e in events if e[5] == "free"]
    if len(free) >= 2 and layout != 3:
        asks.append(_ask(f"Which events of the {host} are free?", *free))
    gaps = [_Gap(f"When is the {t.lower()}?", (t,)) for t in _EVENTS if t not in titles]
    gaps.append(_Gap(f"Who organises the {rng.choice(titles).lower()}?", ("organis", "contact")))
    doc_title = rng.choice((f"{host} – events {year}", f"What's on: {host}", f"Calendar {year}"))
    intro = rng.choice(
        (
            f"Everyone is welcome at the events of the {host}.",
            "Dates may change; we will post any changes here.",
            f"Our programme for the coming months in {town}.",
        )
    )
    heading = rng.choice(("md", "setext", "rst", "plain"))
    if layout == 0:
        heading = "md"
        body = _md_table(
            ("Date", "Event", "Time", "Place", "Entry"),
            [(w, t, f"{b}{style.dash}{e}", v, p) for t, w, b, e, v, p, _ in events],
        )
    elif layout == 1:
        body = "\n".join(f"- **{w}** – {t}, {b}, {v} ({p})" for t, w, b, _, v, p, _ in events)
        heading = "md"
    elif layout == 2:
        heading = rng.choice(("setext", "rst", "md"))
        body = "\n\n".join(
            f"{_heading(t, heading, 2)}\nDate: {w}\nTime: {b} to {e}\nWhere: {v}\nEntry: {p}\n"
            f"Organiser: {o}"
            for t, w, b, e, v, p, o in events
        )
    elif layout == 3:
        body = "\n\n".join(
            rng.choice(
                (
                    f"The {t.lower()} takes place on {w} at {v}, from {b} until {e}. Entry: {p}. "
                    f"Organised by {o}.",
                    f"{w}: {t} at {v}. It starts at {b} and ends at {e}. Entry is {p}. "
                    f"Organiser: {o}.",
                    f"Join us for the {t.lower()} on {w}, {b}–{e}, at {v} ({p}). {o} organises it.",
                )
            )
            for t, w, b, e, v, p, o in events
        )
    else:
        header = ("date", "event", "start", "end", "place", "price")
        rows = [(w, t, b, e, v, p) for t, w, b, e, v, p, _ in events]
        return _document(
            rng, "events", _file_name(rng, doc_title, ".csv"), _csv(header, rows), asks, gaps
        )
    text = "\n\n".join((_heading(doc_title, heading), intro, body))
    return _document(rng, "events", _file_name(rng, doc_title, _suffix(heading)), text, asks, gaps)


Builder = Callable[[random.Random], TemplateDocument]
BUILDERS: tuple[Builder, ...] = (
    _hours, _timetable, _prices, _rules, _faq, _manual, _table, _code, _contacts, _events,
)  # fmt: skip


def template_documents(count: int, seed: int = 0) -> list[TemplateDocument]:
    """`count` documents of every kind in turn, deterministic for a seed."""
    rng = random.Random(seed)
    documents: list[TemplateDocument] = []
    names: set[str] = set()
    for i in range(count):
        document = BUILDERS[i % len(BUILDERS)](rng)
        stem, _, suffix = document.name.rpartition(".")
        name, n = document.name, 2
        while name in names:
            name, n = f"{stem}-{n}.{suffix}", n + 1
        names.add(name)
        documents.append(replace(document, name=name))
    return documents
