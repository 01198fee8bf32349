"""What the LlamaGuard-based classifiers share (`AegisClassifier`, `InstructionDataGuardClassifier`):
LlamaGuard-7b + a LoRA adapter, resolved from the hub cache or local directories, loaded once per process
and run outside the DeBERTa inference engine; the base model's token is never part of any fingerprint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpc_classify.classifiers import runtime
from hpc_classify.classifiers.base import DistributedDataClassifier
from hpc_classify.errors import ConfigError
from hpc_classify.models.hub_pins import HubPins
from hpc_classify.models.llama_guard import CPU_MAX_DOCUMENTS, MAX_LENGTH  # constants only: no torch

if TYPE_CHECKING:
    import torch

# NeMo Curator 0.7.1's batch_size for both (documents per generate call); batch_size=None means it.
DEFAULT_BATCH_SIZE = 64


def check_name(**values: Any) -> None:
    for name, value in values.items():
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{name} must be a non-empty string, not {value!r}")


class LlamaGuardClassifier(DistributedDataClassifier):
    """What both classifiers share: LlamaGuard + a LoRA adapter, loaded once per process."""

    uses_inference_engine = False
    fixed_engine_options = ("max_tokens",)  # LlamaGuard's MAX_LENGTH

    def __init__(
        self,
        *,
        adapter: str,
        revision: str | None,
        base_model: str,
        token: str | bool | None,
        device_type: str | None,
        **kwargs: Any,
    ):
        check_name(base_model=base_model, adapter=adapter)
        if revision is not None:
            check_name(revision=revision)
        if token is not None and not isinstance(token, str | bool):
            raise ConfigError(
                f"token must be a Hugging Face access token string, true or null, not {token!r}"
            )
        if kwargs.get("precision") == "int8":
            raise ConfigError(
                f"precision int8 is not supported by {type(self).__name__} (a generative LlamaGuard model)",
                hint="use precision auto, bf16 or fp32 for it; int8 is for the encoder classifiers",
            )
        if kwargs.get("compile") is True:
            raise ConfigError(
                f"compile=True is not supported by {type(self).__name__} (a generative LlamaGuard model, "
                "which runs outside the compiled inference engine)",
                hint="leave compile at auto (or false) for it",
            )
        if kwargs.get("batch_size") is None:  # these batch by documents: None is the class default
            kwargs["batch_size"] = DEFAULT_BATCH_SIZE
        # device_type="auto" is the default: let `device` (the CLI's --device, YAML device:) decide then.
        super().__init__(
            device_type=None if device_type == "auto" else device_type, max_tokens=MAX_LENGTH, **kwargs
        )
        self.base_model = str(base_model)
        self.token = token  # never part of the identity or the fingerprint (a secret)
        self._adapter = str(adapter)
        self._revision = revision
        # Pickled with the object: the workers load the commits the driver resolved and fingerprinted.
        self._hub_pins = HubPins()

    # -- where the files are ---------------------------------------------------------------------
    def _base_dir(self):
        from hpc_classify.models.llama_guard import resolve_base_dir

        return self._hub_pins.resolve(resolve_base_dir, self.base_model, None, token=self.token)

    # Whether `revision` pins the adapter (Aegis) or another repository (the guard net).
    _adapter_has_revision = True

    def _adapter_dir(self):
        from hpc_classify.models.llama_guard import resolve_adapter_dir

        revision = self._revision if self._adapter_has_revision else None
        return self._hub_pins.resolve(resolve_adapter_dir, self._adapter, revision, token=self.token)

    def pin_models(self) -> None:
        self._base_dir()
        self._adapter_dir()

    def _loaded(self, device: torch.device | None = None):
        """The base model + adapter and tokenizer on `device` (cached per process)."""
        from hpc_classify.engine.device import compute_dtype
        from hpc_classify.models.llama_guard_loading import load_llama_guard

        device = device or self.prepare_device()
        base_dir, adapter_dir = self._base_dir(), self._adapter_dir()
        dtype = compute_dtype(device, self.autocast, self.precision)
        key = ("llama-guard", str(base_dir), str(adapter_dir), str(device), str(dtype))
        return runtime.cached_model(key, lambda: load_llama_guard(base_dir, adapter_dir, device, dtype))

    def _batch_limits(self, device: torch.device) -> tuple[int, int]:
        """(documents, padded tokens) per forward/generate call: NeMo's batch_size, capped on a CPU."""
        from hpc_classify.engine.device import default_token_budget

        if device.type == "cpu":
            return min(self.batch_size, CPU_MAX_DOCUMENTS), self.token_budget or default_token_budget(device)
        return self.batch_size, self.token_budget or default_token_budget(device) // 2

    # -- the abstract loaders of the base ----------------------------------------------------------
    def load_model(self, device: torch.device) -> Any:
        """The peft model (LlamaGuard with the adapter), eval, on `device`."""
        return self._loaded(device).model

    def load_tokenizer(self) -> Any:
        from hpc_classify.models.llama_guard_loading import load_llama_guard_tokenizer

        return load_llama_guard_tokenizer(self._base_dir())

    def _common_fingerprint(self) -> dict[str, Any]:
        from hpc_classify.models.llama_guard import adapter_hash, base_model_hash

        return {
            "adapter_hash": adapter_hash(self._adapter_dir()),
            "base_model_hash": base_model_hash(self._base_dir()),
        }
