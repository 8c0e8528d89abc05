"""Maximum likelihood for the covariance of a Gaussian: minimise the negative log-likelihood
(up to constants and a factor N/2) logdet(S) + tr(inv(S)*C) over spd S by gradient steps,
with the symmetric gradient matdiff derives, and compare with the closed form S = C."""

import numpy as np

import matdiff

NLL = "logdet(S) + tr(inv(S)*C)"


def main():
    result = matdiff.grad(NLL, "S", types={"S": "spd", "C": "symmetric"})
    print(result.text())
    model = result.compile()
    rng = np.random.default_rng(0)
    true = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, 0.3], [0.0, 0.3, 0.5]])
    samples = rng.multivariate_normal(np.zeros(3), true, size=500)
    C = samples.T @ samples / len(samples)  # the sample covariance: the closed-form MLE

    S = np.eye(3)
    for step in range(3001):
        value, grads = model.f_and_grad(S=S, C=C)
        S = S - 0.05 * grads["S"]
        if step % 1000 == 0:
            print(f"step {step:5d}  NLL {value:.6f}")
    error = np.linalg.norm(S - C) / np.linalg.norm(C)
    print(f"relative distance to the closed form C: {error:.2e}")
    assert np.allclose(S, S.T)
    assert error < 1e-4, error


if __name__ == "__main__":
    main()
