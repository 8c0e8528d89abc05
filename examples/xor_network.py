"""The XOR network of the lecture notes: inputs (0,0),(0,1),(1,0),(1,1), a 2-4-1 sigmoid
network, squared loss, trained by gradient descent with gradients derived and emitted by
matdiff. Prints the loss falling; exits non-zero if it does not fall by a factor of 20."""

import numpy as np

import matdiff

LOSS = "sum((σ(W2*σ(W1*X + b1*vector(1)') + b2*vector(1)') - Y).^2)"
PARAMS = ["W1", "b1", "W2", "b2"]


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def main() -> float:
    result = matdiff.grad(LOSS, PARAMS, types={"b1": "vector", "b2": "vector"})
    print(result.text())
    net = result.compile()

    X = np.array([[0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0]])  # one column per example
    Y = np.array([[0.0, 1.0, 1.0, 0.0]])
    rng = np.random.default_rng(1)
    params = {"W1": rng.normal(0, 1, (4, 2)), "b1": np.zeros(4),
              "W2": rng.normal(0, 1, (1, 4)), "b2": np.zeros(1)}
    rate = 2.0
    first = None
    for step in range(4001):
        loss, grads = net.f_and_grad(X=X, Y=Y, **params)
        first = loss if first is None else first
        for name in PARAMS:
            params[name] = params[name] - rate * grads[name]
        if step % 1000 == 0:
            print(f"step {step:5d}  loss {loss:.6f}")
    hidden = sigmoid(params["W1"] @ X + params["b1"][:, None])
    outputs = sigmoid(params["W2"] @ hidden + params["b2"][:, None])
    print("predictions:", np.round(outputs, 3))
    assert loss < first / 20, (first, loss)
    assert np.all((outputs > 0.5) == (Y > 0.5)), outputs
    return loss


if __name__ == "__main__":
    main()
