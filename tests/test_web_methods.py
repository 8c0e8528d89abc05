"""The page's Steps tab gets every method of the notes: trace, backprop and the chain of
Jacobians (which says why it does not apply to a matrix variable)."""

from matdiff.web.compute import handle


def _methods(expr, wrt, let=""):
    answer = handle({"kind": "grad", "expr": expr, "wrt": wrt, "let": let})
    assert answer["status"] == 200, answer
    return {m["name"]: m for m in answer["body"]["methods"]}


def test_all_three_methods_for_a_vector_variable():
    methods = _methods("-y'*log(softmax(W2*σ(W1*x)))", "x")
    assert set(methods) == {"trace", "backprop", "jacobian"}
    assert any("upstream" in s["rule"] for s in methods["backprop"]["steps"])
    assert any("Jacobian" in s["rule"] for s in methods["jacobian"]["steps"])


def test_jacobian_method_explains_a_matrix_variable():
    methods = _methods("u'*exp(X*a*tr(X))", "X", "a:vector, u:vector")  # no vec form
    assert not methods["jacobian"]["steps"]
    assert "needs a vector" in methods["jacobian"]["notes"][0]
    methods = _methods("tr(A*X*B)", "X")  # the vec form: ∂f/∂vec(X)ᵀ = vec(AᵀBᵀ)ᵀ
    assert methods["jacobian"]["steps"][0]["line"] == "∂f/∂vec(X)ᵀ = vec(AᵀBᵀ)ᵀ"
