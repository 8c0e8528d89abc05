"""Kronecker products, column stacking and the commutation matrix: the vec forms of
`matdiff jacobian --vec` (vec(AXB) = (Bᵀ ⊗ A) vec X, vec(Xᵀ) = K vec X)."""

from __future__ import annotations

from .. import expr as E
from ..printing.base import ATOM, PRODUCT, UNARY
from .combinators import leibniz_d, linear_d
from .lazy import np
from .registry import Operator, Spelling, declare


def _np_commutation(rows: int, cols: int):
    """K with K @ vec(M) = vec(M.T) for M of shape (rows, cols), vec column-major."""
    k = np.zeros((rows * cols, rows * cols))
    for i in range(rows):
        for j in range(cols):
            k[i * cols + j, j * rows + i] = 1.0
    return k


def _kron_text(sep: str):
    def spell(printer, node):
        a, b = node.args
        return f"{printer.first_factor(a, 'kron')}{sep}{printer.at(b, UNARY)}", PRODUCT
    return spell


def _mp_kron(mp, a, b):
    out = mp.zeros(a.rows * b.rows, a.cols * b.cols)
    for i in range(a.rows):
        for j in range(a.cols):
            for k in range(b.rows):
                for m in range(b.cols):
                    out[i * b.rows + k, j * b.cols + m] = a[i, j] * b[k, m]
    return out


def _mp_vec(mp, a):
    return mp.matrix([[a[i, j]] for j in range(a.cols) for i in range(a.rows)])


declare(Operator(
    "kron", "Kronecker product",
    d=leibniz_d("d(A ⊗ B) = dA ⊗ B + A ⊗ dB", E.kron),
    numeric=lambda n, a, s: np.kron(a[0], a[1]),
    exact=lambda sp, n, a, s: sp.kronecker_product(a[0], a[1]),
    precise=lambda mp, n, a, s: _mp_kron(mp, a[0], a[1]),
    spelling=Spelling(_kron_text(" kron "), _kron_text(" ⊗ "), _kron_text(r" \otimes ")),
))
declare(Operator(
    "vec", "column stacking",
    d=linear_d("d vec(X) = vec(dX)", lambda n, dx: E.vec(dx)),
    numeric=lambda n, a, s: a[0].reshape(-1, 1, order="F"),
    exact=lambda sp, n, a, s: a[0].T.reshape(a[0].rows * a[0].cols, 1),
    precise=lambda mp, n, a, s: _mp_vec(mp, a[0]),
    spelling=Spelling("vec", "vec", r"\operatorname{vec}"),
))


def _commutation_size(n, s):
    return s((n.attr[0], E.ONE))[0], s((n.attr[1], E.ONE))[0]


def _sp_commutation(sp, rows, cols):
    k = sp.zeros(rows * cols, rows * cols)
    for i in range(rows):
        for j in range(cols):
            k[i * cols + j, j * rows + i] = 1
    return k


def _mp_commutation(mp, rows, cols):
    k = mp.zeros(rows * cols, rows * cols)
    for i in range(rows):
        for j in range(cols):
            k[i * cols + j, j * rows + i] = 1
    return k


declare(Operator(
    "commutation", "commutation matrix",
    numeric=lambda n, a, s: _np_commutation(*_commutation_size(n, s)),
    exact=lambda sp, n, a, s: _sp_commutation(sp, *_commutation_size(n, s)),
    precise=lambda mp, n, a, s: _mp_commutation(mp, *_commutation_size(n, s)),
    spelling=Spelling(lambda p, n: (f"K({n.attr[0].name},{n.attr[1].name})", ATOM),
                      lambda p, n: (f"K({n.attr[0].name},{n.attr[1].name})", ATOM),
                      lambda p, n: (rf"K_{{{n.attr[0].name},{n.attr[1].name}}}", ATOM)),
))
