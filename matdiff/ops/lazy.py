"""Modules imported on first use, so that declaring operators (done whenever matdiff parses
anything) costs nothing: numpy, scipy and mpmath load only when a value is computed."""

from __future__ import annotations

import importlib


class Lazy:
    def __init__(self, module: str):
        self._name = module
        self._module = None

    def __getattr__(self, attr: str):
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


np = Lazy("numpy")
special = Lazy("scipy.special")
