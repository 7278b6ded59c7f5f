"""DARTS-PT (Wang et al., ICLR 2021, "Rethinking Architecture Selection in Differentiable NAS"):
first-order DARTS, then perturbation-based architecture selection instead of the argmax.

Released code: ruocwang/darts-pt. The supernet is trained by `sota/cnn/train_search.py` (`--method darts`,
50 epochs, `exp_scripts/darts-sota.sh`), then `exp_scripts/darts-proj-sota.sh` resumes it at epoch 50 and
runs `sota/cnn/projection.py` (`pt_project`: `--edge_decision random --proj_crit acc --proj_intv 5`).

Here the search phase is the `darts` plug-in unchanged (its epochs.csv rows are darts', bit for bit) and
the selection is the harness's seam `selection=pt` (`bench.runs.selection`, where the decision rules,
their order and ties, and the NAS-Bench-1Shot1 mapping are documented: one op decision per choice block,
one parent-set decision per node with input alphas and for the output). Any other optimizer's supernet can
be selected the same way with `--set selection=pt`; `darts-pt` only sets it by default (under every
preset), with the release's 50 search epochs.
"""

from __future__ import annotations

from typing import Any

from optimizers.darts import Darts
from optimizers.registry import register


@register("darts-pt")
class DartsPT(Darts):
    label = "DARTS-PT"
    reference_epochs = 50  # sota/cnn/train_search.py --epochs 50 before the projection

    @classmethod
    def preset_settings(cls, preset: str) -> dict[str, Any]:
        return {"selection": "pt"}
