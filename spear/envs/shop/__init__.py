"""The ``shop`` environment: WebShop-like text shopping over a synthetic catalog (spec 4.2)."""

from spear.envs.shop.env import ShopEnv

__all__ = ["ShopEnv"]
