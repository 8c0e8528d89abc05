"""Mini-batch softmax regression on scikit-learn's bundled handwritten digits (load_digits:
1797 images of 8×8 pixels, 10 classes; shipped with the package, no download). Samples are the
columns of X, the bias is broadcast as b*vector(1)', and the loss is the batch's mean
cross-entropy with a column-wise softmax plus weight decay; matdiff derives the gradients and
emits the (max-shifted, stable) NumPy code that trains the model. The test accuracy is compared
with scikit-learn's LogisticRegression on the same split.

Needs scikit-learn (`pip install scikit-learn`, the examples' optional extra); without it the
script prints the derivation and says so."""

import numpy as np

import matdiff

LOSS = ("-sum(Y .* log(softmax(W*X + b*vector(1)', 1)))/size(X, 2) "
        "+ alpha/2*norm2(W)^2")
TYPES = {"b": "vector"}


def main():
    result = matdiff.grad(LOSS, ["W", "b"], types=TYPES)
    print(result.text())
    try:
        from sklearn.datasets import load_digits
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split
    except ImportError:
        print("scikit-learn is not installed (pip install scikit-learn): no training run")
        return
    model = result.compile()

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.25, random_state=0, stratify=digits.target)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-8
    X_train, X_test = ((x_train - mean) / std).T, ((x_test - mean) / std).T  # columns
    Y_train = np.eye(10)[y_train].T  # one-hot columns
    alpha = 1e-3

    rng = np.random.default_rng(0)
    W, b = np.zeros((10, 64)), np.zeros(10)
    vW, vb = np.zeros_like(W), np.zeros_like(b)
    start = model.f(W=W, b=b, X=X_train, Y=Y_train, alpha=alpha)
    batch, rate, momentum = 128, 0.2, 0.9
    for epoch in range(30):
        order = rng.permutation(X_train.shape[1])
        for i in range(0, len(order), batch):
            cols = order[i:i + batch]
            _, g = model.f_and_grad(W=W, b=b, X=X_train[:, cols], Y=Y_train[:, cols],
                                    alpha=alpha)
            vW = momentum * vW - rate * g["W"]
            vb = momentum * vb - rate * g["b"]
            W, b = W + vW, b + vb
        if epoch % 10 == 9:
            loss = model.f(W=W, b=b, X=X_train, Y=Y_train, alpha=alpha)
            print(f"epoch {epoch + 1:3d}  training loss {loss:.4f}")
    loss = model.f(W=W, b=b, X=X_train, Y=Y_train, alpha=alpha)
    accuracy = np.mean(np.argmax(W @ X_test + b[:, None], axis=0) == y_test)

    reference = LogisticRegression(max_iter=5000, C=1.0 / (alpha * X_train.shape[1]))
    reference.fit(X_train.T, y_train)
    sk_accuracy = reference.score(X_test.T, y_test)
    print(f"matdiff mini-batch softmax regression: test accuracy {accuracy:.1%} "
          f"({X_test.shape[1]} test digits)")
    print(f"scikit-learn LogisticRegression:       test accuracy {sk_accuracy:.1%}")
    assert loss < start / 5, (start, loss)
    assert accuracy > 0.93, accuracy
    assert accuracy > sk_accuracy - 0.03, (accuracy, sk_accuracy)


if __name__ == "__main__":
    main()
