"""NeMo Curator's `nemo_curator.utils.file_utils`: `from hpc_classify.utils.file_utils import ...`.

Every public name of NeMo Curator 0.7.1's module; where they behave differently: docs/nemo-differences.md.
"""

from hpc_classify.datasets.by_metadata import separate_by_metadata, write_dataframe_by_meta
from hpc_classify.datasets.reshard import reshard_jsonl
from hpc_classify.io.nemo_file_helpers import (
    NEMO_CURATOR_HOME,
    merge_counts,
    mkdir,
    parse_str_of_num_bytes,
    remove_path_extension,
    write_record,
)
from hpc_classify.io.nemo_files import (
    expand_outdir_and_mkdir,
    filter_files_by_extension,
    get_all_files_paths_under,
    get_batched_files,
    get_remaining_files,
)

__all__ = [
    "NEMO_CURATOR_HOME",
    "expand_outdir_and_mkdir",
    "filter_files_by_extension",
    "get_all_files_paths_under",
    "get_batched_files",
    "get_remaining_files",
    "merge_counts",
    "mkdir",
    "parse_str_of_num_bytes",
    "remove_path_extension",
    "reshard_jsonl",
    "separate_by_metadata",
    "write_dataframe_by_meta",
    "write_record",
]
