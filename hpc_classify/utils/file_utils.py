"""NeMo Curator's `nemo_curator.utils.file_utils`: `from hpc_classify.utils.file_utils import ...`.

NeMo's `separate_by_metadata` is not here: see docs/nemo-differences.md for what to use instead.
"""

from hpc_classify.io.nemo_files import (
    expand_outdir_and_mkdir,
    filter_files_by_extension,
    get_all_files_paths_under,
    get_batched_files,
    get_remaining_files,
)

__all__ = [
    "expand_outdir_and_mkdir",
    "filter_files_by_extension",
    "get_all_files_paths_under",
    "get_batched_files",
    "get_remaining_files",
]
