"""Password strength: Barong's character rule, then zxcvbn's estimate of how many guesses a password takes.

Barong's rule is the regexp ``PASSWORD_REGEXP`` (8–80 characters, a lower-case letter, an upper-case
letter and a digit); its entropy came from a Ruby gem's formula.  We keep the rule and measure strength
with zxcvbn instead (docs decisions.md, "Password strength"): ``entropy`` is log2 of zxcvbn's guesses.

zxcvbn's cost is far from linear in the password's length: the l33t matcher re-runs the whole dictionary
scan (quadratic in the length) once per way of reading the l33t characters present, and there are up to
~700 ways.  Measured with zxcvbn 4.5: a random 100-character password takes up to 4.6 s, a 19-character
one made of every l33t character 270 ms.  The endpoint that reports entropy is public, so only a prefix
is ever scored: at most ``MAX_SCORED_CHARS`` characters, fewer when the prefix holds many distinct l33t
characters (``_scored_prefix``), which keeps one call near 20 ms at worst.  Guessing a prefix is
hardly ever harder than guessing the whole password, so truncating errs towards "weak", and a
32-character prefix can score far above any sensible threshold (a random one scores over 100 bits).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence

from zxcvbn import zxcvbn
from zxcvbn.matching import L33T_TABLE

#: The most characters of a password that zxcvbn ever sees.
MAX_SCORED_CHARS = 32
#: The prefix is never cut below this (the rule's minimum length), whatever its l33t characters.
MIN_SCORED_CHARS = 8
#: Bound on (ways to read the l33t characters + 1) × length²: the slowest prefix allowed took 21 ms.
_WORK_BUDGET = 20_000
#: zxcvbn matches user inputs as whole words, and no scored prefix is longer than 32 characters.
_MAX_INPUT_CHARS = 100

_SEPARATORS = re.compile(r"[\W_]+")


def _l33t_readings(text: str) -> int:
    """An upper bound on the substitution tables zxcvbn's l33t matcher tries for ``text``: the product of
    each letter's l33t characters present, doubled (characters shared by two letters, such as "1" for i
    and l, add variants; the exact count never exceeded twice the product over 3,000 random sets of them)."""
    present = set(text)
    count = 1
    for chars in L33T_TABLE.values():
        count *= max(1, sum(1 for char in chars if char in present))
    return 2 * count


def _scored_prefix(password: str) -> str:
    """The prefix zxcvbn may score within the work budget (see the module's docstring)."""
    length = min(len(password), MAX_SCORED_CHARS)
    while length > MIN_SCORED_CHARS:
        if (_l33t_readings(password[:length]) + 1) * length * length <= _WORK_BUDGET:
            break
        length -= 1
    return password[:length]


def _expand_inputs(user_inputs: Sequence[str]) -> list[str]:
    """Each input and its words: zxcvbn only matches whole inputs, and a password rarely holds a whole
    e-mail address, but often its local part or a piece of it (``john.smith@x.io`` → ``john``, ``smith``)."""
    words: list[str] = []
    for value in user_inputs:
        value = value[:_MAX_INPUT_CHARS].lower()
        if not value:
            continue
        words.append(value)
        local = value.split("@", 1)[0]
        if local != value:
            words.append(local)
        # Shorter pieces would match single letters everywhere, which says nothing about the user.
        words.extend(part for part in _SEPARATORS.split(value) if len(part) >= 3 and part != value)
    return words


def meets_requirements(password: str) -> bool:
    """Barong's ``PASSWORD_REGEXP``, with Ruby's Unicode POSIX classes: 8–80 characters, of which one
    ``Lowercase_Letter``, one ``Uppercase_Letter`` and one ``Decimal_Number`` (Onigmo's definitions of
    ``[[:lower:]]``, ``[[:upper:]]``, ``[[:digit:]]``; ``[[:graph:]]`` is implied by a letter)."""
    if not 8 <= len(password) <= 80:
        return False
    categories = {unicodedata.category(char) for char in password}
    # Nd, not str.isdigit(): "²" and "①" are digits to Python but not to Ruby's [[:digit:]].
    return {"Ll", "Lu", "Nd"} <= categories


class PasswordPolicy:
    """Decides whether a password may be set, and how strong it is (bits, log2 of zxcvbn's guesses).

    zxcvbn keeps the user inputs of a call in a module-level dictionary, so calls must not run on several
    threads at once; the identity service calls it on the event loop's thread.
    """

    #: The rule as Barong reports it in ``/configs`` (a Ruby regexp; ours is its Unicode-aware equivalent).
    regexp_text = r"^(?=.*[[:lower:]])(?=.*[[:upper:]])(?=.*[[:digit:]])(?=.*[[:graph:]]).{8,80}$"

    def __init__(self, min_entropy: float = 20.0) -> None:
        self.min_entropy = min_entropy

    def entropy(self, password: str, user_inputs: Sequence[str] = ()) -> float:
        """log2 of the guesses zxcvbn needs for (a prefix of) ``password``, rounded to 2 decimals.

        ``user_inputs`` (the e-mail, the username) count as known words: a password built on them is weak.
        """
        prefix = _scored_prefix(password)
        result = zxcvbn(prefix, user_inputs=_expand_inputs(user_inputs), max_length=MAX_SCORED_CHARS)
        return round(math.log2(result["guesses"]), 2)

    def problems(self, password: str, user_inputs: Sequence[str] = ()) -> list[str]:
        """The error keys that forbid ``password``, ``[]`` when it is acceptable; the rule is checked
        first, and a password failing it is not scored."""
        if not meets_requirements(password):
            return ["password.requirements"]
        if self.entropy(password, user_inputs) < self.min_entropy:
            return ["password.weak"]
        return []
