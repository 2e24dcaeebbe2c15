"""A model source for serving tests: one already-fitted model, handed over as the registry
would hand it (``ModelHolder`` asks a source which version to serve, then loads it)."""

from __future__ import annotations

from pipelines.serve.model import LoadedModel


class StaticSource:
    """Always the same model; ``None``: no model to serve (the holder then stays not ready)."""

    def __init__(self, loaded: LoadedModel | None) -> None:
        self.loaded = loaded

    def resolve(self) -> str | None:
        return self.loaded.version if self.loaded else None

    def load(self, version: str) -> LoadedModel:
        assert self.loaded is not None, "nothing to load: the source holds no model"
        return self.loaded
