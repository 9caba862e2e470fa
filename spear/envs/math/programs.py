"""The scripted expert's Python programs, one per task (docs/envs/math.md).

Each function turns a problem (a reasoning-gym entry: question and metadata, never
the answer) into code that computes and prints the answer in the task's format.
The code runs in the sandbox like any model-written code.
"""

from __future__ import annotations

from typing import Any

_COUNTDOWN = '''\
from fractions import Fraction
from itertools import combinations


def solve(items, target):
    """Combine two of the (value, expression) items at a time until one is left."""
    if len(items) == 1:
        return items[0][1] if items[0][0] == target else None
    for i, j in combinations(range(len(items)), 2):
        (a, x), (b, y) = items[i], items[j]
        rest = [item for k, item in enumerate(items) if k not in (i, j)]
        options = [(a + b, f"({{x}} + {{y}})"), (a * b, f"({{x}} * {{y}})"),
                   (a - b, f"({{x}} - {{y}})"), (b - a, f"({{y}} - {{x}})")]
        if b:
            options.append((a / b, f"({{x}} / {{y}})"))
        if a:
            options.append((b / a, f"({{y}} / {{x}})"))
        for value, expression in options:
            found = solve([*rest, (value, expression)], target)
            if found:
                return found
    return None


numbers = {numbers!r}
expression = solve([(Fraction(n), str(n)) for n in numbers], {target})
print(expression[1:-1] if expression and expression.startswith("(") else expression)
'''

_PRIME_FACTORS = """\
n = {number}
factors = []
d = 2
while d * d <= n:
    while n % d == 0:
        factors.append(d)
        n //= d
    d += 1
if n > 1:
    factors.append(n)
print(" × ".join(map(str, factors)))
"""

_COUNT_PRIMES = """\
import math

start, end = {start}, {end}
is_prime = [False, False] + [True] * (end - 1)
for i in range(2, math.isqrt(end) + 1):
    if is_prime[i]:
        for j in range(i * i, end + 1, i):
            is_prime[j] = False
print(sum(is_prime[start : end + 1]))
"""

_EXACT_ARITHMETIC = """\
import re
from fractions import Fraction

expression = {expression!r}
# exact rational arithmetic: "/" must not turn into a rounded float
print(eval(re.sub(r"\\d+", lambda m: f"Fraction({{m.group()}})", expression)))
"""


def basic_arithmetic(entry: dict[str, Any]) -> str:
    return _EXACT_ARITHMETIC.format(expression=entry["metadata"]["expression"])


def chain_sum(entry: dict[str, Any]) -> str:
    return f"print({entry['metadata']['expression']})\n"


def countdown(entry: dict[str, Any]) -> str:
    meta = entry["metadata"]
    return _COUNTDOWN.format(numbers=list(meta["numbers"]), target=int(meta["target"]))


def gcd(entry: dict[str, Any]) -> str:
    return f"import math\n\nprint(math.gcd(*{list(entry['metadata']['numbers'])!r}))\n"


def lcm(entry: dict[str, Any]) -> str:
    return f"import math\n\nprint(math.lcm(*{list(entry['metadata']['numbers'])!r}))\n"


def prime_factorization(entry: dict[str, Any]) -> str:
    return _PRIME_FACTORS.format(number=int(entry["metadata"]["number"]))


def count_primes(entry: dict[str, Any]) -> str:
    meta = entry["metadata"]
    return _COUNT_PRIMES.format(start=int(meta["start"]), end=int(meta["end"]))
