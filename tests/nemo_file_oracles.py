"""NeMo Curator 0.7.1's small helpers of nemo_curator/utils/file_utils.py and distributed_utils.py (git tag
v0.7.1), verbatim but for their names (`nemo_` prefixed) and formatting: the oracles our
`hpc_classify.utils` is tested against (tests/unit/test_nemo_file_helpers.py, test_separate_by_metadata.py,
test_nemo_distributed_edges.py, test_write_path_edges.py)."""

import json
import os
import pathlib

NEMO_HOME = os.environ.get("NEMO_CURATOR_HOME", os.path.join(os.path.expanduser("~"), ".nemo_curator"))


def nemo_resolve_filename_col(filename):
    """distributed_utils._resolve_filename_col."""
    if filename is False:
        return False
    elif filename is True:
        return "file_name"
    elif isinstance(filename, str):
        return filename
    else:
        raise ValueError(f"Unknown filename value: {filename}")


def nemo_mkdir(d):
    pathlib.Path(d).mkdir(parents=True, exist_ok=True)


def nemo_merge_counts(first: dict, second: dict):
    for ngram, count in second.items():
        first[ngram] = first.get(ngram, 0) + count

    return first


def nemo_write_record(
    input_dir, file_name, line, field, output_dir, include_values=None, exclude_values=None
):
    try:
        # Parse the JSON-encoded string 'line' into a Python dictionary
        line = json.loads(line)

        # Select category value
        category = line[field]

        if (exclude_values and category in exclude_values) or (
            include_values and category not in include_values
        ):
            return None

        # Obtain the relative path
        rel_path, file_name = os.path.split(os.path.relpath(file_name, start=os.path.abspath(input_dir)))

        output_dir = os.path.join(output_dir, category, rel_path)
        os.makedirs(output_dir, exist_ok=True)
        with open(f"{output_dir}/{file_name}", "a") as f:
            f.write(json.dumps(line) + "\n")

        return category
    except (KeyError, ValueError, json.JSONDecodeError):
        return None


def nemo_parse_str_of_num_bytes(s: str, return_str: bool = False):
    try:
        power = "kmg".find(s[-1].lower()) + 1
        size = float(s[:-1]) * 1024**power
    except ValueError:
        raise ValueError("Invalid size: {}".format(s))  # noqa: B904, UP032 (verbatim)
    if return_str:
        return s
    else:
        return int(size)


def nemo_remove_path_extension(path: str):
    p = pathlib.Path(path)
    return os.path.join(p.parent, p.stem)
