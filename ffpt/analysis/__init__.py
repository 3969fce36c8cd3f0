"""Analysis of trained models: rigid PES scans and the hole finder (``ffpt scan``).

Kept light: import :mod:`ffpt.analysis.scan` (``find_holes``, ``water_scans``, ...) and
:mod:`ffpt.analysis.scan_report` (CSV/Markdown/PNG) directly.
"""
