"""Data path: raw files -> validated frames -> merged catalog -> split -> features -> pairs."""
