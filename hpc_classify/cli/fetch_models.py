"""`hpc-classify fetch-models`: fill the Hugging Face cache on a login node for offline compute nodes."""

from __future__ import annotations

import argparse
import os

from hpc_classify.models.registry_defaults import BUNDLED_MODELS, DEFAULT_MODELS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fetch-models",
        help="pre-fetch classifier checkpoints into the Hugging Face cache (run on a login node)",
        description=(
            "Download each classifier's checkpoint files (config, weights, tokenizer) and its base model's "
            "config.json only (the base weights only for aegis and instruction-data-guard, which run on LlamaGuard-7b) into the Hugging Face cache, pinned to a revision, so "
            "that compute nodes can run with HF_HUB_OFFLINE=1. With HF_HUB_OFFLINE=1 set (the hpc-classify "
            "module sets it), nothing is downloaded: the command checks that the cache is complete."
        ),
        epilog=(
            "Example (login node): HF_HUB_OFFLINE=0 hpc-classify fetch-models --classifier domain quality "
            "multilingual-domain. Pin what it prints: --classifier domain@<commit> or run --revision <commit>."
        ),
    )
    parser.add_argument(
        "--classifier",
        nargs="+",
        required=True,
        metavar="NAME",
        help=f"built-in names ({', '.join([*DEFAULT_MODELS, *BUNDLED_MODELS])}) or hub ids (org/name); "
        "NAME@REVISION pins one. aegis* and instruction-data-guard also fetch the gated meta-llama/LlamaGuard-7b: "
        "accept its license on the hub and log in (HF_HUB_OFFLINE=0 hf auth login, or HF_TOKEN) first",
    )
    parser.add_argument(
        "--revision",
        default="main",
        help="branch, tag or commit for every classifier without its own @REVISION (default: main)",
    )
    parser.add_argument(
        "--cache",
        default=None,
        metavar="DIR",
        help="hub cache directory (default: $HF_HUB_CACHE, else $HF_HOME/hub); compute nodes must use the same",
    )
    parser.set_defaults(handler=run_fetch_models)


def run_fetch_models(args: argparse.Namespace) -> int:
    from hpc_classify.models.fetch import fetch_models, pinned_repository
    from hpc_classify.models.hub import hub_cache_dir

    fetched = fetch_models(args.classifier, cache_dir=args.cache, revision=args.revision)
    offline = "(offline check: nothing downloaded)" if _offline() else ""
    for item in fetched:
        base = f"; base config {item.base_model}@{item.base_commit}" if item.base_model else ""
        print(f"{item.name}: {item.repo_id}@{item.revision} -> commit {item.commit} {offline}".rstrip())
        print(f"    {item.path} ({len(item.files)} files: {', '.join(item.files)}){base}")
    # One pin per classifier: @REVISION pins one repository (a bundle's adapter or guard net), so the commit
    # of the LlamaGuard base (always taken at main) in a pin would name no commit of the pinned repository.
    pinned = [item.repo_id == pinned_repository(item.name, item.repo_id) for item in fetched]
    pins = " ".join(f"{item.name}@{item.commit}" for item, pin in zip(fetched, pinned, strict=True) if pin)
    print(f"pin these commits: hpc-classify fetch-models --classifier {pins}")
    for item, pin in zip(fetched, pinned, strict=True):
        if not pin:
            print(
                f"    {item.name} also loads {item.repo_id} at {item.revision} (now commit {item.commit}), "
                f"which {item.name}@REVISION does not pin"
            )
    if args.cache and os.path.realpath(args.cache) != os.path.realpath(hub_cache_dir()):
        # The loader looks in HF_HUB_CACHE / HF_HOME/hub: say how to point compute nodes at this cache.
        print(f"compute nodes must read this cache: export HF_HUB_CACHE={os.path.realpath(args.cache)}")
    return 0


def _offline() -> bool:
    from hpc_classify.models.hub import hub_offline

    return hub_offline()
