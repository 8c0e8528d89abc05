"""Generated NumPy modules (checked against the independent evaluator and finite
differences) and `check` verdicts on right and typically-wrong claims."""


import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import matdiff
from matdiff.codegen import numpy_module
from matdiff.codegen.verify import load_module, verify_module
from matdiff.derive.gradient import derive
from matdiff.oracles.diagnose import check_claim

from .conftest import public_cases
from .test_gradients import SUITE, _exprs


@pytest.mark.parametrize("case", public_cases(), ids=lambda c: c["id"])
def test_public_case_codegen_verifies(case):
    result = derive(case["expression"], list(case["gradients"]), case["let"])
    report = verify_module(result, numpy_module(result))
    assert report.ok, report.text


# sum(vector(a)) has a size that no variable fixes: codegen refuses it (tested below)
CODEGEN_SUITE = [s for s in SUITE if s[0] != "sum(vector(a))"]


@pytest.mark.parametrize("expr,wrt,types", CODEGEN_SUITE,
                         ids=[s[0] + " d" + s[1] for s in CODEGEN_SUITE])
def test_suite_codegen_verifies(expr, wrt, types):
    result = derive(expr, [wrt], types)
    report = verify_module(result, numpy_module(result))
    assert report.ok, report.text


@pytest.mark.parametrize("case", public_cases(), ids=lambda c: c["id"])
def test_public_case_claim_is_correct(case):
    for name, expected in case["gradients"].items():
        verdict = check_claim(case["expression"], name, expected, case["let"])
        assert verdict.correct, verdict.text


def test_emitted_module_interface():
    mod = matdiff.grad("x'*A*x + lambda*norm2(x)^2", ["x", "A", "lambda"]).compile()
    rng = np.random.default_rng(0)
    x, A = rng.standard_normal(3), rng.standard_normal((3, 3))
    args = {"x": x, "A": A, "lambda": 0.5}
    value = mod.f(**args)
    assert isinstance(value, float)
    assert np.isclose(value, x @ A @ x + 0.5 * x @ x)
    gx = mod.grad_x(**args)
    assert gx.shape == (3,) and np.allclose(gx, (A + A.T) @ x + x)
    assert isinstance(mod.grad_lambda(**args), float)
    value2, grads = mod.f_and_grad(**args)
    assert value2 == value and set(grads) == {"x", "A", "lambda"}
    assert grads["A"].shape == (3, 3)
    with pytest.raises(TypeError, match="x"):
        mod.f(A=A, **{"lambda": 0.5})
    with pytest.raises(ValueError, match="x"):
        mod.f(x=rng.standard_normal((3, 1)), A=A, **{"lambda": 0.5})
    with pytest.raises(ValueError, match="A"):
        mod.f(x=x, A=rng.standard_normal((4, 4)), **{"lambda": 0.5})


def test_codegen_refuses_a_size_no_variable_fixes():
    from matdiff.errors import DerivationError

    with pytest.raises(DerivationError, match="fixed by no variable"):
        matdiff.grad("sum(vector(a))", "a").numpy_source()


def test_codegen_is_importable_source():
    src = matdiff.grad("tr(A*X*B)", "X").numpy_source()
    assert "import numpy as np" in src and "def f_and_grad(*, A, X, B)" in src
    compile(src, "<generated>", "exec")
    mod = load_module(src)
    A, X, B = np.eye(2), np.ones((2, 3)), np.ones((3, 2))
    assert np.allclose(mod.grad_X(A=A, X=X, B=B), A.T @ B.T)


RIGHT = [  # right answers written differently
    ("tr(A*X*B)", "X", "(B*A)'", {}),
    ("x'*A*x", "x", "A*x + A'*x", {}),
    ("x'*A*x", "x", "2*A*x", {"A": "symmetric"}),
    ("norm2(A*x-y)^2", "x", "2*A'*A*x - 2*A'*y", {}),
    ("log(det(X))", "X", "inv(X')", {}),
    ("det(X)", "X", "det(X)*inv(X)'", {}),
    ("-y'*log(softmax(a))", "a", "softmax(a)*(vector(1)'*y) - y", {}),
    ("sum(exp(X))", "X", "exp(X)", {}),
    ("x'*S*x", "S", "x*x'", {"S": "symmetric"}),
    ("a^2", "a", "2*a", {}),
]

WRONG = [  # typical mistakes and the diagnosis each must get
    ("tr(A*X*B)", "X", "B*A", {}, "transpose"),
    ("tr(A*X*B)", "X", "A'*B'*2", {}, "factor 2"),
    ("tr(A*X*B)", "X", "-A'*B'", {}, "sign"),
    ("tr(A*X*B)", "X", "A*B", {}, "wrong shape"),
    ("tr(A*X*B)", "X", "A'", {}, "wrong shape"),
    ("x'*A*x", "x", "2*A*x", {}, "symmetric"),
    ("x'*A*x", "x", "A*x", {}, "symmetric (∂f/∂x uses A and Aᵀ); even then it is missing"),
    ("norm2(A*x-y)^2", "x", "A'*(A*x-y)", {}, "missing factor 2"),
    ("-y'*log(softmax(a))", "a", "softmax(a) - y", {}, "1ᵀy = 1"),
    ("tr(X*X)", "X", "X'", {}, "factor 2"),
    ("tr(X'*X)", "X", "X", {}, "factor 2"),
    ("log(det(X))", "X", "inv(X)", {}, "transpose"),
    ("tr(X*A)", "X", "A' + X", {}, "differs"),
    ("sum(exp(x))", "x", "exp(x) + x", {}, "differs"),
]


@pytest.mark.parametrize("expr,wrt,claim,types", RIGHT)
def test_right_claims(expr, wrt, claim, types):
    verdict = check_claim(expr, wrt, claim, types)
    assert verdict.correct and verdict.text == "correct"


@pytest.mark.parametrize("expr,wrt,claim,types,word", WRONG)
def test_wrong_claims_get_a_diagnosis(expr, wrt, claim, types, word):
    verdict = check_claim(expr, wrt, claim, types)
    assert not verdict.correct
    assert word in verdict.text, verdict.text
    assert "matdiff: ∂f/∂" in verdict.text


def test_docstrings_state_expression_shapes_and_gradient():
    mod = matdiff.grad("norm2(A*x-y)^2", ["x", "A"]).compile()
    assert mod.f.__doc__.startswith("f = norm2(A*x - y)^2 (a float)")
    assert mod.grad_x.__doc__.startswith("∂f/∂x = 2*A'*(A*x - y) (an n-vector)")
    assert "A: m×n matrix; x: vector of size n; y: vector of size m" in mod.f_and_grad.__doc__
    assert mod.grad_A.__doc__.startswith("∂f/∂A = 2*(A*x - y)*x' (an m×n matrix)")


def test_value_computes_each_product_once():
    src = matdiff.grad("norm2(A*x-y)^2", "x").numpy_source()
    f_source = src.split("def f(")[1].split("\ndef ")[0]
    assert f_source.count("A @ x") == 1 and "np.sqrt" not in f_source, f_source


@pytest.mark.parametrize("lower", [False, True])
def test_inverse_from_cholesky_mirrors_every_block(lower):
    import scipy.linalg as sla

    mod = matdiff.grad("logdet(S) + tr(inv(S)*C)", "S", {"S": "spd"}).compile()
    rng = np.random.default_rng(3)
    n = 600  # several 256-blocks, the last one partial
    b = rng.standard_normal((n, n))
    S = b @ b.T / n + np.eye(n)
    inverse = mod._inv_chol(sla.cho_factor(S, lower=lower))
    assert np.allclose(inverse, np.linalg.inv(S), atol=1e-10)
    # returned in C order, like every other gradient (potri's array is Fortran-ordered)
    assert inverse.flags.c_contiguous


def test_factorizing_modules_keep_blas_in_scipy():
    # a shared factorization makes every product a SciPy BLAS call (one OpenBLAS thread pool)
    src = matdiff.grad("logdet(S) + tr(inv(S)*C) + x'*S*x + x'*C*x", ["S", "x"],
                       {"S": "spd"}).numpy_source()
    body = src.split("def f(")[1]
    assert "sla.cho_factor" in body and "_mm(" in body and "_mv(" in body, body
    # no NumPy matrix product is left; the dot products of vectors are u.dot(v)
    assert " @ " not in body and ".dot(x)" in body, body
    mod = load_module(src)
    rng = np.random.default_rng(4)
    n = 300
    b = rng.standard_normal((n, n))
    S, C, x = b @ b.T / n + np.eye(n), rng.standard_normal((n, n)), rng.standard_normal(n)
    value, grads = mod.f_and_grad(S=S, C=C, x=x)
    Si = np.linalg.inv(S)
    assert np.isclose(value, np.linalg.slogdet(S)[1] + np.trace(Si @ C) + x @ S @ x + x @ C @ x)
    g = Si - Si @ C.T @ Si + np.outer(x, x)
    assert np.allclose(grads["S"], (g + g.T) / 2)
    assert np.allclose(grads["x"], (S + S.T) @ x + C @ x + C.T @ x)
    assert "_mm(" not in matdiff.grad("tr(A*X*B)", "X").numpy_source()


@pytest.mark.parametrize("sizes", [(40, 3, 30, 2), (2, 30, 3, 40), (5, 5, 5, 5)])
def test_product_order_chosen_by_actual_sizes(sizes):
    # ((AX)B) or (A(XB)): which is cheaper depends on m, n, p, q, so the emitted code
    # compares the two costs on the actual shapes; both branches must give the same answer
    src = matdiff.grad("norm2(A*X*B - Y)^2", "X").numpy_source()
    assert "if _m * _n * _p + _m * _p * _q <= _m * _n * _q + _n * _p * _q:" in src
    mod = load_module(src)
    m, n, p, q = sizes
    rng = np.random.default_rng(5)
    A, X = rng.standard_normal((m, n)), rng.standard_normal((n, p))
    B, Y = rng.standard_normal((p, q)), rng.standard_normal((m, q))
    value, grads = mod.f_and_grad(A=A, X=X, B=B, Y=Y)
    r = A @ X @ B - Y
    assert np.isclose(value, np.sum(r * r))
    assert np.allclose(grads["X"], 2 * A.T @ r @ B.T)


def test_order_candidates_are_the_undominated_ones():
    from matdiff.codegen.product_order import cheapest_orders
    from matdiff.language.typecheck import typecheck

    def factors(text):
        return list(typecheck(text).root.args)
    # all square (A + ABC, B + A and C + A make them so): every order costs the same
    square = factors("A*B*C + (B + C + A)")[0].args
    assert len(square) == 3 and cheapest_orders(list(square), ((0, 1), 2)) == [((0, 1), 2)]
    # rectangular: each order wins for some sizes
    assert cheapest_orders(factors("A*B*C"), ((0, 1), 2)) == [((0, 1), 2), (0, (1, 2))]
    # square matrices times a vector: right to left always wins
    chain = factors("A*B*C*x + A*x + B*x + C*x")[0].args
    assert len(chain) == 4 and cheapest_orders(list(chain), (((0, 1), 2), 3)) == \
        [(0, (1, (2, 3)))]


@pytest.mark.parametrize("expr,wrt,claim,types", RIGHT)
def test_right_claims_are_proved_exactly(expr, wrt, claim, types):
    verdict = check_claim(expr, wrt, claim, types)
    assert verdict.exact is True


@pytest.mark.parametrize("expr,wrt,claim,types,word",
                         [w for w in WRONG if "softmax" not in w[0]])
def test_wrong_rational_claims_are_disproved_exactly(expr, wrt, claim, types, word):
    verdict = check_claim(expr, wrt, claim, types)
    # a claim of the wrong shape is refused before any value is compared
    assert verdict.exact is (None if verdict.text.startswith("wrong shape") else False)


def test_exact_check_is_not_fooled_by_cayley_hamilton():
    # X² = tr(X)X − det(X)I for every 2×2 X: the exact check must not prove it in general
    from matdiff.language.typecheck import typecheck
    from matdiff.oracles import exact

    square = typecheck("X*X")
    two_by_two = typecheck("tr(X)*X - det(X)*eye").root
    outcome = exact.equal(square.root, two_by_two, square.variables)
    assert outcome.equal is False and outcome.size == 3


def test_check_steps_say_how_the_verdict_was_reached():
    verdict = check_claim("log(det(X))", "X", "2*inv(X)' - inv(X')", {}, steps=True)
    assert verdict.correct
    assert "identical for 3×3 matrices of symbols (SymPy)" in verdict.text.splitlines()[-1]


def test_cross_entropy_stays_finite_for_large_logits():
    # softmax underflows to 0 for a logit 1000 below the largest: log(0)·0 would be NaN
    mod = matdiff.grad("-y'*log(softmax(W2*sigmoid(W1*x)))", ["W1", "W2"]).compile()
    W1, x = np.eye(2), np.array([1.0, -1.0])
    W2, y = np.array([[2000.0, 0.0], [0.0, 0.0]]), np.array([0.0, 1.0])
    value, grads = mod.f_and_grad(W1=W1, W2=W2, x=x, y=y)
    h = 1 / (1 + np.exp(-(W1 @ x)))
    a = W2 @ h
    assert np.isclose(value, np.max(a) - a[1])  # −log softmax(a)₁ = logsumexp(a) − a₁
    assert all(np.all(np.isfinite(g)) for g in grads.values())


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(_exprs("scalar", 5), st.lists(st.sampled_from(["a", "b", "x", "y", "A", "X"]),
                                     min_size=1, max_size=3, unique=True))
def test_random_expressions_emit_code_that_verifies(expr, wrt):
    # every rewrite of the code generator (product order, shared factorizations, hoisted
    # constants, dot products for sums of squares) on random well-typed expressions
    from matdiff.language.typecheck import typecheck
    from matdiff.oracles.numeric import dim_sizes, find_data

    typed = typecheck(expr)
    wrt = [w for w in wrt if w in typed.variables]
    assume(wrt)
    result = derive(typed, wrt, check=False)
    variables = result.typed.variables
    sizes = dim_sizes(variables, result.f, *result.gradients.values())
    assume(find_data(result.f, result.gradients, variables, sizes,
                     np.random.default_rng(0)) is not None)
    report = verify_module(result, numpy_module(result))
    assert report.ok, (expr, report.text)


def test_api_verify_and_check():
    g = matdiff.grad("tr(A*X*B)", "X")
    report = g.verify()
    assert report.ok and report.max_error < 1e-8
    verdict = matdiff.check("tr(A*X*B)", "X", "B*A")
    assert not verdict.correct and "transpose" in verdict.text
    assert matdiff.check("tr(A*X*B)", "X", "(B*A)'").exact is True


def test_claim_with_a_foreign_variable_is_bad_input():
    from matdiff.errors import DerivationError

    # C is not in the expression: a malformed claim (exit 2), not a shape diagnosis
    with pytest.raises(DerivationError, match="the claim uses C"):
        check_claim("tr(A*X*B)", "X", "A*B*C")


def test_long_gradient_docstring_uses_the_names_of_the_body():
    mod = matdiff.grad("sum((W4*tanh(W3*tanh(W2*tanh(W1*x))) - y).^2)", "W1").compile()
    doc = mod.grad_W1.__doc__
    assert "(W4'*a4)" in doc and "\n        a4 = W4*h3 - y\n" in doc, doc
    assert "a1 = W1*x" in doc and doc.index("a1 = W1*x") < doc.index("a4 = W4*h3 - y")


def test_a_square_argument_must_be_square():
    mod = matdiff.grad("logdet(S) + tr(inv(S)*C)", "S", {"S": "spd"}).compile()
    for function in (mod.f, mod.grad_S, mod.f_and_grad):
        with pytest.raises(ValueError, match=r"S must have shape \(n, n\)"):
            function(S=np.eye(3, 4), C=np.eye(3))


def test_verify_resolves_an_f_that_is_zero_made_of_large_terms():
    # xᵀA(A − A)…x is 0 computed as a difference of large products: the emitted f is rounding
    # (2e-12), and differences of it must not be read as a wrong gradient
    result = matdiff.grad("(x'*(((A*(A-A))*(A.*(A*A)))*A)*(tr(A)*x))", "A")
    assert result.verify().ok, result.verify().text


def test_verify_still_fails_a_wrong_gradient():
    source = matdiff.grad("x'*A*x", "x").numpy_source()
    broken = source.replace("return float(", "return 1.001 * float(", 1)
    assert broken != source
    report = verify_module(derive("x'*A*x", ["x"]), broken)
    assert not report.ok, report.text


@pytest.mark.parametrize("expr, types", [
    ("logdet(eye + S*X'*X)", {"S": "symmetric"}), ("logdet(eye + A*X'*X*A')", None),
    ("log(det(eye*20 + (X*S)'*(X*S)))", {"S": "symmetric"}),
])
def test_a_factorized_product_chosen_at_run_time_is_named_in_messages(expr, types):
    # the message text of a factorization was printed from the plan, where a product of
    # run-time order had no spelling: an internal error for these
    result = matdiff.grad(expr, "X", types)
    assert result.verify().ok
