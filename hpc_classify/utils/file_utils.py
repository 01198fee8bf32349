"""NeMo Curator's `nemo_curator.utils.file_utils`: `from hpc_classify.utils.file_utils import ...`."""

from hpc_classify.io.discovery import get_all_files_paths_under

__all__ = ["get_all_files_paths_under"]
