"""Finished files whose output is gone (driver/lost_outputs.py): one listing per output directory, and a name
the listing lacks looked up by its path before its file counts as lost."""

from __future__ import annotations

import os

from hpc_classify.driver.lost_outputs import OutputListing, forget_lost_outputs
from hpc_classify.io.markers import CompletionMarker, MarkerListing, marker_path, write_marker


def _done(output: str, relpath: str) -> None:
    path = os.path.join(output, relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"id": 1}\n')
    marker = CompletionMarker("in/" + relpath, 1, 0.0, path, 1, 1, 0, {}, 0.1, "n", "w", "f")
    write_marker(marker_path(output, relpath), marker)


def test_an_output_a_lagging_listing_lacks_is_not_lost(tmp_path, monkeypatch):
    """The listing of `sub/` misses b.jsonl (an NFS client's cached listing, written on another node just
    before): b is not taken for lost, its marker stays, and it is not classified again; c, really gone, is."""
    output = str(tmp_path / "out")
    for relpath in ("sub/a.jsonl", "sub/b.jsonl", "sub/c.jsonl"):
        _done(output, relpath)
    os.remove(os.path.join(output, "sub/c.jsonl"))
    real_listdir = os.listdir
    listings: list[str] = []

    def lagging_listdir(path="."):
        listings.append(os.fspath(path))
        return [n for n in real_listdir(path) if n != "b.jsonl"]

    monkeypatch.setattr(os, "listdir", lagging_listdir)
    markers = MarkerListing(output)

    relpaths = ["sub/a.jsonl", "sub/b.jsonl", "sub/c.jsonl"]
    assert forget_lost_outputs(relpaths, output, "jsonl", markers) == ["sub/c.jsonl"]
    assert listings == [os.path.join(output, "sub")]  # one listing for the directory
    assert sorted(markers.relpaths()) == ["sub/a.jsonl", "sub/b.jsonl"]
    assert os.path.exists(marker_path(output, "sub/b.jsonl"))


def test_a_listed_output_costs_no_stat(tmp_path, monkeypatch):
    output = str(tmp_path / "out")
    _done(output, "a.jsonl")
    listing = OutputListing(output)
    monkeypatch.setattr(os.path, "exists", lambda path: (_ for _ in ()).throw(AssertionError(path)))
    assert listing.has("a.jsonl")


def test_a_marker_naming_no_output_is_not_lost(tmp_path):
    """A file of no output row has no output file and a marker naming none (""): done, not lost; a marker
    naming an output that is gone is lost, and so is one that cannot be read."""
    output = str(tmp_path / "out")
    _done(output, "gone.jsonl")
    os.remove(os.path.join(output, "gone.jsonl"))
    empty = CompletionMarker("in/empty.jsonl", 0, 0.0, "", 0, 0, 0, {}, 0.1, "n", "w", "f")
    write_marker(marker_path(output, "empty.jsonl"), empty)
    os.makedirs(os.path.dirname(marker_path(output, "corrupt.jsonl")), exist_ok=True)
    with open(marker_path(output, "corrupt.jsonl"), "w", encoding="utf-8") as f:
        f.write("{")
    markers = MarkerListing(output)

    relpaths = ["corrupt.jsonl", "empty.jsonl", "gone.jsonl"]
    assert forget_lost_outputs(relpaths, output, "jsonl", markers) == ["corrupt.jsonl", "gone.jsonl"]
    assert sorted(markers.relpaths()) == ["empty.jsonl"]
