"""hpc_classify: label large sharded text corpora with pre-trained transformer classifiers on Dask and Slurm.

The public API mirrors NeMo Curator's distributed data classification:

    from hpc_classify import DocumentDataset, DomainClassifier, get_all_files_paths_under

Names are resolved lazily so that `import hpc_classify` stays light (no torch, no dask) for tools
such as the cluster launcher that only need part of the package.
"""

from __future__ import annotations

import importlib
from typing import Any

from hpc_classify._version import __version__

_EXPORTS = {
    "get_all_files_paths_under": "hpc_classify.io.nemo_files",
    "DocumentDataset": "hpc_classify.datasets",
    "DistributedDataClassifier": "hpc_classify.classifiers",
    "CheckpointClassifier": "hpc_classify.classifiers",
    "DomainClassifier": "hpc_classify.classifiers",
    "QualityClassifier": "hpc_classify.classifiers",
    "MultilingualDomainClassifier": "hpc_classify.classifiers",
    "ContentTypeClassifier": "hpc_classify.classifiers",
    "AegisClassifier": "hpc_classify.classifiers",
    "InstructionDataGuardClassifier": "hpc_classify.classifiers",
    "PromptTaskComplexityClassifier": "hpc_classify.classifiers",
    "FineWebEduClassifier": "hpc_classify.classifiers",
    "FineWebMixtralEduClassifier": "hpc_classify.classifiers",
    "FineWebNemotronEduClassifier": "hpc_classify.classifiers",
    "LoadedComponents": "hpc_classify.classifiers",
    "get_client": "hpc_classify.utils.distributed_utils",
    "start_dask_cpu_local_cluster": "hpc_classify.utils.distributed_utils",
    "start_dask_gpu_local_cluster": "hpc_classify.utils.distributed_utils",
    "read_data": "hpc_classify.utils.distributed_utils",
    "write_to_disk": "hpc_classify.utils.distributed_utils",
    "RunConfig": "hpc_classify.config",
    "RunResult": "hpc_classify.driver.run",
    "run": "hpc_classify.api",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hpc_classify' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
