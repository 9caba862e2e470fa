"""A seeded synthetic product catalog for the shop environment (spec 4.2).

WebShop draws on scraped product data that is not available offline; this
catalog is generated instead from :mod:`spear.envs.shop.vocab`. It is a pure
function of ``(seed, num_products, product_ids)`` and is built once per process.

Product ids come in two styles (docs/envs/shop.md, "Product ids for small models"): ``asin``, WebShop's
10-character ``B0XXXXXXXX`` shown upper-case and clicked lower-case, and ``short``, a
4-digit number shown and clicked as is, for models too small to copy a random string. Both
styles give the same products in the same order; only the ids differ.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

from spear.envs.shop.vocab import (
    BRAND_HEADS,
    BRAND_TAILS,
    CATEGORIES,
    DESCRIPTION_CLOSERS,
    TITLE_MODIFIERS,
    Category,
)

DEFAULT_CATALOG_SEED = 20240917
DEFAULT_NUM_PRODUCTS = 1200
_ID_CHARS = string.ascii_uppercase + string.digits
ProductIds = Literal["asin", "short"]
CATALOG_ID_STYLES: tuple[str, ...] = ("asin", "short")
PRODUCT_ID_STYLES: tuple[str, ...] = (*CATALOG_ID_STYLES, "position")  # ShopEnv's option


@dataclass(frozen=True)
class Product:
    """One product.

    ``id`` is ASIN-like (``B0`` + 8 characters) or a 4-digit number; ``attributes`` are the material
    and features; ``options`` maps an option name to the values one can select.
    """

    id: str
    title: str
    category: str
    attributes: frozenset[str]
    options: dict[str, tuple[str, ...]]
    price: float
    description: str

    def option_of(self, value: str) -> str | None:
        """The option name that ``value`` belongs to, or None."""
        for name, values in self.options.items():
            if value in values:
                return name
        return None


def _product_id(rng: random.Random, taken: set[str]) -> str:
    while True:
        pid = "B0" + "".join(rng.choice(_ID_CHARS) for _ in range(8))
        if pid not in taken:
            taken.add(pid)
            return pid


def _pick_in_order(rng: random.Random, values: tuple[str, ...], low: int) -> tuple[str, ...]:
    """A random subset of at least ``low`` values, kept in vocabulary order (sizes stay sorted)."""
    chosen = set(rng.sample(values, rng.randint(min(low, len(values)), len(values))))
    return tuple(v for v in values if v in chosen)


def _make_product(rng: random.Random, category: Category, pid: str) -> Product:
    material = rng.choice(category.materials)
    features = rng.sample(category.features, rng.randint(1, 3))
    options = {name: _pick_in_order(rng, values, 2) for name, values in category.options}
    low, high = category.price
    price = round(int(rng.uniform(low, high)) + rng.choice((0.49, 0.99, 0.0)), 2)
    brand = (rng.choice(BRAND_HEADS) + rng.choice(BRAND_TAILS)).capitalize()
    # The title shows the material and the first feature; the rest is on the item page.
    words = [brand, rng.choice(TITLE_MODIFIERS), features[0], material, category.noun]
    title = " ".join(w.title() if w != brand else w for w in words)
    first_option, first_values = next(iter(options.items()))
    description = (
        f"This {material} {category.noun} is {' and '.join(features)}. "
        f"Available in {first_option} {', '.join(first_values)}. {rng.choice(DESCRIPTION_CLOSERS)}"
    )
    return Product(
        id=pid,
        title=title,
        category=category.noun,
        attributes=frozenset([material, *features]),
        options=options,
        price=price,
        description=description,
    )


def _short_ids(seed: int, num_products: int) -> list[str]:
    """Distinct 4-digit ids in random order (their own random stream: the products stay those
    of the ``asin`` style, and an id says nothing about a product's category or position)."""
    return [str(n) for n in random.Random(f"shop-short-ids:{seed}").sample(range(1000, 10000), num_products)]


@lru_cache(maxsize=8)
def build_catalog(
    seed: int = DEFAULT_CATALOG_SEED,
    num_products: int = DEFAULT_NUM_PRODUCTS,
    product_ids: ProductIds = "asin",
) -> tuple[Product, ...]:
    """The catalog of ``seed``: ``num_products`` products, categories in rotation.

    Raises:
        ValueError: ``num_products`` is not a positive integer (at most 9,000 with short ids),
            or ``product_ids`` is not ``"asin"`` or ``"short"``.
    """
    if isinstance(num_products, bool) or not isinstance(num_products, int) or num_products < 1:
        raise ValueError(f"num_products must be a positive integer, got {num_products!r}")
    if product_ids not in CATALOG_ID_STYLES:
        raise ValueError(f"product_ids must be one of {', '.join(CATALOG_ID_STYLES)}, got {product_ids!r}")
    if product_ids == "short" and num_products > 9000:
        raise ValueError(f"short product ids have 4 digits: num_products must be <= 9000, got {num_products}")
    rng = random.Random(f"shop-catalog:{seed}")
    taken: set[str] = set()
    products = tuple(
        _make_product(rng, CATEGORIES[i % len(CATEGORIES)], _product_id(rng, taken))
        for i in range(num_products)
    )
    if product_ids == "short":
        products = tuple(
            replace(p, id=pid) for p, pid in zip(products, _short_ids(seed, num_products), strict=True)
        )
    return products
