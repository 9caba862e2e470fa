"""The scripted expert's Python programs, one per task (docs/envs/math.md).

Each function turns a problem (a reasoning-gym entry: its question, never the answer)
into code that computes the answer and prints it as ``\\boxed{...}``. The code runs in
the sandbox like any model-written code.

Every program reads the question's numbers from a string ``question`` with a regular
expression and ends by printing the boxed answer. By default (``paste=True``) it first
pastes the question's first line into that string, so every number a model writes follows
the tokens it followed in the question, and copying it is what induction heads do (the
token that followed the same context before), where ``math.gcd(5242, 8544)`` asks the
model to find the question's first number with no token before it in common. With
``paste=False`` (``MathEnv(question_in_sandbox=True)``) the sandbox defines ``question``
and the program holds no number of the question at all. Either way the final answer
follows the same ``\\boxed{`` cue in the tool output and in the answer. The embedded model
copies neither the first number nor the printed answer (docs/envs/math.md has the
measurements).
"""

from __future__ import annotations

from typing import Any

# Python source fragments (the backslashes are the program's own).
_NUMBERS = 'numbers = [int(n) for n in re.findall(r"\\d+", question)]\n'
_PRINT = 'print(f"\\\\boxed{{{answer}}}")\n'

# Exact rational arithmetic: "/" must not turn into a rounded float.
_ARITHMETIC = """\
expression = re.sub(r"[^0-9+\\-*/() ]", "", question)
answer = eval(re.sub(r"\\d+", lambda m: f"Fraction({m.group()})", expression))
"""

_COUNTDOWN = '''\
def solve(items, target):
    """Combine two of the (value, expression) items at a time until one is left."""
    if len(items) == 1:
        return items[0][1] if items[0][0] == target else None
    for i, j in combinations(range(len(items)), 2):
        (a, x), (b, y) = items[i], items[j]
        rest = [item for k, item in enumerate(items) if k not in (i, j)]
        options = [(a + b, f"({x} + {y})"), (a * b, f"({x} * {y})"),
                   (a - b, f"({x} - {y})"), (b - a, f"({y} - {x})")]
        if b:
            options.append((a / b, f"({x} / {y})"))
        if a:
            options.append((b / a, f"({y} / {x})"))
        for value, expression in options:
            found = solve([*rest, (value, expression)], target)
            if found:
                return found
    return None


'''

# the numbers to use are the comma-separated run; the target is the number outside it
_COUNTDOWN_SOLVE = """\
listed = re.search(r"\\d+(?:, \\d+)+", question).group()
numbers = [int(n) for n in listed.split(", ")]
target = int(re.findall(r"\\d+", question.replace(listed, "", 1))[0])
expression = solve([(Fraction(n), str(n)) for n in numbers], target)
answer = expression[1:-1] if expression.startswith("(") else expression
"""

_PRIME_FACTORS = """\
n = numbers[0]
factors = []
d = 2
while d * d <= n:
    while n % d == 0:
        factors.append(d)
        n //= d
    d += 1
if n > 1:
    factors.append(n)
answer = " × ".join(map(str, factors))
"""

_COUNT_PRIMES = """\
start, end = numbers[:2]
is_prime = [False, False] + [True] * (end - 1)
for i in range(2, math.isqrt(end) + 1):
    if is_prime[i]:
        for j in range(i * i, end + 1, i):
            is_prime[j] = False
answer = sum(is_prime[start : end + 1])
"""


def _program(entry: dict[str, Any], imports: str, body: str, *, paste: bool, definitions: str = "") -> str:
    """``imports``, ``definitions``, the question line if ``paste``, ``body`` (sets ``answer``), the print."""
    line = str(entry["question"]).strip().splitlines()[0]
    question = f"question = {line!r}\n" if paste else ""
    return f"{imports}\n{definitions}{question}{body}{_PRINT}"


def arithmetic(entry: dict[str, Any], *, paste: bool = True) -> str:
    """``basic_arithmetic`` and ``chain_sum``: the question's expression, evaluated exactly."""
    return _program(entry, "import re\nfrom fractions import Fraction\n", _ARITHMETIC, paste=paste)


def countdown(entry: dict[str, Any], *, paste: bool = True) -> str:
    imports = "import re\nfrom fractions import Fraction\nfrom itertools import combinations\n\n"
    return _program(entry, imports, _COUNTDOWN_SOLVE, paste=paste, definitions=_COUNTDOWN)


def gcd(entry: dict[str, Any], *, paste: bool = True) -> str:
    body = _NUMBERS + "answer = math.gcd(*numbers)\n"
    return _program(entry, "import math\nimport re\n", body, paste=paste)


def lcm(entry: dict[str, Any], *, paste: bool = True) -> str:
    body = _NUMBERS + "answer = math.lcm(*numbers)\n"
    return _program(entry, "import math\nimport re\n", body, paste=paste)


def prime_factorization(entry: dict[str, Any], *, paste: bool = True) -> str:
    return _program(entry, "import re\n", _NUMBERS + _PRIME_FACTORS, paste=paste)


def count_primes(entry: dict[str, Any], *, paste: bool = True) -> str:
    return _program(entry, "import math\nimport re\n", _NUMBERS + _COUNT_PRIMES, paste=paste)
