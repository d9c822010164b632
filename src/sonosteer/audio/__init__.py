"""Offline audio analysis: audio file -> analysis bundle on disk (design.md contract 1)."""
