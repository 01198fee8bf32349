"""`hpc-classify node`'s and `submit`'s launcher flags take their defaults from NodeOptions, the one place that
decides them: a default changed there is the command line's default and its help's."""

from __future__ import annotations

import dataclasses

from hpc_classify.cli.main import build_parser
from hpc_classify.cluster.slurm_node import NodeOptions


def test_the_flags_defaults_are_node_options_defaults(monkeypatch) -> None:
    defaults = {field.name: field.default for field in dataclasses.fields(NodeOptions)}
    monkeypatch.setattr(NodeOptions, "worker_timeout", 123.0)
    monkeypatch.setattr(NodeOptions, "death_timeout", 45.0)
    for command in (["node", "--"], ["submit", "--"]):
        args = build_parser().parse_args(command)
        assert (args.worker_timeout, args.death_timeout) == (123.0, 45.0)
        assert args.enable_cudf_spill is defaults["enable_cudf_spill"] is False
    help_text = build_parser()._subparsers._group_actions[0].choices["node"].format_help()
    assert "(default 123)" in " ".join(help_text.split())
    assert "(default 45)" in " ".join(help_text.split())
