"""The shop's own product vocabulary (spec 4.2: a WebShop-like catalog, written for spear).

Each category lists the words a product of that kind can be described with:
one material, a few features, and the purchasable options (name -> values) with
category-appropriate values. Option values are lower-case because ReAct actions
are lower-cased before they are matched (``click[<value>]``).
"""

from __future__ import annotations

from dataclasses import dataclass

_COLORS = ("black", "white", "gray", "navy", "red", "green", "blue", "pink")
_APPAREL_SIZES = ("xs", "s", "m", "l", "xl", "xxl")
_SHOE_SIZES = ("6", "7", "8", "9", "10", "11", "12")


@dataclass(frozen=True)
class Category:
    """One kind of product.

    ``price`` is the (low, high) dollar range prices are drawn from.
    """

    noun: str
    materials: tuple[str, ...]
    features: tuple[str, ...]
    options: tuple[tuple[str, tuple[str, ...]], ...]
    price: tuple[float, float]


CATEGORIES: tuple[Category, ...] = (
    Category(
        "t-shirt",
        ("cotton", "polyester", "linen", "bamboo", "organic cotton"),
        ("slim fit", "crew neck", "v neck", "short sleeve", "long sleeve", "moisture wicking"),
        (("color", _COLORS), ("size", _APPAREL_SIZES)),
        (8.0, 35.0),
    ),
    Category(
        "jeans",
        ("denim", "stretch denim", "cotton"),
        ("slim fit", "straight leg", "high waist", "bootcut", "relaxed fit", "button fly"),
        (("color", ("light blue", "dark blue", "black", "gray")), ("size", ("28", "30", "32", "34", "36"))),
        (25.0, 90.0),
    ),
    Category(
        "sneakers",
        ("leather", "mesh", "canvas", "suede"),
        ("non slip", "lightweight", "breathable", "memory foam", "lace up", "waterproof"),
        (("color", ("white", "black", "gray", "blue", "red")), ("size", _SHOE_SIZES)),
        (30.0, 140.0),
    ),
    Category(
        "hiking boots",
        ("leather", "suede", "nylon"),
        ("waterproof", "non slip", "ankle support", "insulated", "lace up", "lightweight"),
        (("color", ("brown", "black", "tan", "olive")), ("size", _SHOE_SIZES)),
        (50.0, 200.0),
    ),
    Category(
        "hoodie",
        ("cotton", "fleece", "polyester"),
        ("zip up", "pullover", "machine washable", "kangaroo pocket", "relaxed fit", "heavyweight"),
        (("color", _COLORS), ("size", _APPAREL_SIZES)),
        (20.0, 70.0),
    ),
    Category(
        "dress",
        ("cotton", "linen", "silk", "polyester", "chiffon"),
        ("sleeveless", "a line", "maxi", "floral", "v neck", "with pockets"),
        (("color", ("black", "white", "red", "navy", "pink", "yellow")), ("size", _APPAREL_SIZES)),
        (20.0, 120.0),
    ),
    Category(
        "rain jacket",
        ("nylon", "polyester", "recycled polyester"),
        ("waterproof", "hooded", "packable", "breathable", "windproof", "lightweight"),
        (("color", ("black", "navy", "yellow", "olive", "red")), ("size", _APPAREL_SIZES)),
        (30.0, 150.0),
    ),
    Category(
        "socks",
        ("cotton", "wool", "merino wool", "bamboo"),
        ("cushioned", "moisture wicking", "ankle", "crew", "compression", "breathable"),
        (("color", ("black", "white", "gray", "navy")), ("size", ("s", "m", "l"))),
        (6.0, 30.0),
    ),
    Category(
        "mug",
        ("ceramic", "stainless steel", "glass", "porcelain"),
        ("dishwasher safe", "microwave safe", "insulated", "with lid", "handmade", "leak proof"),
        (("color", ("white", "black", "blue", "green", "pink")), ("capacity", ("12 oz", "16 oz", "20 oz"))),
        (6.0, 30.0),
    ),
    Category(
        "water bottle",
        ("stainless steel", "plastic", "glass", "aluminum"),
        ("insulated", "leak proof", "bpa free", "dishwasher safe", "with straw", "wide mouth"),
        (("color", ("black", "white", "blue", "green", "purple")), ("capacity", ("16 oz", "24 oz", "32 oz"))),
        (10.0, 45.0),
    ),
    Category(
        "backpack",
        ("nylon", "canvas", "leather", "polyester"),
        (
            "waterproof",
            "laptop compartment",
            "lightweight",
            "anti theft",
            "usb charging port",
            "padded straps",
        ),
        (("color", ("black", "gray", "navy", "olive", "red")), ("size", ("small", "medium", "large"))),
        (20.0, 120.0),
    ),
    Category(
        "headphones",
        ("plastic", "aluminum", "leather"),
        ("wireless", "noise cancelling", "bluetooth", "over ear", "foldable", "built in microphone"),
        (("color", ("black", "white", "silver", "blue", "rose gold")),),
        (20.0, 250.0),
    ),
    Category(
        "desk lamp",
        ("metal", "wood", "plastic", "aluminum"),
        ("dimmable", "led", "usb charging port", "adjustable arm", "touch control", "energy efficient"),
        (
            ("color", ("black", "white", "silver", "gold")),
            ("light", ("warm white", "cool white", "daylight")),
        ),
        (15.0, 80.0),
    ),
    Category(
        "yoga mat",
        ("tpe", "pvc", "natural rubber", "cork"),
        ("non slip", "extra thick", "eco friendly", "carrying strap", "lightweight", "reversible"),
        (("color", ("purple", "blue", "black", "pink", "green")), ("thickness", ("4 mm", "6 mm", "8 mm"))),
        (15.0, 70.0),
    ),
    Category(
        "phone case",
        ("silicone", "leather", "plastic", "tpu"),
        ("shockproof", "slim", "wireless charging", "kickstand", "card holder", "clear back"),
        (
            ("color", ("black", "blue", "red", "green", "pink")),
            ("model", ("iphone 14", "iphone 15", "galaxy s23", "pixel 8")),
        ),
        (8.0, 40.0),
    ),
    Category(
        "watch",
        ("stainless steel", "leather", "silicone", "titanium"),
        ("waterproof", "heart rate monitor", "gps", "analog", "digital", "sleep tracking"),
        (("color", ("black", "silver", "gold", "rose gold")), ("size", ("38 mm", "42 mm", "46 mm"))),
        (25.0, 300.0),
    ),
    Category(
        "pillow",
        ("memory foam", "down", "cotton", "bamboo"),
        ("hypoallergenic", "cooling", "machine washable", "firm", "soft", "adjustable loft"),
        (("color", ("white", "gray", "blue")), ("size", ("standard", "queen", "king"))),
        (15.0, 90.0),
    ),
    Category(
        "sunglasses",
        ("metal", "plastic", "acetate"),
        ("polarized", "uv protection", "lightweight", "aviator", "round", "scratch resistant"),
        (
            ("color", ("black", "tortoise", "gold", "silver")),
            ("lens", ("gray lens", "brown lens", "green lens")),
        ),
        (10.0, 160.0),
    ),
)

# Made-up brand names: two halves joined, so brands add realistic noise to titles and search.
BRAND_HEADS = ("north", "blue", "iron", "silver", "oak", "maple", "stone", "river", "cedar", "swift")
BRAND_TAILS = ("peak", "field", "line", "craft", "works", "loom", "nest", "gear")

# Title words that carry no goal information (they make titles of similar items differ).
TITLE_MODIFIERS = ("classic", "premium", "everyday", "essential", "modern", "unisex", "travel", "signature")

DESCRIPTION_CLOSERS = (
    "Backed by a one year warranty.",
    "Ships in recyclable packaging.",
    "Designed for daily use.",
    "A great gift idea.",
    "Easy to care for.",
    "Made to last.",
)
