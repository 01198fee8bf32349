"""Classifiers backed by a checkpoint in the public NVIDIA layout (hub id or local directory)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpc_classify.classifiers.base import DistributedDataClassifier, LoadedComponents
from hpc_classify.classifiers.inherited_keywords import inherited_keywords
from hpc_classify.models.hub_pins import HubPins

if TYPE_CHECKING:
    import torch


class CheckpointClassifier(DistributedDataClassifier):
    """A `DistributedDataClassifier` whose model, tokenizer and labels come from one checkpoint."""

    def __init__(self, model: str, *, revision: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.model = str(model)
        self.revision = revision
        # Pickled with the object: the workers load the commit the driver resolved and fingerprinted.
        self._hub_pins = HubPins()

    def _model_dir(self):
        from hpc_classify.models.hub import resolve_model_dir

        return self._hub_pins.resolve(resolve_model_dir, self.model, self.revision)

    def _load_revision(self) -> str | None:
        """The revision for the loaders that resolve the model themselves: the commit `_model_dir` pinned."""
        from hpc_classify.models.hub import resolve_model_dir

        return self._hub_pins.revision(resolve_model_dir, self.model, self.revision)

    def pin_models(self) -> None:
        self._load_revision()

    def load_labels(self) -> list[str]:
        # config.json only: the driver asks for labels without loading any weights.
        from hpc_classify.models.checkpoint_meta import labels_from_config
        from hpc_classify.models.hub import read_json_file

        config = read_json_file(self._model_dir() / "config.json", f"classifier {self.model}")

        return labels_from_config(config, source=self.model)

    def load_components(self, device: torch.device) -> LoadedComponents:
        from hpc_classify.models.checkpoint import load_classifier_checkpoint

        loaded = load_classifier_checkpoint(self.model, revision=self._load_revision(), device=device)
        self._checkpoint_hash = loaded.checkpoint_hash
        return LoadedComponents(loaded.model, loaded.tokenizer, loaded.labels)

    def load_model(self, device: torch.device) -> torch.nn.Module:
        return self.load_components(device).model

    def load_tokenizer(self) -> Any:
        from hpc_classify.models.checkpoint import load_checkpoint_tokenizer

        return load_checkpoint_tokenizer(self._model_dir())

    def engine(self) -> tuple[Any, list[str]]:
        self._load_revision()  # pinned before engine_key names the commit: one key from the first call
        return super().engine()

    def engine_key(self) -> tuple:
        # One engine per commit: a worker process that outlives a run must not serve the next run, pinned to
        # a newer commit of the same hub id, with the older engine.
        return (*super().engine_key(), self._hub_pins.pinned(self.model, self.revision))

    def model_identity(self) -> dict[str, Any]:
        return {"model": self.model, "revision": self.revision}

    def model_fingerprint(self) -> dict[str, Any]:
        """The checkpoint as resolved, not as typed: a local directory by its real path (`./ckpt` and
        `/abs/ckpt/` are one model), a hub id by the snapshot's commit (no --revision and --revision <that
        commit> are one model); plus the hashes of its weights, its configuration and its tokenizer files."""
        from hpc_classify.models.checkpoint_meta import checkpoint_hash, config_hash, tokenizer_hash
        from hpc_classify.models.hub import snapshot_commit

        model_dir = self._model_dir()
        commit = snapshot_commit(self.model, model_dir)  # None for a local directory
        return {
            "model": self.model if commit else str(model_dir),
            "revision": commit,
            "checkpoint_hash": checkpoint_hash(model_dir),
            "config_hash": config_hash(model_dir),
            "tokenizer_hash": tokenizer_hash(model_dir),
        }


@inherited_keywords
class _NemoCheckpointClassifier(CheckpointClassifier):
    """NeMo Curator's classifier signature: its arguments, in its order, positionally; then ours, keyword-only
    (`model`, `revision` and the engine options). Subclasses restate the positional part with their defaults."""

    default_pred_column = "domain_pred"
    default_model_key = "domain"

    def __init__(
        self,
        filter_by: str | list[str] | None = None,
        batch_size: int = 256,
        text_field: str = "text",
        pred_column: str = "domain_pred",
        prob_column: str | None = None,
        max_chars: int = 2000,
        device_type: str = "auto",
        autocast: bool = True,
        max_mem_gb: int | None = None,
        *,
        model: str | None = None,
        revision: str | None = None,
        **inherited: Any,
    ):
        from hpc_classify.models.registry_defaults import DEFAULT_MODELS

        super().__init__(
            model or DEFAULT_MODELS[self.default_model_key],
            revision=revision,
            filter_by=filter_by,
            batch_size=batch_size,
            text_field=text_field,
            pred_column=pred_column,
            prob_column=prob_column,
            max_chars=max_chars,
            device_type=device_type,
            autocast=autocast,
            max_mem_gb=max_mem_gb,
            **inherited,
        )


class DomainClassifier(_NemoCheckpointClassifier):
    """nvidia/domain-classifier: 26 domain labels (Adult ... Travel_and_Transportation), NeMo's signature."""

    multilingual = False  # NeMo's attribute (its two domain classifiers share one parent)


class MultilingualDomainClassifier(_NemoCheckpointClassifier):
    """nvidia/multilingual-domain-classifier: the 26 domain labels over 52 languages, NeMo's signature."""

    default_model_key = "multilingual-domain"
    multilingual = True


@inherited_keywords
class QualityClassifier(_NemoCheckpointClassifier):
    """nvidia/quality-classifier-deberta: High / Medium / Low, with per-label probabilities by default."""

    default_pred_column = "quality_pred"
    default_model_key = "quality"

    def __init__(
        self,
        filter_by: str | list[str] | None = None,
        batch_size: int = 256,
        text_field: str = "text",
        pred_column: str = "quality_pred",
        prob_column: str | None = "quality_prob",
        max_chars: int = 6000,
        device_type: str = "auto",
        autocast: bool = True,
        max_mem_gb: int | None = None,
        *,
        max_tokens: int
        | None = None,  # NeMo's rule, as every DeBERTa classifier: see EngineOptions.max_tokens
        **inherited: Any,
    ):
        super().__init__(
            filter_by,
            batch_size,
            text_field,
            pred_column,
            prob_column,
            max_chars,
            device_type,
            autocast,
            max_mem_gb,
            max_tokens=max_tokens,
            **inherited,
        )


@inherited_keywords
class ContentTypeClassifier(_NemoCheckpointClassifier):
    """nvidia/content-type-classifier-deberta: 11 content types (Blogs, News, Reviews, ...), NeMo's signature."""

    default_pred_column = "content_pred"
    default_model_key = "content-type"

    def __init__(
        self,
        filter_by: str | list[str] | None = None,
        batch_size: int = 256,
        text_field: str = "text",
        pred_column: str = "content_pred",
        prob_column: str | None = None,
        max_chars: int = 5000,
        device_type: str = "auto",
        autocast: bool = True,
        max_mem_gb: int | None = None,
        *,
        max_tokens: int | None = None,  # NeMo's rule: see EngineOptions.max_tokens
        **inherited: Any,
    ):
        super().__init__(
            filter_by,
            batch_size,
            text_field,
            pred_column,
            prob_column,
            max_chars,
            device_type,
            autocast,
            max_mem_gb,
            max_tokens=max_tokens,
            **inherited,
        )
