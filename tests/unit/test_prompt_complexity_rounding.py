"""Prompt task/complexity post-processing against NeMo Curator 0.7.1's own: `CustomHFDeberta.compute_results`
and `process_logits` (nemo_curator/classifiers/prompt_task_complexity.py) copied below verbatim, except that
the tensors are made on the CPU, not on "cuda". NeMo rounds its scores, np.float64 values, with numpy's
rounding (`round(np.float64, n)`), and takes the softmax with torch: every column equals NeMo's to the bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from family_models import DIVISOR_MAP, PROMPT_TARGETS, TARGET_SIZES, TASK_TYPE_MAP, WEIGHTS_MAP

from hpc_classify.classifiers.prompt_complexity import complexity_columns

CONFIG = {
    "targets": PROMPT_TARGETS,
    "target_sizes": TARGET_SIZES,
    "task_type_map": TASK_TYPE_MAP,
    "weights_map": WEIGHTS_MAP,
    "divisor_map": DIVISOR_MAP,
}


class NemoHeads:
    """NeMo's methods on an object with the checkpoint config's maps (as CustomHFDeberta has them)."""

    task_type_map = TASK_TYPE_MAP
    weights_map = WEIGHTS_MAP
    divisor_map = DIVISOR_MAP

    def compute_results(self, preds, target, decimal=4):
        if target == "task_type":
            task_type = {}  # noqa: F841 -- verbatim

            top2_indices = torch.topk(preds, k=2, dim=1).indices
            softmax_probs = torch.softmax(preds, dim=1)
            top2_probs = softmax_probs.gather(1, top2_indices)
            top2 = top2_indices.detach().cpu().tolist()
            top2_prob = top2_probs.detach().cpu().tolist()

            top2_strings = [[self.task_type_map[str(idx)] for idx in sample] for sample in top2]
            top2_prob_rounded = [[round(value, 3) for value in sublist] for sublist in top2_prob]

            counter = 0
            for sublist in top2_prob_rounded:
                if sublist[1] < 0.1:
                    top2_strings[counter][1] = "NA"
                counter += 1

            task_type_1 = [sublist[0] for sublist in top2_strings]
            task_type_2 = [sublist[1] for sublist in top2_strings]
            task_type_prob = [sublist[0] for sublist in top2_prob_rounded]

            return (task_type_1, task_type_2, task_type_prob)

        else:
            preds = torch.softmax(preds, dim=1)

            weights = np.array(self.weights_map[target])
            weighted_sum = np.sum(np.array(preds.detach().cpu()) * weights, axis=1)
            scores = weighted_sum / self.divisor_map[target]

            scores = [round(value, decimal) for value in scores]
            if target == "number_of_few_shots":
                scores = [x if x >= 0.05 else 0 for x in scores]
            return scores

    def process_logits(self, logits):
        result = {}

        # Round 1: "task_type"
        task_type_logits = logits[0]
        task_type_results = self.compute_results(task_type_logits, target="task_type")
        result["task_type_1"] = task_type_results[0]
        result["task_type_2"] = task_type_results[1]
        result["task_type_prob"] = task_type_results[2]

        # Round 2: "creativity_scope"
        creativity_scope_logits = logits[1]
        target = "creativity_scope"
        result[target] = self.compute_results(creativity_scope_logits, target=target)

        # Round 3: "reasoning"
        reasoning_logits = logits[2]
        target = "reasoning"
        result[target] = self.compute_results(reasoning_logits, target=target)

        # Round 4: "contextual_knowledge"
        contextual_knowledge_logits = logits[3]
        target = "contextual_knowledge"
        result[target] = self.compute_results(contextual_knowledge_logits, target=target)

        # Round 5: "number_of_few_shots"
        number_of_few_shots_logits = logits[4]
        target = "number_of_few_shots"
        result[target] = self.compute_results(number_of_few_shots_logits, target=target)

        # Round 6: "domain_knowledge"
        domain_knowledge_logits = logits[5]
        target = "domain_knowledge"
        result[target] = self.compute_results(domain_knowledge_logits, target=target)

        # Round 7: "no_label_reason"
        no_label_reason_logits = logits[6]
        target = "no_label_reason"
        result[target] = self.compute_results(no_label_reason_logits, target=target)

        # Round 8: "constraint_ct"
        constraint_ct_logits = logits[7]
        target = "constraint_ct"
        result[target] = self.compute_results(constraint_ct_logits, target=target)

        # Round 9: "prompt_complexity_score"
        result["prompt_complexity_score"] = torch.tensor(
            [
                round(
                    0.35 * creativity
                    + 0.25 * reasoning
                    + 0.15 * constraint
                    + 0.15 * domain_knowledge
                    + 0.05 * contextual_knowledge
                    + 0.05 * few_shots,
                    5,
                )
                for creativity, reasoning, constraint, domain_knowledge, contextual_knowledge, few_shots in zip(  # noqa: B905 -- verbatim
                    result["creativity_scope"],
                    result["reasoning"],
                    result["constraint_ct"],
                    result["domain_knowledge"],
                    result["contextual_knowledge"],
                    result["number_of_few_shots"],
                )
            ],
        )

        # Convert lists results to PyTorch Tensors for CrossFit to handle
        result["task_type_prob"] = torch.tensor(result["task_type_prob"])
        result["creativity_scope"] = torch.tensor(result["creativity_scope"])
        result["reasoning"] = torch.tensor(result["reasoning"])
        result["contextual_knowledge"] = torch.tensor(result["contextual_knowledge"])
        result["number_of_few_shots"] = torch.tensor(result["number_of_few_shots"])
        result["domain_knowledge"] = torch.tensor(result["domain_knowledge"])
        result["no_label_reason"] = torch.tensor(result["no_label_reason"])
        result["constraint_ct"] = torch.tensor(result["constraint_ct"])

        return result


def nemo_columns(logits: np.ndarray) -> dict[str, list]:
    heads = torch.split(torch.from_numpy(logits), list(TARGET_SIZES.values()), dim=1)
    result = NemoHeads().process_logits(list(heads))
    return {k: v.tolist() if isinstance(v, torch.Tensor) else v for k, v in result.items()}


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_every_column_is_nemos_to_the_bit(scale):
    generator = torch.Generator().manual_seed(int(scale * 10))
    rows = 5000
    logits = (torch.randn(rows, sum(TARGET_SIZES.values()), generator=generator) * scale).numpy()
    want = nemo_columns(logits)
    got = complexity_columns(logits, CONFIG)
    assert list(got) == PROMPT_TARGETS
    for column in PROMPT_TARGETS:
        expected = want[column]
        if column == "task_type_prob":  # NeMo's tensor of Python floats is float32: the same rounded values
            assert np.array_equal(np.float32(got[column]), np.float32(expected)), column
            assert got[column] == [round(float(p), 3) for p in got[column]]
            continue
        different = [
            (row, e, g) for row, (e, g) in enumerate(zip(expected, got[column], strict=True)) if e != g
        ]
        assert not different, (column, len(different), different[:3])
    # The rounding that differs: Python's (decimal-correct) round of the sum moves ~15% of these rows by 1e-5.
    assert len(set(want["prompt_complexity_score"])) > rows // 10


def test_one_row_at_a_time_is_the_same_as_a_batch():
    logits = torch.randn(64, sum(TARGET_SIZES.values()), generator=torch.Generator().manual_seed(5)).numpy()
    batch = complexity_columns(logits, CONFIG)
    for row in range(len(logits)):
        alone = complexity_columns(logits[row : row + 1], CONFIG)
        assert {k: v[0] for k, v in alone.items()} == {k: v[row] for k, v in batch.items()}
