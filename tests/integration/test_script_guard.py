"""The README's Python snippets saved as a script and run with `python script.py`: Dask's local workers are
spawned processes that import the script again, so a cluster started at the script's top level, outside
`if __name__ == "__main__":`, is refused with an error naming the guard, fast (it used to hang for ever in
get_client, or end in a misleading "Nanny failed to start" in run()); under the guard both work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 120

GET_CLIENT = """
from hpc_classify import get_client

client = get_client(cluster_type="cpu", n_workers=1)
print("workers:", len(client.scheduler_info()["workers"]))
client.shutdown()
"""

RUN = """
from hpc_classify import DomainClassifier, run

result = run(DomainClassifier(model={model!r}), {inputs!r}, {output!r})
print("exit code:", result.exit_code)
"""


def run_script(path: Path, source: str) -> subprocess.CompletedProcess[str]:
    """`python path` with this checkout importable; past the deadline, the script and every process it
    started (a hanging worker process outlives its parent) are killed and the test fails."""
    path.write_text(source)
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    with subprocess.Popen(
        [sys.executable, str(path)],
        cwd=path.parent,
        env={**os.environ, "PYTHONPATH": pythonpath},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as script:
        try:
            out, err = script.communicate(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            os.killpg(script.pid, signal.SIGKILL)
            out, err = script.communicate()
            pytest.fail(f"{path.name} still running after {DEADLINE_S} s; its stderr ends: {err[-2000:]}")
    return subprocess.CompletedProcess(script.args, script.returncode, out, err)


def guarded(source: str) -> str:
    body = "".join(f"    {line}\n" if line else "\n" for line in source.strip().splitlines())
    return f'if __name__ == "__main__":\n{body}'


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    inputs = tmp_path / "corpus"
    inputs.mkdir()
    (inputs / "a.jsonl").write_text('{"text": "a game of football"}\n{"text": "the league table"}\n')
    return inputs


def assert_refused_naming_the_guard(done: subprocess.CompletedProcess[str], script: Path, line: int) -> None:
    assert done.returncode != 0, done.stdout
    last = done.stderr.strip().splitlines()[-2:]  # the parent's error, the last thing it printed
    assert last[0] == (
        f"hpc_classify.errors.ConfigError: {script} (line {line}) starts a local Dask cluster when it is "
        'imported, outside `if __name__ == "__main__":`: each Dask worker process imports the script again '
        "and would start another cluster"
    ), done.stderr[-3000:]
    assert last[1].startswith(
        "HINT: put the code that starts the cluster or the run (get_client, run, ...) under `if"
    )
    assert (
        "freeze_support" not in done.stderr
    )  # the worker process refused before multiprocessing's own trace


def test_get_client_at_a_scripts_top_level_is_refused_naming_the_guard(tmp_path: Path) -> None:
    script = tmp_path / "classify_books.py"
    assert_refused_naming_the_guard(run_script(script, GET_CLIENT), script, line=4)


def test_run_at_a_scripts_top_level_is_refused_naming_the_guard(
    tmp_path: Path, corpus: Path, tiny_domain_model: Path
) -> None:
    script = tmp_path / "classify_games.py"
    source = RUN.format(model=str(tiny_domain_model), inputs=str(corpus), output=str(tmp_path / "out"))
    assert_refused_naming_the_guard(run_script(script, source), script, line=4)


def test_the_same_scripts_under_the_guard_work(tmp_path: Path, corpus: Path, tiny_domain_model: Path) -> None:
    source = GET_CLIENT + RUN.format(
        model=str(tiny_domain_model), inputs=str(corpus), output=str(tmp_path / "out")
    )
    done = run_script(tmp_path / "classify.py", guarded(source))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["workers: 1", "exit code: 0"]
