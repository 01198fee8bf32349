"""NeMo Curator's `nemo_curator.utils.distributed_utils`: the reading/writing helpers and the client starters.

`from hpc_classify.utils.distributed_utils import get_client, read_data, write_to_disk` works as NeMo's, and so do
NeMo's lower-level helpers `read_data_blocksize`, `read_data_files_per_partition`, `read_single_partition` and
`single_partition_write_with_filename`, and its worker helpers `load_object_on_worker` (with `NoWorkerError`),
`get_num_workers` and `get_current_client`.
"""

from hpc_classify.cluster.nemo_client import (
    get_client,
    start_dask_cpu_local_cluster,
    start_dask_gpu_local_cluster,
)
from hpc_classify.cluster.worker_objects import (
    NoWorkerError,
    get_current_client,
    get_num_workers,
    load_object_on_worker,
)
from hpc_classify.datasets.nemo_helpers import (
    read_data_blocksize,
    read_data_files_per_partition,
    read_single_partition,
    single_partition_write_with_filename,
)
from hpc_classify.datasets.reading import read_data, select_columns
from hpc_classify.datasets.writing import write_to_disk

__all__ = [
    "NoWorkerError",
    "get_client",
    "get_current_client",
    "get_num_workers",
    "load_object_on_worker",
    "read_data",
    "read_data_blocksize",
    "read_data_files_per_partition",
    "read_single_partition",
    "select_columns",
    "single_partition_write_with_filename",
    "start_dask_cpu_local_cluster",
    "start_dask_gpu_local_cluster",
    "write_to_disk",
]
