"""Engine options declared once (`EngineOptions`): every classifier's signature gets them from there (its
own parameters stated as NeMo Curator 0.7.1 has them), they take effect as attributes, the CLI/YAML keys
derive from them, and a bad value is one ConfigError naming the option."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from hpc_classify.classifiers import DistributedDataClassifier
from hpc_classify.classifiers.engine_options import (
    PER_MODEL,
    SHARED,
    EngineOptions,
    Flag,
    flag_text,
    option_flags,
    option_names,
)
from hpc_classify.classifiers.inherited_keywords import inherited_keywords
from hpc_classify.classifiers.registry import CLASSIFIERS
from hpc_classify.cli.run import parse_run_argv
from hpc_classify.cli.run_config import PER_MODEL_KEYS, SHARED_KEYS, TOP_LEVEL_KEYS, config_from_args
from hpc_classify.errors import ConfigError

ENGINE_KEYWORDS = "device=auto token_budget=None precision=auto compile=auto"
# Each built-in's keyword-only parameters (name=default), as they were written out in every class before
# the options were declared once (NeMo's positional part is held by test_classifier_family/test_aegis_parsing).
RECORDED_KEYWORDS = {
    "domain": f"model=None revision=None max_tokens=None {ENGINE_KEYWORDS}",
    "multilingual-domain": f"model=None revision=None max_tokens=None {ENGINE_KEYWORDS}",
    "quality": f"model=None revision=None max_tokens=None {ENGINE_KEYWORDS}",
    "content-type": f"model=None revision=None max_tokens=None {ENGINE_KEYWORDS}",
    "prompt-task-complexity": f"model=None revision=None max_tokens=None {ENGINE_KEYWORDS}",
    "fineweb-edu": f"model=None revision=None max_tokens=None {ENGINE_KEYWORDS}",
    "fineweb-mixtral-edu": f"model=None revision=None max_tokens=None {ENGINE_KEYWORDS}",
    "fineweb-nemotron-edu": f"model=None revision=None max_tokens=None {ENGINE_KEYWORDS}",
    "aegis": f"model=None revision=None base_model=meta-llama/LlamaGuard-7b {ENGINE_KEYWORDS}",
    "instruction-data-guard": "model=None revision=None base_model=meta-llama/LlamaGuard-7b "
    f"aegis_adapter=nvidia/Aegis-AI-Content-Safety-LlamaGuard-Defensive-1.0 {ENGINE_KEYWORDS}",
}
# A value other than every default, valid on CPU and together.
NON_DEFAULT = {
    "max_chars": 123,
    "max_tokens": 77,
    "batch_size": 9,
    "device": "cpu",
    "autocast": False,
    "token_budget": 4321,
    "precision": "fp32",
    "compile": False,
}


def keywords_of(cls: type) -> str:
    parameters = inspect.signature(cls).parameters.values()
    return " ".join(f"{p.name}={p.default}" for p in parameters if p.kind is p.KEYWORD_ONLY)


def test_every_builtin_is_registered_with_its_recorded_keywords():
    assert set(RECORDED_KEYWORDS) == set(CLASSIFIERS)
    for name, cls in CLASSIFIERS.items():
        assert keywords_of(cls) == RECORDED_KEYWORDS[name], name


def test_the_base_takes_every_engine_option_with_its_declared_default():
    parameters = inspect.signature(DistributedDataClassifier).parameters
    assert " ".join(parameters) == (  # the order help() and the registry's hints have always shown
        "filter_by batch_size text_field pred_column prob_column max_chars max_tokens device autocast "
        "token_budget device_type max_mem_gb precision compile"
    )
    for option in dataclasses.fields(EngineOptions):
        assert parameters[option.name].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[option.name].default == option.default


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_each_engine_option_a_classifier_takes_becomes_its_attribute(name):
    cls = CLASSIFIERS[name]
    taken = {k: v for k, v in NON_DEFAULT.items() if k in inspect.signature(cls).parameters}
    # LlamaGuard sets max_tokens itself (its 4,096-token window): not a constructor argument there.
    assert set(NON_DEFAULT) - set(taken) == (
        {"max_tokens"} if name in ("aegis", "instruction-data-guard") else set()
    )
    classifier = cls(**taken)
    assert {k: getattr(classifier, k) for k in taken} == taken
    with pytest.raises(
        TypeError, match=rf"^{cls.__name__}\.__init__\(\) got an unexpected keyword argument 'no_such_option'"
    ):
        cls(no_such_option=1)


def test_fineweb_takes_no_filter_by_and_positional_arguments_stay_nemos():
    fineweb, quality = CLASSIFIERS["fineweb-edu"], CLASSIFIERS["quality"]
    with pytest.raises(TypeError, match="filter_by"):
        fineweb(filter_by=["high_quality"])
    classifier = quality(["High"], 16, "body", "q", "qp", 700, "cpu", False, None, max_tokens=64)
    assert (classifier.filter_by, classifier.batch_size, classifier.text_field) == (["High"], 16, "body")
    assert (classifier.pred_column, classifier.prob_column, classifier.max_chars) == ("q", "qp", 700)
    assert (classifier.device, classifier.autocast, classifier.max_tokens) == ("cpu", False, 64)
    with pytest.raises(TypeError, match="too many positional arguments"):
        quality(None, 16, "body", "q", "qp", 700, "cpu", False, None, 512)


def test_a_subclass_states_only_its_delta():
    @inherited_keywords
    class Wider(CLASSIFIERS["quality"]):
        def __init__(self, *args, max_chars_note: str = "", max_tokens: int | None = 2048, **inherited):
            super().__init__(*args, max_tokens=max_tokens, **inherited)
            self.note = max_chars_note

    keywords = keywords_of(Wider)
    assert keywords == f"model=None revision=None max_tokens=2048 {ENGINE_KEYWORDS} max_chars_note="
    assert Wider(precision="fp32", max_chars_note="n").max_tokens == 2048
    with pytest.raises(TypeError, match="order names no keyword of it: colour"):

        @inherited_keywords(order=("colour",))
        class Ordered(DistributedDataClassifier):
            def __init__(self, **inherited):
                super().__init__(**inherited)

    with pytest.raises(TypeError, match="must end with \\*\\*inherited"):

        @inherited_keywords
        class Closed(DistributedDataClassifier):
            def __init__(self, x: int = 1):
                super().__init__()


def test_cli_and_yaml_keys_come_from_the_options():
    assert set(option_names(SHARED)) <= set(SHARED_KEYS) and set(option_names(PER_MODEL)) <= set(
        PER_MODEL_KEYS
    )
    scoped = set(option_names(SHARED)) | set(option_names(PER_MODEL))
    assert scoped == set(NON_DEFAULT) and scoped <= TOP_LEVEL_KEYS  # max_mem_gb: per classifier only
    assert {name for name, _ in option_flags()} == scoped


def flag_argv(name: str) -> list[str]:
    """The command line that sets option `name` to its NON_DEFAULT value."""
    value = NON_DEFAULT[name]
    if value is False and name == "autocast":
        return [flag_text(name)]
    return [flag_text(name), {False: "off", True: "on"}.get(value, str(value))]


@pytest.mark.parametrize("name", sorted(NON_DEFAULT))
def test_each_scoped_option_is_a_run_flag_that_takes_effect(name):
    argv = ["--input", "a", "--output", "o"]
    if name in option_names(SHARED):  # a shared flag reaches every classifier
        argv += ["--classifier", "domain", "--classifier", "quality"]
    config = config_from_args(parse_run_argv([*argv, *flag_argv(name)]))
    assert {getattr(c, name) for c in config.classifiers} == {NON_DEFAULT[name]}


def test_a_new_option_gets_its_flag_from_its_declaration(monkeypatch):
    import argparse

    from hpc_classify.cli import engine_flags

    added = ("warmup_batches", Flag("batches run before timing", parse=int, metavar="N"))
    monkeypatch.setattr(engine_flags, "option_flags", lambda: (*option_flags(), added))
    monkeypatch.setattr(
        engine_flags, "flag_text", lambda n: "--warmup-batches" if n == added[0] else flag_text(n)
    )
    parser = argparse.ArgumentParser()
    engine_flags.add_engine_flags(parser)
    assert parser.parse_args(["--warmup-batches", "3", "--no-autocast"]).warmup_batches == 3
    assert "batches run before timing" in parser.format_help()
    with pytest.raises(SystemExit):
        parser.parse_args(["--compile", "sometimes"])


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("max_chars", 0, "max_chars must be a positive integer, not 0"),
        ("batch_size", True, "batch_size must be a positive integer, not True"),
        ("token_budget", 1.5, "token_budget must be a positive integer"),
        ("device", "tpu", "device must be one of auto, cpu, cuda, not 'tpu'"),
        ("autocast", "yes", "autocast must be true or false"),
        ("precision", "fp8", "precision must be one of"),
        ("compile", "sometimes", "compile must be auto, true or false"),
        ("max_mem_gb", -1, "max_mem_gb must be a positive number of GiB"),
    ],
)
def test_a_bad_value_is_one_config_error_naming_the_option(option, value, message):
    with pytest.raises(ConfigError, match=message):
        EngineOptions(**{option: value})
    with pytest.raises(ConfigError, match=message):  # the same check, through any classifier
        CLASSIFIERS["domain"](**{option: value})


def test_a_numpy_integer_is_a_whole_number_taken_as_python_int():
    """A batch size computed with numpy (np.int64) is a count like any other; kept as Python's int."""
    np = pytest.importorskip("numpy")
    options = EngineOptions(batch_size=np.int64(16), max_tokens=np.int32(128))
    assert (options.batch_size, options.max_tokens) == (16, 128)
    assert type(options.batch_size) is int and type(options.max_tokens) is int
    assert CLASSIFIERS["domain"](batch_size=np.int64(16)).batch_size == 16


def test_combinations_are_checked_once():
    with pytest.raises(ConfigError, match="max_mem_gb limits GPU memory"):
        EngineOptions(device="cpu", max_mem_gb=8)
    with pytest.raises(ConfigError, match="compile=True with precision int8"):
        EngineOptions(precision="int8", compile=True)
    with pytest.raises(ConfigError, match="runs on CPU only"):
        EngineOptions(precision="int8", device="cuda")
    with pytest.raises(ConfigError, match="autocast=False"):
        EngineOptions(autocast=False, precision="bf16")
    with pytest.raises(ConfigError, match="device='cpu' and device_type='cuda' disagree"):
        CLASSIFIERS["domain"](device_type="cuda", device="cpu")


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_device_type_reads_back_as_nemo_code_expects(name: str) -> None:
    """NeMo's classifiers keep `device_type` as an attribute: here it is `device` under NeMo's name."""
    classifier = CLASSIFIERS[name](device_type="cpu")
    assert classifier.device_type == classifier.device == "cpu"
    assert CLASSIFIERS[name]().device_type == "auto"
    classifier.device_type = "cuda"
    assert classifier.device == "cuda"


@pytest.mark.parametrize(("filter_by", "kept"), [(None, 3), ([], 0), ("Games", 2), (["Games", "Sports"], 3)])
def test_filter_by_keeps_rows_as_nemos_isin_does(tiny_domain_model, filter_by, kept):
    """An empty list keeps no row (NeMo's `isin([])`), never every row: a computed label list that comes
    out empty must not pass the whole corpus through."""
    import pandas as pd

    from hpc_classify.classifiers import DomainClassifier

    classifier = DomainClassifier(filter_by=filter_by, model=str(tiny_domain_model), device_type="cpu")
    frame = pd.DataFrame({"text": ["a", "b", "c"], "domain_pred": ["Games", "Sports", "Games"]})
    assert len(classifier.filter_frame(frame)) == kept


def test_a_config_setting_the_classifier_cannot_use_is_refused_but_nemos_signature_keeps_it():
    from hpc_classify.classifiers import InstructionDataGuardClassifier
    from hpc_classify.classifiers.registry import classifier_from_spec

    with pytest.raises(
        ConfigError, match=r"does not use max_chars: it reads each document's first 4,096 tokens"
    ):
        classifier_from_spec({"classifier": "instruction-data-guard", "max_chars": 100})
    assert classifier_from_spec({"classifier": "instruction-data-guard"}).max_chars == 6000
    assert InstructionDataGuardClassifier(max_chars=100).max_chars == 100  # NeMo's scripts still run


# -- NeMo Curator 0.7.1's BaseModule (nemo_curator/modules/base.py): name, input_backend, call -------------


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_nemo_module_attributes(name: str) -> None:
    """`name` is the class's name (NeMo's classifiers pass none); `input_backend` says what `__call__` takes:
    "any" (pandas and cuDF partitions alike), where NeMo's GPU-only classifiers say "cudf"."""
    classifier = CLASSIFIERS[name](device_type="cpu")
    assert classifier.name == type(classifier).__name__
    assert classifier.input_backend == "any"
    assert callable(classifier.call)


def _small_dataset():
    import pandas as pd

    from hpc_classify import DocumentDataset

    texts = ["the game went to overtime", "a recipe for bread", "stock markets fell", "the match ended"]
    return DocumentDataset.from_pandas(pd.DataFrame({"id": range(4), "text": texts}), npartitions=2)


def test_call_does_what_calling_the_module_does(tiny_domain_model):
    """A NeMo `Sequential` or user module calls `module.call(ds)`: the same classification and filter."""
    import pandas as pd

    from hpc_classify.classifiers import DomainClassifier

    dataset = _small_dataset()
    classifier = DomainClassifier(model=str(tiny_domain_model), device_type="cpu")
    labelled = classifier(dataset).df.compute()
    pd.testing.assert_frame_equal(classifier.call(dataset).df.compute(), labelled)
    wanted = [labelled["domain_pred"].iloc[0]]
    filtering = DomainClassifier(wanted, model=str(tiny_domain_model), device_type="cpu")
    kept = filtering.call(dataset).df.compute()
    pd.testing.assert_frame_equal(kept, labelled[labelled["domain_pred"].isin(wanted)])


def test_calling_the_module_checks_the_backend_then_runs_call(tiny_domain_model, monkeypatch):
    from hpc_classify.classifiers import DomainClassifier

    dataset = _small_dataset()
    classifier = DomainClassifier(model=str(tiny_domain_model), device_type="cpu")
    monkeypatch.setattr(classifier, "call", lambda ds: ("called", ds))  # a subclass's `call` is what runs
    assert classifier(dataset) == ("called", dataset)
    classifier.input_backend = "cudf"  # as NeMo: a module that asks for cuDF refuses a pandas dataset
    with pytest.raises(ValueError, match="requires dataset to have backend cudf but got backend pandas"):
        classifier(dataset)
    classifier.input_backend = "gpu"
    with pytest.raises(ValueError, match="gpu not one of the supported backends"):
        classifier(dataset)


# -- NeMo's other public attributes of the classifiers (nemo_curator/classifiers/*.py at v0.7.1) ----------


def test_instruction_data_guard_pred_column_is_its_score_column_as_in_nemo():
    """NeMo passes `pred_column=prob_column` to its base: `.pred_column` names the score column; the
    flag column (the `pred_column` argument) is still what gets written next to it."""
    import numpy as np
    import pandas as pd

    from hpc_classify.classifiers import InstructionDataGuardClassifier

    score = "instruction_data_guard_poisoning_score"
    guard = InstructionDataGuardClassifier(device_type="cpu")
    assert guard.pred_column == guard.prob_column == score
    assert guard.output_columns() == [score, "is_poisoned"]
    custom = InstructionDataGuardClassifier(pred_column="flag", prob_column="p", device_type="cpu")
    assert custom.pred_column == "p"
    custom.scores = lambda texts: np.array([0.2, 0.7], dtype=np.float32)
    columns = custom.columns_for_texts(["a", "b"])
    assert list(columns) == ["p", "flag"] and columns["flag"].tolist() == [False, True]
    assert set(custom.output_counts(pd.DataFrame(columns))) == {"p", "flag"}
    assert list(custom.output_meta()) == ["p", "flag"]
    custom.pred_column = "renamed"  # the attribute names the score column: setting it renames that column
    assert custom.output_columns() == ["renamed", "flag"] and custom.prob_column == "renamed"


def test_nemo_classifier_attributes_out_dim_multilingual_fineweb_identifier(tiny_domain_model):
    from hpc_classify.classifiers import AegisClassifier, DomainClassifier, MultilingualDomainClassifier
    from hpc_classify.classifiers.fineweb import FINEWEB_MIXTRAL_IDENTIFIER
    from hpc_classify.models.tiny import DOMAIN_LABELS

    domain = DomainClassifier(model=str(tiny_domain_model), device_type="cpu")
    assert domain.out_dim == len(DOMAIN_LABELS)  # NeMo: len(labels), read from the model's config
    assert AegisClassifier(device_type="cpu").out_dim == 15
    for name in ("fineweb-edu", "fineweb-mixtral-edu", "fineweb-nemotron-edu", "instruction-data-guard"):
        assert CLASSIFIERS[name](device_type="cpu").out_dim == 1  # one score
    assert CLASSIFIERS["prompt-task-complexity"](device_type="cpu").out_dim is None
    assert domain.multilingual is False and MultilingualDomainClassifier().multilingual is True
    mixtral = CLASSIFIERS["fineweb-mixtral-edu"](device_type="cpu")
    assert mixtral.fineweb_identifier == mixtral.model == FINEWEB_MIXTRAL_IDENTIFIER
    mixtral.fineweb_identifier = "/models/mine"  # the model it loads, so setting it takes effect
    assert mixtral.model == "/models/mine"


def test_a_nemo_style_subclass_may_assign_out_dim_and_input_backend_without_changing_its_identity(
    tiny_domain_model,
):
    from hpc_classify.classifiers import DomainClassifier
    from hpc_classify.models.tiny import DOMAIN_LABELS

    domain = DomainClassifier(model=str(tiny_domain_model), device_type="cpu")
    identity = domain.model_identity()
    domain.out_dim = 7  # as NeMo's own classifiers assign it in __init__
    domain.input_backend = "pandas"
    assert domain.out_dim == 7 and domain.model_identity() == identity
    domain.out_dim = None
    assert domain.out_dim == len(DOMAIN_LABELS)


class _Settings(DistributedDataClassifier):
    """A user subclass whose public attributes are its default model identity."""

    def __init__(self, **attributes):
        super().__init__(device="cpu")
        vars(self).update(attributes)

    def load_labels(self):
        return ["a", "b"]

    def load_tokenizer(self):
        raise NotImplementedError

    def load_model(self, device):
        raise NotImplementedError


def test_the_default_identity_keeps_every_public_attribute_or_refuses_it():
    import pathlib

    import numpy as np

    given = _Settings(model_dir=pathlib.Path("/m/one"), extra={"heads": (pathlib.Path("/h"), np.int64(3))})
    assert given.model_identity() == {"model_dir": "/m/one", "extra": {"heads": ("/h", 3)}}
    assert given.fingerprint()["model"] == given.model_identity()
    assert _Settings(tags={"y", "x"}).model_identity() == {"tags": ["x", "y"]}
    # Two instances that differ only in a non-path attribute never share an engine or a fingerprint.
    assert (
        _Settings(model_dir=pathlib.Path("/m/two")).engine_key()
        != _Settings(model_dir=pathlib.Path("/m/one")).engine_key()
    )
    # An attribute with no stable form was skipped (an empty identity): now an error naming it.
    loaded = _Settings(model_dir="/m/one", model=object())
    for call in (loaded.model_identity, loaded.engine_key, loaded.fingerprint):
        with pytest.raises(
            ConfigError, match=r"(?s)_Settings\.model is of type object.*override model_identity"
        ):
            call()
    with pytest.raises(ConfigError, match=r"_Settings\.extra\[.w.\]\[0\] is of type object"):
        _Settings(extra={"w": [object()]}).model_identity()
    assert _Settings(_model=object()).model_identity() == {}  # private: not part of the identity


def test_assigning_labels_as_nemo_subclasses_do_says_where_they_come_from():
    classifier = _Settings()
    with pytest.raises(ConfigError, match="labels cannot be assigned") as raised:
        classifier.labels = ["x", "y"]
    assert "load_labels" in raised.value.hint and classifier.labels == ["a", "b"]
