"""Attacks of the catalogue (see catalogue.py); this family is being written."""
from __future__ import annotations
