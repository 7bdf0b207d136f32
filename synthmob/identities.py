"""Subscriber identities that can never belong to a real person.

Every identifier is drawn from a range that is reserved, by the body that allocates it, for tests or fiction:

- IMSI: ``001 01`` + a 10-digit MSIN. MCC 001 with MNC 01 is the test network (ITU-T E.212).
- IMEI: an 8-digit type allocation code (TAC), a 6-digit serial number and a Luhn check digit (3GPP TS 23.003,
  §6.2.1 and Annex B). Every TAC starts with the reporting body identifier ``00``, which GSMA TS.06 *IMEI
  Allocation and Approval Process* (v25.0, 2024, Appendix A) reserves for test IMEIs; its next four digits
  name a fictional device model from the package data ``synthmob/data/devices.csv``.
- MSISDN, in E.164 form: in ``fiction`` mode a number from the mobile range that Ofcom keeps for TV, radio and
  film drama, +44 7700 900000 to +44 7700 900999 (Ofcom, "Telephone numbers for drama purposes",
  https://www.ofcom.org.uk/phones-and-broadband/phone-numbers/numbers-for-drama). That is Ofcom's only
  *mobile* drama range, 1,000 numbers; its other drama ranges are geographic (e.g. 020 7946 0000-0999),
  freephone (0808 157 0000-0999), premium rate (0909 879 0000-0999) and UK-wide (0306 999 0000-0999).
  In ``pseudonym`` mode a token such as ``psn-3f9c0a17d2b6e481``, which no telephone can dial.
- Given and family names from Faker in the scenario's locale; e-mail addresses at example.com, example.org
  or example.net, the second-level domains RFC 2606 (§3) reserves for documentation and examples.

A subscriber's identity depends only on the root seed, its ``subscriber_id`` and its gender: its random draws
come from the stream ``(4, subscriber_id)`` below the root, and the run-wide parameters (the keys of the
permutations below) from the stream ``(4,)``. Identities are therefore the same whichever subscribers are
generated with it, in whichever process.

Uniqueness is guaranteed, not left to chance: IMSI, IMEI and MSISDN are seeded *bijections* of the
subscriber_id — four-round Feistel networks (Luby & Rackoff, SIAM J. Comput. 17, 1988) on the digits, keyed
from the root seed. Two subscribers therefore never share one, within a call or across the shards of a run.
"""

from __future__ import annotations

import csv
import functools
import re
import threading
import unicodedata
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pyarrow as pa
from faker import Faker
from faker.generator import Generator

from synthmob import schema
from synthmob.errors import ConfigError
from synthmob.population import Population
from synthmob.scenario import Scenario

#: The stream key of identities below the run's root seed (``pipeline._IDENTITIES``).
STREAM = 4

PLMN = schema.MCC + schema.MNC  # "00101", the ITU-T E.212 test network
TEST_REPORTING_BODY = "00"  # GSMA TS.06 v25.0, Appendix A: reporting body identifier of test IMEIs
#: Subscriber ids must be below this: the last two TAC digits and the six serial digits encode the id.
MAX_SUBSCRIBERS = 10**8

#: Ofcom's drama range for mobile numbers, in E.164 digits: +447700900000 to +447700900999.
FICTION_FIRST = 447700900000
FICTION_CAPACITY = 1000
PSEUDONYM_PREFIX = "psn-"
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")  # RFC 2606, §3
DEVICE_TYPES = ("smartphone", "feature_phone", "modem")

_ROUNDS = 4  # Feistel rounds; four make a strong pseudo-random permutation (Luby & Rackoff 1988)
_WORDS = 4  # 64-bit words drawn per subscriber: device type, device model, name seed, e-mail


def identities(population: Population, scenario: Scenario, *, root: np.random.SeedSequence) -> pa.Table:
    """Identifiers, device and fictional name of every subscriber of ``population``, in its order.

    Parameters
    ----------
    population
        The subscribers; their ids must lie in ``[0, MAX_SUBSCRIBERS)``.
    scenario
        Supplies ``identities`` (locale, MSISDN mode, device mix) and ``subscribers``, which decides the
        ``auto`` MSISDN mode: fiction numbers when the whole run fits in Ofcom's 1,000, else pseudonyms.
    root
        The run's root seed sequence. Subscriber *i* draws from the stream ``(4, i)`` below it.

    Returns
    -------
    pyarrow.Table
        One row per subscriber, with the schema :data:`synthmob.schema.IDENTITY`.

    Raises
    ------
    ConfigError
        ``msisdn_mode`` is ``fiction`` and the run has more subscribers than there are fiction numbers, or
        ``device_mix`` gives no device type a positive share.

    Notes
    -----
    IMSI, IMEI, TAC, device and MSISDN depend only on numpy's :class:`~numpy.random.SeedSequence`. Names and
    e-mail addresses come from Faker, seeded per subscriber: the same seed gives the same names only with the
    same Faker version (record it beside the data).

    Examples
    --------
    >>> import numpy as np
    >>> from synthmob.population import synthesise
    >>> from synthmob.scenario import load_scenario
    >>> from synthmob.world import build_world
    >>> s = load_scenario("tiny")
    >>> people = synthesise(s, build_world(s.world, rng=np.random.default_rng(0)), rng=np.random.default_rng(1))
    >>> table = identities(people, s, root=np.random.SeedSequence(s.seed))
    >>> table.num_rows == len(people)
    True
    >>> row = table.to_pylist()[7]
    >>> row["imsi"][:5], len(row["imsi"]), row["imei"][:2], len(row["imei"]), row["msisdn"][:10]
    ('00101', 15, '00', 15, '+447700900')
    >>> row["email"].endswith(("@example.com", "@example.org", "@example.net"))
    True

    A subscriber's identity does not depend on who else is generated:

    >>> identities(people.slice(7, 8), s, root=np.random.SeedSequence(s.seed)).to_pylist()[0] == row
    True
    """
    ids = np.asarray(population.subscriber_id, dtype=np.int64)
    if len(ids) and (ids.min() < 0 or ids.max() >= MAX_SUBSCRIBERS):
        raise ValueError(
            f"subscriber ids must lie in [0, {MAX_SUBSCRIBERS:,}) to get unique test IMEIs; "
            f"got {int(ids.min())} to {int(ids.max())}"
        )
    mode = msisdn_mode(scenario, population)  # fail before the slow part
    keys = _Keys.draw(root)
    words = _subscriber_words(root, ids)
    catalogue = _catalogue()
    model = _draw_models(scenario, catalogue, _uniform(words[:, 0]), _uniform(words[:, 1]))
    given, family, email = _names(population.gender, scenario.identities.locale, words[:, 2], words[:, 3])

    unsigned = ids.astype(np.uint64)
    msin = _permute(unsigned, 10**5, keys.imsi)
    # TAC = 00 (test IMEI) + model code + 2 digits, serial = 6 digits: the last 8 digits before the check digit
    # are a bijection of the id, so IMEIs are unique whichever models subscribers draw.
    tail = _permute(unsigned // np.uint64(10**6), 10, keys.tac).astype(np.int64)
    serial = _permute(unsigned % np.uint64(10**6), 10**3, keys.serial).astype(np.int64)
    tac = catalogue.model_code[model] * 100 + tail  # after the leading 00, which adds nothing to the Luhn sum
    body = tac * 10**6 + serial
    imei = body * 10 + _luhn(body, 14)

    columns = {
        "imsi": [f"{PLMN}{m:010d}" for m in msin.tolist()],
        "imei": [f"{TEST_REPORTING_BODY}{v:013d}" for v in imei.tolist()],
        "tac": [f"{TEST_REPORTING_BODY}{v:06d}" for v in tac.tolist()],
        "device_brand": catalogue.brand[model].tolist(),
        "device_model": catalogue.model[model].tolist(),
        "device_type": catalogue.device_type[model].tolist(),
        "msisdn": _msisdns(ids, mode, keys),
        "given_name": given,
        "family_name": family,
        "email": email,
    }
    return pa.Table.from_arrays(
        [pa.array(columns[f.name], type=pa.string()) for f in schema.IDENTITY], schema=schema.IDENTITY
    )


def _luhn(body: np.ndarray, digits: int) -> np.ndarray:
    """The Luhn check digit of each ``digits``-digit number in ``body`` (3GPP TS 23.003, Annex B, for IMEIs).

    Examples
    --------
    >>> _luhn(np.array([49015420323751, 7992739871]), 14).tolist()  # IMEI 49-015420-323751-8; 7992739871-3
    [8, 3]
    """
    rest = np.asarray(body, dtype=np.int64).copy()
    total = np.zeros_like(rest)
    for position in range(digits):  # from the rightmost digit; it and every second one left of it double
        digit = rest % 10
        rest //= 10
        if position % 2 == 0:
            digit = 2 * digit
            digit = digit // 10 + digit % 10
        total += digit
    return (10 - total % 10) % 10


# --- MSISDNs -----------------------------------------------------------------------------------------------
def msisdn_mode(scenario: Scenario, population: Population | None = None) -> str:
    """``fiction`` or ``pseudonym``: the scenario's MSISDN mode, with ``auto`` resolved for the whole run.

    ``auto`` means fiction numbers when every subscriber of the run (``scenario.subscribers``, or more if
    ``population`` holds higher ids) can have one of its own, else pseudonyms. It never depends on which
    subscribers one call generates, so that a subscriber's MSISDN does not either.

    Raises :class:`ConfigError` when fiction numbers are asked for and there are too few of them.

    Examples
    --------
    >>> from synthmob.scenario import load_scenario
    >>> msisdn_mode(load_scenario("tiny")), msisdn_mode(load_scenario("tiny", overrides={"subscribers": 5000}))
    ('fiction', 'pseudonym')
    """
    ids = np.empty(0, dtype=np.int64) if population is None else population.subscriber_id
    needed = max(scenario.subscribers, int(ids.max()) + 1 if len(ids) else 0)
    mode = scenario.identities.msisdn_mode
    if mode == "auto":
        return "fiction" if needed <= FICTION_CAPACITY else "pseudonym"
    if mode == "fiction" and needed > FICTION_CAPACITY:
        raise ConfigError(
            "scenario",
            "identities.msisdn_mode",
            mode,
            f"only {FICTION_CAPACITY:,} fiction mobile numbers exist (Ofcom's drama range +{FICTION_FIRST} to "
            f"+{FICTION_FIRST + FICTION_CAPACITY - 1}), too few for {needed:,} subscribers; use 'pseudonym', "
            "or 'auto' to choose fiction numbers only when they suffice",
        )
    return mode


def _msisdns(ids: np.ndarray, mode: str, keys: "_Keys") -> list[str]:
    if mode == "fiction":
        return [f"+{FICTION_FIRST + k}" for k in keys.fiction[ids].tolist()]
    tokens = _permute(ids.astype(np.uint64), 2**32, keys.pseudonym)
    return [f"{PSEUDONYM_PREFIX}{t:016x}" for t in tokens.tolist()]


# --- seeded bijections -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Keys:
    """Run-wide keys of the permutations, drawn in this order from the stream ``(4,)``."""

    imsi: np.ndarray  # Feistel round keys (uint64), one per round
    tac: np.ndarray
    serial: np.ndarray
    pseudonym: np.ndarray
    fiction: np.ndarray  # a permutation of range(FICTION_CAPACITY)

    @classmethod
    def draw(cls, root: np.random.SeedSequence) -> "_Keys":
        seq = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, STREAM), pool_size=root.pool_size)
        rng = np.random.Generator(np.random.PCG64(seq))
        rounds = [rng.integers(0, 2**64, size=_ROUNDS, dtype=np.uint64) for _ in range(4)]
        return cls(*rounds, fiction=rng.permutation(FICTION_CAPACITY))


def _permute(x: np.ndarray, half: int, keys: np.ndarray) -> np.ndarray:
    """A keyed bijection of ``[0, half**2)``: a balanced Feistel network over base-``half`` digit pairs.

    Each round maps (left, right) to (right, left + F(right) mod half), which is invertible whatever F is; F
    is a keyed 64-bit mixer. Four rounds make a pseudo-random permutation (Luby & Rackoff 1988).

    Examples
    --------
    >>> keys = np.array([1, 2, 3, 4], dtype=np.uint64)
    >>> out = _permute(np.arange(100, dtype=np.uint64), 10, keys)
    >>> sorted(out.tolist()) == list(range(100))
    True
    """
    h = np.uint64(half)
    left, right = np.divmod(np.asarray(x, dtype=np.uint64), h)
    for key in keys:
        left, right = right, (left + _mix64(right ^ key) % h) % h
    return left * h + right


_MIX_1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
_SHIFT = np.uint64(33)


def _mix64(k: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser (fmix64): every input bit flips about half of the output bits."""
    k = k ^ (k >> _SHIFT)
    k = k * _MIX_1
    k = k ^ (k >> _SHIFT)
    k = k * _MIX_2
    return k ^ (k >> _SHIFT)


# --- per-subscriber draws ----------------------------------------------------------------------------------
def _subscriber_words(root: np.random.SeedSequence, ids: np.ndarray) -> np.ndarray:
    """``_WORDS`` random 64-bit words per subscriber, from its own stream ``(4, subscriber_id)``.

    Each row is what ``SeedSequence(root.entropy, spawn_key=(*root.spawn_key, 4, subscriber_id),
    pool_size=root.pool_size).generate_state(_WORDS, np.uint64)`` returns, computed for all subscribers at
    once (:func:`_spawned_states`) instead of building a SeedSequence for each (about 9 µs apiece).
    """
    halves = _spawned_states(root, (STREAM,), ids, 2 * _WORDS).astype(np.uint64)
    return halves[:, 0::2] | (halves[:, 1::2] << np.uint64(32))


# numpy's SeedSequence (numpy/random/bit_generator.pyx), after Melissa O'Neill's seed_seq_fe.
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R, _XSHIFT, _M32 = 0xCA01F9DD, 0x4973F715, 16, 0xFFFFFFFF


def _uint32_words(x: int | tuple | list) -> list[int]:
    """An int, or a sequence of them, as numpy's SeedSequence reads it: 32-bit words, low word first."""
    if isinstance(x, (tuple, list, np.ndarray)):
        return [w for v in x for w in _uint32_words(int(v))]
    x = int(x)
    words = [x & _M32] if x == 0 else []
    while x > 0:
        words.append(x & _M32)
        x >>= 32
    return words


def _spawned_states(root: np.random.SeedSequence, key: tuple[int, ...], ids: np.ndarray, n_words: int) -> np.ndarray:
    """``generate_state(n_words)`` (32-bit words) of the SeedSequence at spawn key ``(*root.spawn_key, *key,
    i)`` for every ``i`` of ``ids`` (each below 2**32), vectorised over ``ids``.

    The entropy numpy assembles for such a sequence is the same for every ``i`` up to its last word, ``i``
    itself: that common part is mixed once, in Python integers, as SeedSequence mixes it; the last word's
    mixing and the state's generation then run as uint32 array arithmetic. Tests compare the result with
    numpy's own SeedSequence.
    """
    ids = np.asarray(ids)
    if len(ids) and (ids.min() < 0 or ids.max() > _M32):
        raise ValueError("subscriber ids must lie in [0, 2**32)")
    run = _uint32_words(root.entropy)
    size = root.pool_size
    run += [0] * (size - len(run))  # numpy pads the run entropy when there is a spawn key (numpy >= 1.19)
    prefix = run + _uint32_words((*root.spawn_key, *key))
    h = _INIT_A

    def hashmix(value: int) -> int:
        nonlocal h
        value ^= h
        h = (h * _MULT_A) & _M32
        value = (value * h) & _M32
        return value ^ (value >> _XSHIFT)

    def mix(x: int, y: int) -> int:
        result = (_MIX_L * x - _MIX_R * y) & _M32
        return result ^ (result >> _XSHIFT)

    pool = [hashmix(prefix[i]) for i in range(size)]
    for src in range(size):
        for dst in range(size):
            if src != dst:
                pool[dst] = mix(pool[dst], hashmix(pool[src]))
    for word in prefix[size:]:
        for dst in range(size):
            pool[dst] = mix(pool[dst], hashmix(word))
    # The last entropy word, i, differs per row: the same steps on uint64 arrays masked to 32 bits.
    last = ids.astype(np.uint64)
    mixed = np.empty((size, len(ids)), dtype=np.uint64)
    for dst in range(size):
        value = last ^ np.uint64(h)
        h = (h * _MULT_A) & _M32
        value = (value * np.uint64(h)) & np.uint64(_M32)
        value ^= value >> np.uint64(_XSHIFT)
        # uint64 arithmetic wraps modulo 2**64, a multiple of 2**32: masking gives the uint32 result
        result = (np.uint64(_MIX_L * pool[dst] & _M32) - value * np.uint64(_MIX_R)) & np.uint64(_M32)
        mixed[dst] = result ^ (result >> np.uint64(_XSHIFT))
    state = np.empty((len(ids), n_words), dtype=np.uint32)
    g = _INIT_B
    for dst in range(n_words):
        value = mixed[dst % size] ^ np.uint64(g)
        g = (g * _MULT_B) & _M32
        value = (value * np.uint64(g)) & np.uint64(_M32)
        state[:, dst] = value ^ (value >> np.uint64(_XSHIFT))
    return state


def _uniform(words: np.ndarray) -> np.ndarray:
    """Uniform floats in [0, 1) from the top 53 bits of 64-bit words."""
    return (words >> np.uint64(11)).astype(np.float64) * 2.0**-53


# --- devices -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Catalogue:
    """The fictional device models of ``synthmob/data/devices.csv``, as columns."""

    model_code: np.ndarray  # int64, four digits
    brand: np.ndarray  # object (str)
    model: np.ndarray
    device_type: np.ndarray
    weight: np.ndarray  # float64


@functools.cache
def _catalogue() -> _Catalogue:
    text = (resources.files("synthmob") / "data" / "devices.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    codes = [r["model_code"] for r in rows]
    types = {r["device_type"] for r in rows}
    if not all(re.fullmatch(r"\d{4}", c) for c in codes) or len(set(codes)) != len(codes) or types != set(DEVICE_TYPES):
        raise RuntimeError("synthmob/data/devices.csv is damaged: reinstall synthmob")  # pragma: no cover
    return _Catalogue(
        model_code=np.array([int(c) for c in codes], dtype=np.int64),
        brand=np.array([r["brand"] for r in rows], dtype=object),
        model=np.array([r["model"] for r in rows], dtype=object),
        device_type=np.array([r["device_type"] for r in rows], dtype=object),
        weight=np.array([float(r["weight"]) for r in rows], dtype=np.float64),
    )


def _draw_models(scenario: Scenario, catalogue: _Catalogue, u_type: np.ndarray, u_model: np.ndarray) -> np.ndarray:
    """Row of the catalogue for each subscriber: a device type by ``device_mix``, then a model of it by weight."""
    mix = scenario.identities.device_mix
    shares = np.array([mix.get(t, 0.0) for t in DEVICE_TYPES], dtype=np.float64)
    if shares.min() < 0 or shares.sum() <= 0:
        raise ConfigError(
            "scenario", "identities.device_mix", dict(mix), "give each device type a share of 0 or more, "
            "at least one above 0"
        )
    kind = np.minimum(np.searchsorted(np.cumsum(shares) / shares.sum(), u_type, side="right"), len(shares) - 1)
    out = np.empty(len(u_type), dtype=np.int64)
    for k, device_type in enumerate(DEVICE_TYPES):
        members = kind == k
        rows = np.flatnonzero(catalogue.device_type == device_type)
        cdf = np.cumsum(catalogue.weight[rows])
        pick = np.searchsorted(cdf / cdf[-1], u_model[members], side="right")
        out[members] = rows[np.minimum(pick, len(rows) - 1)]
    return out


# --- names and e-mail --------------------------------------------------------------------------------------
_FOLD = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "Ae", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "Oe", "ł": "l", "Ł": "L",
     "đ": "d", "Đ": "D", "þ": "th", "Þ": "Th", "ð": "d", "Ð": "D", "ı": "i"}
)


@functools.lru_cache(maxsize=65536)  # names repeat: a few thousand distinct ones per locale
def _ascii_fold(text: str) -> str:
    """Lower-case ASCII letters and digits of ``text``, accents stripped, everything else dropped.

    Examples
    --------
    >>> _ascii_fold("Jürgen"), _ascii_fold("Groß-Čačić"), _ascii_fold("de la Cruz"), _ascii_fold("Øster")
    ('jurgen', 'grosscacic', 'delacruz', 'oster')
    """
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return re.sub(r"[^a-z0-9]", "", decomposed.encode("ascii", "ignore").decode("ascii").lower())


_FAKERS = threading.local()


def _faker(locale: str) -> Generator:
    """Faker's generator for ``locale``, made once per thread and kept for the thread's life, one per locale
    used (making one costs about 13 ms; every use re-seeds it, so no draw depends on an earlier use).

    It is the one generator behind ``Faker(locale)``, which hands every call on to it; called directly it
    draws the same names without the proxy's attribute look-ups (a fifth of the time of a name).
    """
    fakers = getattr(_FAKERS, "by_locale", None)
    if fakers is None:
        fakers = _FAKERS.by_locale = {}
    if locale not in fakers:
        (_, generator), = Faker(locale).items()
        fakers[locale] = generator
    return fakers[locale]


def _names(
    gender: np.ndarray, locale: str, name_seeds: np.ndarray, email_words: np.ndarray
) -> tuple[list[str], list[str], list[str]]:
    """Given name, family name and e-mail of each subscriber; Faker is re-seeded for every one of them."""
    fake = _faker(locale)
    given, family, email = [], [], []
    numbers = (email_words % np.uint64(999) + np.uint64(1)).tolist()
    domains = ((email_words >> np.uint64(32)) % np.uint64(len(EMAIL_DOMAINS))).tolist()
    for sex, seed, number, domain in zip(gender.tolist(), name_seeds.tolist(), numbers, domains):
        fake.seed_instance(seed)
        if sex == "female":
            first, last = fake.first_name_female(), fake.last_name_female()
        elif sex == "male":
            first, last = fake.first_name_male(), fake.last_name_male()
        else:
            first, last = fake.first_name(), fake.last_name()
        given.append(first)
        family.append(last)
        local = ".".join(part for part in (_ascii_fold(first), _ascii_fold(last)) if part) or "subscriber"
        email.append(f"{local}{number}@{EMAIL_DOMAINS[domain]}")
    return given, family, email
