"""Shopping goals and the WebShop-style purchase score (spec 4.2).

A goal is generated from a target product but defined by what it asks for: a
category, some of the target's attributes, one value per option, and a price
bound above the target's price. Any product that satisfies all of these wins.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from spear.envs.shop.catalog import Product


@dataclass(frozen=True)
class Goal:
    """What the shopper asks for; ``options`` are (name, value) pairs sorted by name."""

    category: str
    attributes: frozenset[str]
    options: tuple[tuple[str, str], ...]
    price_bound: float
    instruction: str

    @property
    def signature(self) -> str:
        """Canonical text of the goal (independent of the instruction's wording)."""
        opts = ";".join(f"{name}={value}" for name, value in self.options)
        return f"{self.category}|{','.join(sorted(self.attributes))}|{opts}|<{self.price_bound:.2f}"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _instruction(
    rng: random.Random, category: str, attributes: list[str], options: list[tuple[str, str]], bound: float
) -> str:
    opts = " and ".join(f"{name}: {value}" for name, value in options)
    price = f"price lower than {bound:.2f} dollars"
    described = " ".join([*attributes, category])
    qualities = " and ".join(attributes)
    templates = (
        f"i need {_article(described)} {described} with {opts}, and {price}",
        f"i am looking for {_article(category)} {category} that is {qualities}, with {opts}, and {price}",
        f"find me {_article(described)} {described} in {opts}, and {price}",
    )
    return rng.choice(templates)


def sample_goal(rng: random.Random, catalog: tuple[Product, ...]) -> Goal:
    """Draw a goal from a random target product of ``catalog``."""
    target = rng.choice(catalog)
    attrs = sorted(target.attributes)
    wanted = rng.sample(attrs, rng.randint(1, len(attrs)))
    options = sorted((name, rng.choice(values)) for name, values in target.options.items())
    # A round bound 10-80% above the price, like WebShop's "lower than 40.00 dollars".
    bound = float(math.ceil(target.price * rng.uniform(1.1, 1.8) / 10.0) * 10)
    return Goal(
        category=target.category,
        attributes=frozenset(wanted),
        options=tuple(options),
        price_bound=bound,
        instruction=_instruction(rng, target.category, wanted, options, bound),
    )


def satisfies(goal: Goal, product: Product) -> bool:
    """Whether buying ``product`` with the goal's option values selected scores 1."""
    return (
        product.category == goal.category
        and goal.attributes <= product.attributes
        and all(value in product.options.get(name, ()) for name, value in goal.options)
        and product.price <= goal.price_bound
    )


def purchase_score(goal: Goal, product: Product, selected: Mapping[str, str]) -> float:
    """WebShop-style match score in [0, 1] of buying ``product`` with options ``selected``.

    ``r_type * (attribute hits + option hits + 1[price <= bound]) / (|attributes| + |options| + 1)``,
    with ``r_type`` = 1 if the category matches, else 0.
    """
    if product.category != goal.category:
        return 0.0
    attribute_hits = len(goal.attributes & product.attributes)
    option_hits = sum(selected.get(name) == value for name, value in goal.options)
    price_ok = int(product.price <= goal.price_bound)
    return (attribute_hits + option_hits + price_ok) / (len(goal.attributes) + len(goal.options) + 1)
