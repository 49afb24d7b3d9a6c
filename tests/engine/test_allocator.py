"""The malloc tuning the neurolearn command applies at start-up."""

from __future__ import annotations

import platform

import pytest

from neurolearn_cli.engine.allocator import keep_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt thresholds exist in glibc only")
def test_glibc_accepts_the_thresholds() -> None:
    assert keep_freed_memory() is True
