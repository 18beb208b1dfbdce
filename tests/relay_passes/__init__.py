"""Tests of the relay_passes package (Relax passes for PLA)."""
