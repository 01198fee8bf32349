"""A user's own package, as a lab would write it: importable classifiers for `--classifier mylab.toxicity:...`.

Tests put `tests/user_package` on PYTHONPATH (driver, Dask workers and Slurm jobs alike)."""
