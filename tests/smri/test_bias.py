"""The DCT bias basis: exact recovery of a field in the basis, pinned constant term."""

from __future__ import annotations

import torch

from neurolearn_cli.smri import bias


def _bases(shape, orders):
    return tuple(bias.dct_matrix(n, k, torch.arange(n)) for n, k in zip(shape, orders, strict=True))


def test_fit_recovers_a_field_in_the_basis() -> None:
    shape, orders = (7, 8, 9), (3, 4, 3)
    bases = _bases(shape, orders)
    truth = torch.zeros(orders, dtype=torch.float64)
    truth[1, 0, 0], truth[0, 2, 1], truth[2, 1, 2] = 0.2, -0.1, 0.05
    field = bias.evaluate(truth, bases)
    penalty = bias.bending_penalty(orders, (14.0, 16.0, 18.0), 1e-9)
    coeffs = bias.fit(torch.ones(shape), field, bases, penalty)
    assert torch.allclose(coeffs, truth, atol=1e-5)


def test_constant_term_stays_zero() -> None:
    shape, orders = (7, 8, 9), (2, 2, 2)
    bases = _bases(shape, orders)
    penalty = bias.bending_penalty(orders, (14.0, 16.0, 18.0), 1e-9)
    coeffs = bias.fit(torch.ones(shape), torch.full(shape, 0.7), bases, penalty)
    assert abs(float(coeffs[0, 0, 0])) < 1e-6
    assert float(bias.evaluate(coeffs, bases).abs().max()) < 1e-5


def test_basis_orders_follow_field_of_view() -> None:
    assert bias.basis_orders((100, 50, 10), (2.0, 2.0, 2.0), 60.0) == (8, 5, 2)
