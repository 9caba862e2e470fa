"""BM25 product search for the shop environment (spec 4.2), served by ``bm25s``.

Documents are a product's title, attributes and description. Text is
lower-cased, punctuation becomes a word break, and English stop words are
dropped, for documents and queries alike.
"""

from __future__ import annotations

import re
from functools import lru_cache

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from spear.envs.shop.catalog import Product, build_catalog

MAX_RESULTS = 50
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(STOPWORDS_EN)


def tokenize(text: str) -> list[str]:
    """Lower-case ``text`` and split it into alphanumeric words, without stop words."""
    return [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


def product_document(product: Product) -> str:
    return " ".join([product.title, *sorted(product.attributes), product.description])


class SearchIndex:
    """A BM25 index over a catalog; ``search`` returns catalog positions, best first."""

    def __init__(self, products: tuple[Product, ...]) -> None:
        self._bm25 = bm25s.BM25()
        self._bm25.index([tokenize(product_document(p)) for p in products], show_progress=False)

    def search(self, query: str, limit: int = MAX_RESULTS) -> list[int]:
        """Positions of the (at most ``limit``) products that share a word with ``query``.

        Ties keep catalog order, so results are deterministic.
        """
        tokens = tokenize(query)
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        order = np.argsort(-scores, kind="stable")[:limit]
        return [int(i) for i in order if scores[i] > 0]


@lru_cache(maxsize=8)
def catalog_index(seed: int, num_products: int) -> SearchIndex:
    """The (cached) index of ``build_catalog(seed, num_products)``."""
    return SearchIndex(build_catalog(seed, num_products))
