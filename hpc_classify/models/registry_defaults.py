"""Default hub ids of the built-in classifiers (models layer, so that fetch-models and classifiers share them)."""

from __future__ import annotations

DEFAULT_MODELS: dict[str, str] = {
    "domain": "nvidia/domain-classifier",
    "quality": "nvidia/quality-classifier-deberta",
    "multilingual-domain": "nvidia/multilingual-domain-classifier",
    "content-type": "nvidia/content-type-classifier-deberta",
    "prompt-task-complexity": "nvidia/prompt-task-and-complexity-classifier",
    "fineweb-edu": "HuggingFaceFW/fineweb-edu-classifier",
    "fineweb-mixtral-edu": "nvidia/nemocurator-fineweb-mixtral-edu-classifier",
    "fineweb-nemotron-edu": "nvidia/nemocurator-fineweb-nemotron-4-edu-classifier",
}

# Classifiers made of several repositories (a LlamaGuard base, a LoRA adapter, a guard net): fetch-models
# fetches each (hpc_classify.models.llama_guard says which files).
BUNDLED_MODELS: tuple[str, ...] = ("aegis", "aegis-permissive", "instruction-data-guard")
