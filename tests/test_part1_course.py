"""The course protocol reproduces the public values quoted by the course notebook (HW4_INTERFACE.md)."""

import torch

from solution import GD, SGD, AdaGrad, Adam, LinearModel, TorchLinearModel, loss, make_data, mse
from solution.part1 import train_with_torch_adam


def run(optimizer, X, y, steps=300):
    model = LinearModel()
    for _ in range(steps):
        optimizer.apply_gradient(optimizer.calculate_gradient(X, y, model), model)
    return model


def test_one_rng_stream_through_all_four_optimizers():
    X, y = make_data()  # seeds 10605; SGD, AdaGrad and Adam then continue the same global stream
    assert X.shape == (2000, 2) and y.shape == (2000, 1)
    results = [run(opt, X, y) for opt in (GD(), SGD(), AdaGrad(lr=0.1), Adam(lr=0.1))]
    assert [round(mse(X, y, model), 4) for model in results] == [0.9611, 0.9707, 29.5416, 1.0076]
    torch.testing.assert_close(results[3].w, torch.tensor([[4.1860504, 3.1284819]]), rtol=0, atol=1e-6)


def test_data_matches_the_least_squares_facts():
    X, y = make_data()
    design = torch.cat([X, torch.ones(len(X), 1)], dim=1).double()
    solution = torch.linalg.lstsq(design, y.double()).solution.flatten()
    torch.testing.assert_close(solution, torch.tensor([4.0580, 2.9795, 2.0023], dtype=torch.float64), atol=1e-4, rtol=0)


def test_baseline_model_exact_checks():
    model = TorchLinearModel()
    x = torch.tensor([[1.0, 2.0]])
    assert model(x).item() == 25.0
    assert loss(model(x), torch.tensor([3.0])).item() == 484.0
    assert model(torch.zeros(4, 2)).shape == (4, 1)


def test_builtin_adam_demo_per_epoch():
    X, y = make_data()
    model = TorchLinearModel()
    losses = train_with_torch_adam(model, X, y)
    assert len(losses) == 10
    assert [round(losses[i], 4) for i in (0, 1, 9)] == [8.9128, 1.2505, 0.9634]
    torch.testing.assert_close(model.w.detach(), torch.tensor([[4.1578, 3.0051]]), atol=1e-4, rtol=0)
    assert abs(model.b.item() - 1.9995) < 1e-4
