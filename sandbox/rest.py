"""Placeholder: routes arrive in a following change."""

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    return []
