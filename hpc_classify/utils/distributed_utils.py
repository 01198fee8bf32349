"""NeMo Curator's `nemo_curator.utils.distributed_utils`: the reading/writing helpers and the client starters.

`from hpc_classify.utils.distributed_utils import get_client, read_data, write_to_disk` works as NeMo's.
"""

from hpc_classify.cluster.nemo_client import (
    get_client,
    start_dask_cpu_local_cluster,
    start_dask_gpu_local_cluster,
)
from hpc_classify.datasets.reading import read_data, select_columns
from hpc_classify.datasets.writing import write_to_disk

__all__ = [
    "get_client",
    "read_data",
    "select_columns",
    "start_dask_cpu_local_cluster",
    "start_dask_gpu_local_cluster",
    "write_to_disk",
]
