"""Helpers for the browser test: Debian's Chromium driven by Playwright, and the real app served live."""
