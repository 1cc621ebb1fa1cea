"""Maintenance scripts that regenerate the emulator's recorded ground truth from the real wheel."""
