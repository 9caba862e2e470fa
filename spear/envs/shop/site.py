"""The shop's web pages in text mode: browsing state, rendering and navigation (spec 4.2).

Four pages, as in WebShop: search, results (10 per page), item, and the item's
description. ``clickables`` lists what ``click[...]`` accepts on the current
page; buying is left to the environment, which scores it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from spear.envs.shop.catalog import Product
from spear.envs.shop.search import SearchIndex

Page = Literal["search", "results", "item", "description"]
RESULTS_PER_PAGE = 10
BACK_TO_SEARCH = "back to search"
NEXT_PAGE = "next >"
PREV = "< prev"
DESCRIPTION = "description"
BUY_NOW = "buy now"


@dataclass
class Site:
    """One shopper's session on the shop.

    ``results`` are catalog positions, best first; ``item`` is the catalog
    position of the product being viewed; ``selected`` maps option name -> value;
    ``visited`` (ids of the items opened) and ``searches`` are the session's history.
    ``positions``: results are labelled ``item 1`` .. ``item 10`` by their place on the page
    instead of by product id (the ``product_ids="position"`` option of the environment).
    """

    catalog: tuple[Product, ...]
    index: SearchIndex
    instruction: str
    page: Page = "search"
    query: str = ""
    results: list[int] = field(default_factory=list)
    page_no: int = 0
    item: int | None = None
    selected: dict[str, str] = field(default_factory=dict)
    visited: set[str] = field(default_factory=set)
    searches: int = 0
    positions: bool = False

    @property
    def num_pages(self) -> int:
        return max(1, -(-len(self.results) // RESULTS_PER_PAGE))

    def _shown_positions(self) -> list[int]:
        start = self.page_no * RESULTS_PER_PAGE
        return self.results[start : start + RESULTS_PER_PAGE]

    def shown(self) -> list[Product]:
        """The products listed on the current results page."""
        return [self.catalog[i] for i in self._shown_positions()]

    def label(self, product: Product) -> str:
        """How a listed product is shown and clicked: its place on the page or its id."""
        if self.positions:
            return f"item {[p.id for p in self.shown()].index(product.id) + 1}"
        return product.id

    def product(self) -> Product:
        assert self.item is not None, "no item page is open"
        return self.catalog[self.item]

    def clickables(self) -> list[str]:
        """The targets ``click[...]`` accepts on this page, in page order."""
        if self.page == "search":
            return []
        if self.page == "results":
            nav = [BACK_TO_SEARCH]
            nav += [PREV] if self.page_no > 0 else []
            nav += [NEXT_PAGE] if self.page_no + 1 < self.num_pages else []
            return nav + [self.label(p).lower() for p in self.shown()]
        if self.page == "item":
            values = [v for values in self.product().options.values() for v in values]
            return [BACK_TO_SEARCH, PREV, *values, DESCRIPTION, BUY_NOW]
        return [BACK_TO_SEARCH, PREV]

    def search(self, query: str) -> None:
        self.query = query
        self.searches += 1
        self.results = self.index.search(query)
        self.page_no = 0
        self.page = "results"

    def click(self, target: str) -> None:
        """Follow ``target``, one of :meth:`clickables` other than ``buy now``."""
        if target == BACK_TO_SEARCH:
            self.page, self.query, self.results, self.item = "search", "", [], None
        elif self.page == "results":
            self._click_results(target)
        elif self.page == "item":
            self._click_item(target)
        elif target == PREV:
            self.page = "item"

    def _click_results(self, target: str) -> None:
        if target == NEXT_PAGE:
            self.page_no += 1
        elif target == PREV:
            self.page_no -= 1
        else:
            labels = {self.label(self.catalog[pos]).lower(): pos for pos in self._shown_positions()}
            self.item, self.selected, self.page = labels[target], {}, "item"
            self.visited.add(self.catalog[self.item].id.lower())

    def _click_item(self, target: str) -> None:
        if target == PREV:
            self.page = "results"
        elif target == DESCRIPTION:
            self.page = "description"
        else:
            name = self.product().option_of(target)
            assert name is not None, f"{target!r} is not an option of this item"
            self.selected[name] = target

    def render(self) -> str:
        """The current page as text (WebShop's text mode, shortened)."""
        if self.page == "search":
            return f"Instruction: {self.instruction}\n[Search]"
        if self.page == "results":
            return self._render_results()
        if self.page == "item":
            return self._render_item()
        return f"[Back to Search] [< Prev]\n{self.product().description}"

    def _render_results(self) -> str:
        nav = ["[Back to Search]"]
        nav += ["[< Prev]"] if self.page_no > 0 else []
        nav += ["[Next >]"] if self.page_no + 1 < self.num_pages else []
        header = (
            f'Page {self.page_no + 1} of {self.num_pages} ({len(self.results)} results for "{self.query}")'
        )
        lines = [f"[{self.label(p)}] {p.title} ${p.price:.2f}" for p in self.shown()]
        return "\n".join([" ".join(nav), header, *(lines or ["No products found."])])

    def _render_item(self) -> str:
        p = self.product()
        lines = ["[Back to Search] [< Prev]", p.title, f"Price: ${p.price:.2f}"]
        lines.append("Features: " + ", ".join(sorted(p.attributes)))
        for name, values in p.options.items():
            picked = f" (selected: {self.selected[name]})" if name in self.selected else ""
            lines.append(f"{name}{picked}: " + " ".join(f"[{v}]" for v in values))
        lines.append("[Description] [Buy Now]")
        return "\n".join(lines)
