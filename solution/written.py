"""Written question 1.1 (h): two entries of the gradient of a two-layer network, by hand and by autograd.

Network: h = W1 x + b1, z = W2 h + b2, L = sum((z - y)^2). Every pre-activation is positive at this point,
so a ReLU on h would give the same numbers.
"""

import torch

x = [2.0, 7.0]
y = [4.0, 5.0, 8.0]
W1 = [[3.0, 8.0], [4.0, 5.0]]
b1 = [4.0, 10.0]
W2 = [[11.0, 4.0], [8.0, 13.0], [6.0, 10.0]]
b2 = [9.0, 2.0, 15.0]


def by_hand() -> dict[str, float]:
    """Backpropagation written out: dL/dz = 2 (z - y), dL/dh = W2^T dL/dz, dL/dW1 = dL/dh x^T, dL/db1 = dL/dh."""
    h = [sum(W1[i][j] * x[j] for j in range(2)) + b1[i] for i in range(2)]
    z = [sum(W2[k][i] * h[i] for i in range(2)) + b2[k] for k in range(3)]
    dz = [2 * (z[k] - y[k]) for k in range(3)]
    dh = [sum(W2[k][i] * dz[k] for k in range(3)) for i in range(2)]
    return {
        "L": sum((z[k] - y[k]) ** 2 for k in range(3)),
        "dL/dW1[1,1]": dh[0] * x[0],
        "dL/db1[2]": dh[1],
    }


def by_autograd() -> dict[str, float]:
    W1_t = torch.tensor(W1, dtype=torch.float64, requires_grad=True)
    b1_t = torch.tensor(b1, dtype=torch.float64, requires_grad=True)
    h = W1_t @ torch.tensor(x, dtype=torch.float64) + b1_t
    z = torch.tensor(W2, dtype=torch.float64) @ h + torch.tensor(b2, dtype=torch.float64)
    L = ((z - torch.tensor(y, dtype=torch.float64)) ** 2).sum()
    L.backward()
    return {"L": L.item(), "dL/dW1[1,1]": W1_t.grad[0, 0].item(), "dL/db1[2]": b1_t.grad[1].item()}


if __name__ == "__main__":
    hand, auto = by_hand(), by_autograd()
    for key in hand:
        print(f"{key:12s} by hand {hand[key]:>12,.0f}   autograd {auto[key]:>12,.0f}")
