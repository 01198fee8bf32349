"""NeMo Curator's `nemo_curator.utils` module paths: `distributed_utils` and `file_utils`."""
