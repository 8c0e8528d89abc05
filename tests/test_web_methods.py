"""The page's Steps tab gets every method of the notes: trace, backprop and the chain of
Jacobians (which says why it does not apply to a matrix variable)."""

from matdiff.web.compute import handle


def _methods(expr, wrt):
    answer = handle({"kind": "grad", "expr": expr, "wrt": wrt, "let": ""})
    assert answer["status"] == 200, answer
    return {m["name"]: m for m in answer["body"]["methods"]}


def test_all_three_methods_for_a_vector_variable():
    methods = _methods("-y'*log(softmax(W2*σ(W1*x)))", "x")
    assert set(methods) == {"trace", "backprop", "jacobian"}
    assert any("upstream" in s["rule"] for s in methods["backprop"]["steps"])
    assert any("Jacobian" in s["rule"] for s in methods["jacobian"]["steps"])


def test_jacobian_method_explains_a_matrix_variable():
    methods = _methods("tr(A*X*B)", "X")
    assert not methods["jacobian"]["steps"]
    assert "needs a vector" in methods["jacobian"]["notes"][0]
