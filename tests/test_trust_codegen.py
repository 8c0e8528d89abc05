"""Emitted code that always compiles, that no variable name can break, that carries only the
helpers it uses, and that refuses undefined points the way NumPy does (issues 10 and 19)."""

import ast
import builtins
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matdiff.codegen import numpy_module
from matdiff.codegen.verify import load_module, verify_module
from matdiff.derive.gradient import derive
from matdiff.derive.jacobian import hessian_extras


def _module(expr, wrt, types=None, hessian=False):
    d = derive(expr, wrt, types)
    extras = hessian_extras(expr, wrt, types) if hessian else []
    return d, numpy_module(d, extras)


def _compiles_and_verifies(expr, wrt, types=None):
    d, source = _module(expr, wrt, types)
    compile(source, "<emitted>", "exec")  # a SyntaxError/IndentationError fails here
    report = verify_module(d, source)
    assert report.ok, f"{expr} wrt {wrt}:\n{report.text}\n{source}"
    return source


def _shadowed(source):
    """Names a function of the module binds locally although the module defines them at top
    level or Python has them as builtins (such a local hides what the body means to call)."""
    tree = ast.parse(source)
    top = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            top.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            top |= {a.asname or a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.Assign):
            top |= {n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    bad = set()
    generated = [n for n in tree.body if isinstance(n, ast.FunctionDef)
                 and (not n.name.startswith("_") or n.name == "_inputs")]  # not the helpers
    for fn in generated:
        local = {a.arg for a in fn.args.args + fn.args.kwonlyargs}
        local |= {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)
                  and isinstance(n.ctx, ast.Store)}
        bad |= {(fn.name, n) for n in local & (top | set(dir(builtins)))}
    return bad


# ------------------------------------------------------------------ 1. every module compiles

FAILING_BEFORE = [
    ("-(c/2)*logdet(S) - 0.5*tr(inv(S)*(Y - vector(1)*mu')'*(Y - vector(1)*mu'))",
     ["mu", "S"], {"mu": "vector", "S": "spd"}),
    ("logdet(S) + tr(inv(S)*Y'*Y)", ["S"], {"S": "spd"}),
]


@pytest.mark.parametrize("expr,wrt,types", FAILING_BEFORE)
def test_factorization_inside_a_runtime_product_order_compiles_and_verifies(expr, wrt, types):
    source = _compiles_and_verifies(expr, wrt, types)
    # the run-time order really is chosen in this module, and the factorization precedes it
    body = source.split("def f_and_grad(")[1]
    assert "_cheapest" in body or "    if " in body.split("_symmetric(")[-1], body
    first_branch = body.index("_cheapest = ") if "_cheapest = " in body else len(body)
    assert body.index("S_chol = ") < first_branch


# random expressions: a factorization whose gradient needs the inverse whole (logdet, tr(inv),
# det of spd S or general square X) plus rectangular chains through that inverse, whose best
# bracketing is only known at run time (the combination that emitted invalid Python)
_CHAIN = st.sampled_from(["Y'*Y", "A*B*C", "Y'*Y*A*B*C", "A*B*C*A*B*C", "A*B"])
_WHOLE = {"S": ["logdet(S)", "tr(inv(S))", "det(S)"], "X": ["tr(inv(X))", "det(X)"]}


@st.composite
def _expression(draw):
    m = draw(st.sampled_from(["S", "X"]))
    terms = [draw(st.sampled_from(_WHOLE[m]))]
    for _ in range(draw(st.integers(1, 2))):
        chain = draw(_CHAIN)
        terms.append(draw(st.sampled_from([f"tr(inv({m})*{chain})", f"tr({chain}*inv({m}))",
                                           f"tr(inv({m})*{chain}*inv({m}))"])))
    coefficients = draw(st.lists(st.sampled_from(["", "2*", "0.5*", "-"]), min_size=len(terms),
                                 max_size=len(terms)))
    order = draw(st.permutations(range(len(terms))))
    return m, " + ".join(coefficients[i] + terms[i] for i in order)


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(_expression(), st.data())
def test_random_factorizations_with_rectangular_chains_compile_and_verify(case, data):
    m, expr = case
    names = [n for n in ("Y", "A", "B", "C") if n in expr]
    wrt = [m] + data.draw(st.lists(st.sampled_from(names), max_size=1))
    _compiles_and_verifies(expr, wrt, {"S": "spd"})


# ------------------------------------------------------------------ 2. no name breaks a module

SPECIAL_NAMES = [
    "sla", "np", "math", "type", "float", "len", "KeyError", "TypeError", "isinstance", "range",
    "print", "vars", "f", "f_and_grad", "grad_X", "_inputs", "_mm", "_mv", "_F64", "_m",
    "_cheapest", "_costs", "_lu", "_array", "_scalar", "_symmetric", "_Float64", "_ndarray",
    "_f64", "t1", "t2", "a1", "X_lu", "X_inv", "lambda", "None", "hvp_X", "V",
]


@pytest.mark.parametrize("k", range(len(SPECIAL_NAMES)))
def test_no_variable_name_breaks_a_module(k):
    # each name in turn as a scalar, a vector and a matrix of one factorizing module
    s, v, M = (SPECIAL_NAMES[(k + i) % len(SPECIAL_NAMES)] for i in range(3))
    if len({s, v, M, "X"}) < 4:
        pytest.skip("names coincide")
    expr = f"{s}*tr(inv(X)*{M}) + {v}'*inv(X)*{v} + {s}^2*sum({v})"
    types = {s: "scalar", v: "vector", M: "matrix"}
    d, source = _module(expr, [s, v, M, "X"], types)
    assert not _shadowed(source), _shadowed(source)
    report = verify_module(d, source)
    assert report.ok, f"{expr}\n{report.text}\n{source}"


def test_keyword_names_are_keyword_arguments_and_renamings_are_documented():
    d, source = _module("lambda*sum(x) + x₁'*x", ["lambda", "x₁"], {"lambda": "scalar"})
    mod = load_module(source)
    args = {"lambda": 2.0, "x": np.arange(3.0), "x₁": np.ones(3)}
    value, grads = mod.f_and_grad(**args)
    assert value == pytest.approx(2.0 * 3.0 + 3.0)
    assert grads["lambda"] == pytest.approx(3.0)
    assert np.allclose(mod.grad_lambda(**args), 3.0)
    docstring = mod.__doc__
    assert "lambda is v_lambda" in docstring and "x₁ is v_x_" in docstring, docstring
    fn = [n for n in dir(mod) if n.startswith("grad_v_x")]
    assert len(fn) == 1 and f"{fn[0]} is grad_x₁" in docstring, docstring
    assert np.allclose(getattr(mod, fn[0])(**args), np.arange(3.0))
    assert "Variables: lambda: scalar; x: vector of size n; x₁: vector of size n" in docstring


def test_a_variable_named_keyerror_keeps_the_missing_argument_message():
    mod = load_module(_module("tr(KeyError*X)", ["X"])[1])
    for fn in (mod.f, mod.grad_X, mod.f_and_grad):
        with pytest.raises(TypeError, match="missing argument.*KeyError"):
            fn(X=np.eye(2))
    assert mod.f(X=np.eye(2), KeyError=np.ones((2, 2))) == 2.0


def test_two_subscripted_variables_get_two_gradient_functions():
    mod = load_module(_module("x₁'*x₂", ["x₁", "x₂"])[1])
    x1, x2 = np.array([1.0, 2.0]), np.array([3.0, 5.0])
    grads = [n for n in dir(mod) if n.startswith("grad_")]
    assert len(grads) == 2
    values = {tuple(getattr(mod, g)(**{"x₁": x1, "x₂": x2})) for g in grads}
    assert values == {(3.0, 5.0), (1.0, 2.0)}


# ------------------------------------------------------------------ 3. only the helpers used


def _unused_helpers(source):
    tree = ast.parse(source)
    defined = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined |= {n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    referenced = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                  and isinstance(n.ctx, ast.Load)}
    return {n for n in defined if n.startswith("_") and n not in referenced}


@pytest.mark.parametrize("expr,wrt,types", [
    ("x'*A*x", ["x"], None),
    ("logdet(X)", ["X"], None),
    ("logdet(S) + tr(inv(S)*C)", ["S"], {"S": "spd"}),
    ("-y'*log(softmax(W2*sigmoid(W1*x)))", ["W1", "W2"], None),
])
def test_a_module_defines_only_helpers_it_uses(expr, wrt, types):
    source = _module(expr, wrt, types)[1]
    assert _unused_helpers(source) == set(), source


def test_quadratic_form_module_is_small():
    source = _module("x'*A*x", ["x"])[1]
    for helper in ("_sigmoid", "_softmax", "_logsumexp", "_logdet", "_mm", "sla"):
        assert helper not in source, helper


def test_helpers_of_a_hessian_module_are_used():
    source = _module("logdet(X)", ["X"], hessian=True)[1]
    assert _unused_helpers(source) == set(), source


# ------------------------------------------------------------------ 4. undefined points


def _compiled(expr, wrt, types=None, hessian=False):
    return load_module(_module(expr, wrt, types, hessian)[1])


def test_singular_matrix_raises_linalgerror_like_numpy():
    mod = _compiled("tr(inv(X))", ["X"])
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.inv(np.ones((3, 3)))  # the behaviour to match
    for fn in (mod.f, mod.grad_X, mod.f_and_grad):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no LinAlgWarning, an error
            with pytest.raises(np.linalg.LinAlgError, match="X"):
                fn(X=np.ones((3, 3)))
    assert mod.f(X=2 * np.eye(3)) == pytest.approx(1.5)


def test_solve_and_logdet_of_singular_matrix_raise_and_negative_determinant_is_nan():
    mod = _compiled("x'*inv(X)*x + logdet(X)", ["x", "X"])
    singular = np.array([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(np.linalg.LinAlgError):
        mod.f_and_grad(x=np.ones(2), X=singular)
    logdet = _compiled("logdet(X)", ["X"])
    with pytest.raises(np.linalg.LinAlgError):
        logdet.f(X=singular)
    assert np.isnan(logdet.f(X=-np.eye(3)))  # det = -1: log is undefined, as np.log(det)
    assert logdet.f(X=np.diag([2.0, 3.0])) == pytest.approx(np.log(6.0))
    det = _compiled("det(X)", ["X"])
    assert det.f(X=singular) == 0.0  # det itself is defined at a singular matrix


def test_asymmetric_spd_argument_is_refused_by_name():
    mod = _compiled("logdet(S)", ["S"], {"S": "spd"})
    for fn in (mod.f, mod.grad_S, mod.f_and_grad):
        with pytest.raises(ValueError, match="S must be a symmetric"):
            fn(S=np.array([[2.0, 1.0], [0.0, 2.0]]))
    # round-off asymmetry of a computed matrix passes
    rng = np.random.default_rng(0)
    b = rng.standard_normal((5, 5))
    c = rng.standard_normal((5, 5))
    s = b.T @ (c @ c.T + np.eye(5)) @ b + np.eye(5)
    assert mod.f(S=s) == pytest.approx(np.linalg.slogdet((s + s.T) / 2)[1])
    with pytest.raises(np.linalg.LinAlgError):  # symmetric but not positive definite
        mod.f(S=-np.eye(2))
    sym = _compiled("tr(C*X)", ["X"], {"C": "symmetric"})
    with pytest.raises(ValueError, match="C must be a symmetric"):
        sym.f(C=np.array([[0.0, 1.0], [2.0, 0.0]]), X=np.eye(2))


@pytest.mark.parametrize("n", [3, 200])  # entry by entry, and by a probe vector (n > 128)
def test_symmetry_check_is_relative_to_the_entries(n):
    mod = _compiled("logdet(S)", ["S"], {"S": "spd"})
    rng = np.random.default_rng(n)
    b, c = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    s = 1e6 * (b.T @ (c @ c.T) @ b + np.eye(n))  # large entries, round-off asymmetry
    assert np.abs(s - s.T).max() > 0
    assert mod.f(S=s) == pytest.approx(np.linalg.slogdet((s + s.T) / 2)[1])
    t = s.copy()
    t[0, n - 1] += 1e-4 * np.abs(s).max()
    with pytest.raises(ValueError, match=rf"S\[(0, {n - 1}|{n - 1}, 0)\]"):
        mod.f(S=t)


@pytest.mark.parametrize("expr,wrt,bad,good,args", [
    ("x'*A*x + sum(exp(x))", "x", np.ones((3, 1)), np.ones(3),
     {"x": np.ones(3), "A": np.eye(3)}),
    ("x'*A*x + sum(exp(x))", "x", np.ones((3, 3)), np.ones(3),
     {"x": np.ones(3), "A": np.eye(3)}),
    ("logdet(X)", "X", np.ones(3), np.eye(3), {"X": 2 * np.eye(3)}),
])
def test_hvp_direction_is_shape_checked(expr, wrt, bad, good, args):
    mod = _compiled(expr, [wrt], hessian=True)
    hvp = getattr(mod, f"hvp_{wrt}")
    with pytest.raises(ValueError, match=r"\bV\b"):
        hvp(bad, **args)
    with pytest.raises(TypeError, match=r"\bV\b"):
        hvp(good + 1j, **args)
    assert np.shape(hvp(good, **args)) == np.shape(good)


def test_duplicate_wrt_defines_each_hessian_function_once():
    d = derive("x'*A*x", ["x"])
    source = numpy_module(d, hessian_extras("x'*A*x", ["x"]) * 2)  # --wrt x --wrt x --hessian
    assert source.count("def hess_x(") == 1 and source.count("def hvp_x(") == 1


def test_argument_types_are_refused_by_name():
    mod = _compiled("x'*A*x + a*sum(exp(B*x))", ["x", "A", "a"])
    x, A, B = np.ones(3), np.eye(3), np.eye(3)
    for bad in (x + 1j, np.array(["2020-01-01"] * 3, dtype="datetime64[D]"),
                np.array([1.0, None, 2.0], dtype=object), np.ma.masked_array(x, [0, 1, 0])):
        with pytest.raises(TypeError, match=r"\bx\b"):
            mod.f(x=bad, A=A, B=B, a=1.0)
    for bad in (np.ones(3), None, 0.5 + 1j, "1.0"):
        with pytest.raises(TypeError, match=r"\ba\b"):
            mod.f(x=x, A=A, B=B, a=bad)
    expected = 3.0 + 2 * 3 * np.e
    for good in (2, np.float64(2.0), np.array(2.0), np.int64(2), 2.0):
        assert mod.f(x=x, A=A, B=B, a=good) == pytest.approx(expected)
    with pytest.raises(ValueError, match="X is empty"):
        _compiled("tr(inv(X))", ["X"]).grad_X(X=np.zeros((0, 0)))
    with pytest.raises(ValueError, match="x is empty"):
        mod.f(x=np.ones(0), A=np.ones((0, 0)), B=np.ones((0, 0)), a=1.0)


def test_shape_mismatch_names_both_arguments():
    mod = _compiled("x'*A*x", ["x"])
    with pytest.raises(ValueError, match=r"x has length 4 but A is 3×3"):
        mod.f(x=np.ones(4), A=np.eye(3))
    with pytest.raises(ValueError, match=r"x has length 4 but A is 3×3"):
        mod.f_and_grad(x=np.ones(4), A=np.eye(3))


@pytest.mark.parametrize("expr,at,value,gradient", [
    ("a^0.5", -1.0, np.nan, np.nan),
    ("1/a", 0.0, np.inf, -np.inf),
    ("a^1000", 10.0, np.inf, np.inf),
    ("2^a", 5000.0, np.inf, np.inf),
])
def test_scalar_domain_errors_are_ieee_like_numpy(expr, at, value, gradient):
    mod = _compiled(expr, ["a"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        f = mod.f(a=at)
        f2, grads = mod.f_and_grad(a=at)
        g = mod.grad_a(a=at)
    for got, want in ((f, value), (f2, value), (g, gradient), (grads["a"], gradient)):
        assert isinstance(got, float)
        assert (np.isnan(got) and np.isnan(want)) or got == want, (got, want)
    assert mod.f(a=1.5) == pytest.approx({"a^0.5": 1.5 ** 0.5, "1/a": 1 / 1.5,
                                          "a^1000": 1.5 ** 1000, "2^a": 2 ** 1.5}[expr])


def test_argument_docs_read_name_colon_shape():
    mod = _compiled("x'*A*x + logdet(S)", ["x"], {"S": "spd"})
    assert "x: vector of size m; A: m×m matrix; S: symmetric positive definite n×n matrix" \
        in mod.f.__doc__, mod.f.__doc__
    doc = " ".join(mod.__doc__.split())
    assert "raises numpy.linalg.LinAlgError" in doc and "not symmetric" in doc, doc
    assert "LinAlgError" not in _compiled("x'*A*x", ["x"]).__doc__
