"""Softmax regression on a small synthetic data set (3 well-separated classes in the plane),
with the cross-entropy gradient derived and emitted by matdiff; trained by a plain
gradient-descent loop and by scipy.optimize (L-BFGS) on the same generated gradient."""

import numpy as np
from scipy.optimize import minimize

import matdiff

LOSS = "-y'*log(softmax(W*x))"  # one example; the data loss is the sum over examples


def make_data(rng, per_class=40):
    centres = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    xs, ys = [], []
    for k, c in enumerate(centres):
        points = c + 0.6 * rng.standard_normal((per_class, 2))
        xs.append(np.hstack([points, np.ones((per_class, 1))]))  # a bias feature
        ys += [k] * per_class
    return np.vstack(xs), np.eye(3)[ys]


def main():
    result = matdiff.grad(LOSS, "W")
    print(result.text())
    model = result.compile()
    X, Y = make_data(np.random.default_rng(0))

    def loss_and_grad(w_flat):
        W = w_flat.reshape(3, 3)
        total, grad = 0.0, np.zeros((3, 3))
        for x, y in zip(X, Y):
            value, g = model.f_and_grad(W=W, x=x, y=y)
            total += value
            grad += g["W"]
        return total / len(X), grad.ravel() / len(X)

    w = np.zeros(9)
    start, _ = loss_and_grad(w)
    for step in range(201):
        loss, g = loss_and_grad(w)
        w -= 0.5 * g
        if step % 50 == 0:
            print(f"step {step:4d}  mean cross-entropy {loss:.4f}")
    accuracy = np.mean(np.argmax(X @ w.reshape(3, 3).T, axis=1) == np.argmax(Y, axis=1))
    lbfgs = minimize(loss_and_grad, np.zeros(9), jac=True, method="L-BFGS-B")
    print(f"gradient descent: loss {loss:.4f}, accuracy {accuracy:.1%}")
    print(f"scipy L-BFGS:     loss {lbfgs.fun:.4f} ({lbfgs.nit} iterations)")
    assert loss < start / 5, (start, loss)
    assert accuracy > 0.95, accuracy
    assert lbfgs.fun <= loss + 1e-6, (lbfgs.fun, loss)


if __name__ == "__main__":
    main()
