"""DARTS (Liu et al., ICLR 2019): softmax mixing; first order by default, second order by option."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from optimizers.base import Batch, OneShotOptimizer
from optimizers.registry import register


@dataclass
class DartsHyperparameters:
    unrolled: bool = False  # second order: differentiate through one unrolled weight step
    fd_radius: float = 0.01  # finite-difference radius r, scaled by 1/||grad|| as in the reference


@register("darts")
class Darts(OneShotOptimizer):
    label = "DARTS"
    # Paper: the DARTS baseline of SDARTS/MS-DARTS' eigenvalue figures is their train_search.py without
    # perturbation, 100 epochs; corrected keeps NAS-Bench-1Shot1's own DARTS budget (its script's 50).
    reference_epochs = 100
    Hyperparameters = DartsHyperparameters

    @classmethod
    def preset_settings(cls, preset: str) -> dict[str, Any]:
        return {"epochs": 50} if preset == "corrected" else {}

    def arch_step(self, batch_val: Batch, batch_train: Batch | None = None) -> None:
        if not self.hp.unrolled:
            return super().arch_step(batch_val)
        if batch_train is None:
            raise ValueError("second-order DARTS needs the training batch")
        self.apply_arch_grads(self.unrolled_arch_grads(batch_train, batch_val))

    def _train_loss(self, batch: Batch, alphas: list[Tensor]) -> Tensor:
        return self.arch_loss(batch, alphas)

    def unrolled_arch_grads(self, batch_train: Batch, batch_val: Batch) -> list[Tensor]:
        """dL_val(w', a)/da - eta * (d2 L_train / da dw) dL_val(w', a)/dw', with w' = w - eta * dL_train/dw.

        The mixed second derivative is the reference's central finite difference around w. The
        network is modified in place and restored (weights and BN statistics), never copied.
        """
        ctx = self.ctx
        alphas, params = ctx.alphas, ctx.weight_params
        group = ctx.w_optim.param_groups[0]
        eta, momentum, wd = group["lr"], group.get("momentum", 0.0), group.get("weight_decay", 0.0)
        buffers = [b.detach().clone() for b in ctx.model.buffers()]
        w0 = [p.detach().clone() for p in params]
        try:
            with torch.no_grad():
                weights = self.arch_weights(alphas)
            x, y = batch_train
            loss = torch.nn.functional.cross_entropy(self.forward(x, weights), y)
            g_train = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, w, g in zip(params, w0, g_train, strict=True):
                    buf = ctx.w_optim.state.get(p, {}).get("momentum_buffer")
                    moment = momentum * buf if buf is not None else 0.0
                    p.copy_(w - eta * (moment + g + wd * w))
            loss_val = self.arch_loss(batch_val, alphas)
            grads = torch.autograd.grad(loss_val, [*alphas, *params])
            d_alpha, vector = list(grads[: len(alphas)]), grads[len(alphas) :]
            r = self.hp.fd_radius / torch.cat([v.flatten() for v in vector]).norm()

            def grad_at(sign: float) -> tuple[Tensor, ...]:
                with torch.no_grad():
                    for p, w, v in zip(params, w0, vector, strict=True):
                        p.copy_(w + sign * r * v)
                return torch.autograd.grad(self._train_loss(batch_train, alphas), alphas)

            g_pos, g_neg = grad_at(1.0), grad_at(-1.0)
            return [d - eta * (gp - gn) / (2 * r) for d, gp, gn in zip(d_alpha, g_pos, g_neg, strict=True)]
        finally:
            with torch.no_grad():
                for p, w in zip(params, w0, strict=True):
                    p.copy_(w)
                for b, saved in zip(ctx.model.buffers(), buffers, strict=True):
                    b.copy_(saved)
