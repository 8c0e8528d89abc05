"""SPEC §1: every construct, positive and negative, and the matrixcalculus.org examples."""

import pytest

from matdiff.errors import MatdiffError, ParseError, ShapeError
from matdiff.ir import expr as E
from matdiff.language.typecheck import typecheck
from matdiff.printing.text import to_text

from .conftest import numerically_equal

MC_DOC_EXAMPLES = [
    "0.5*x'*A*x", "A*exp(x)", "(y.*v)'*x", "a^b", "norm1(A*x-y)", "norm2(A*x-y)^2",
    "sum(log(exp(-y.*(X*w)) + vector(1)))", "tr(A*X'*B*X*C)", "log(det(inv(X)))",
]


@pytest.mark.parametrize("text", MC_DOC_EXAMPLES)
def test_matrixcalculus_examples_parse_and_typecheck(text):
    typed = typecheck(text)
    assert typed.root.is_scalar or text == "A*exp(x)"


def test_trace_shapes_follow_first_appearance():
    v = typecheck("tr(A*X*B)").variables
    assert [d.name for d in v["A"].shape] == ["m", "n"]
    assert [d.name for d in v["X"].shape] == ["n", "p"]
    assert [d.name for d in v["B"].shape] == ["p", "m"]


def test_quadratic_form_makes_A_square():
    v = typecheck("x'*A*x").variables
    assert v["A"].shape[0] is v["A"].shape[1] is v["x"].shape[0]


# Each row of the SPEC table: spellings that must mean the same thing ...
SAME = [
    ("A*B", "A @ B"), ("W2*sigmoid(W1*x)", "W2 σ(W1 x)"), ("A*(B+C)", "A (B+C)"),
    ("2*x", "2x"), ("2*x", "2 x"), ("X'", "X^T"), ("X'", "Xᵀ"), ("X'", "X^\\top"),
    ("inv(X)", "X^-1"), ("inv(X)", "X^(-1)"), ("inv(X)", "X⁻¹"), ("X*X*X", "X^3"),
    ("x.*y", "x⊙y"), ("x.*y", "x∘y"), ("x./y", "x ./ y"), ("x.^2", "x.*x"),
    ("A - B", "A -B"), ("A + -B", "A - B"), ("X/a", "(1/a)*X"), ("sigmoid(x)", "σ(x)"),
    ("x'*A*x", "x^T A x"), ("a*inv(X)*b", "a*X^-1*b"), ("-(a^2)", "-a^2"),
    ("a^(b^c)", "a^b^c"), ("eye", "I"), ("log(det(X))", "logdet(X)"),
    ("A*(B+C)", "A(B+C)"), ("inv(X)*inv(X)", "X^-2"), ("eye", "X^0"),
    ("x * a", "a * x"), ("sum(x)", "vector(1)'*x"), ("norm2(x)^2", "x'*x"),
    ("diag(diag(x))", "x"), ("X^T^T", "X"), ("2./x", "2 * (vector(1)./x)"),
]


@pytest.mark.parametrize("left,right", SAME)
def test_spellings_mean_the_same(left, right):
    assert numerically_equal(f"sum({left})" if not typecheck(left).root.is_scalar else left,
                             f"sum({right})" if not typecheck(right).root.is_scalar else right)


def test_juxtaposition_does_not_swallow_a_minus():
    # `A -B` is a difference; a naive grammar reads A*(-B)
    node = typecheck("A -B").root
    assert node.op == "add"


def test_transpose_T_is_never_a_variable():
    assert typecheck("x^T A x").root.is_scalar
    assert typecheck("A^T").root.op == "transpose"


# ... and inputs each row must refuse, with the reason.
BAD = [
    ("2 + x", "cannot add a scalar and a vector"),  # a name `a` would take x's kind
    ("x + x'", "cannot add"),
    ("tr(A*x)", "tr"),
    ("A*x*y", "inner dimensions"),
    ("x^2", "vector"),
    ("X^a", "constant integer"),
    ("A / B", "division is by scalars only"),
    ("x .* A", "element-wise product of different shapes"),
    ("det(x)", "square"),
    ("softmax(A)", "column vector"),
    ("vector(x)", "takes a scalar"),
    ("diag(x')", "diag"),
    ("inv(x)", "square"),
    ("tr", "function"),
    ("A +", "end of input"),
    ("(A", "end of input"),
    ("A)", "unexpected"),
    ("2 $ 3", "unexpected character"),
    ("exp(x, y)", "argument"),
    ("", "empty"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_bad_input_is_a_clear_error(text, message):
    with pytest.raises(MatdiffError) as info:
        typecheck(text)
    assert message in info.value.message


def test_shape_error_names_both_sides():
    with pytest.raises(ShapeError) as info:
        typecheck("A*x*y")
    msg = info.value.message
    assert "A*x" in msg and "y" in msg and "vector of size" in msg


def test_syntax_error_has_a_caret_under_the_column():
    with pytest.raises(ParseError) as info:
        typecheck("tr(A*X) + * B")
    text = info.value.render()
    lines = text.splitlines()
    assert lines[-1].index("^") == lines[-2].index("*", 8)


def test_did_you_mean_for_a_misspelled_function():
    with pytest.raises(MatdiffError) as info:
        typecheck("trace(A*X)")
    assert "did you mean tr" in info.value.render()


def test_declarations_override_naming_defaults():
    v = typecheck("x1*x2", {"x1": "scalar", "x2": "scalar"}).variables
    assert v["x1"].is_scalar and v["x2"].is_scalar
    s = typecheck("x'*S*x", {"S": "spd"}).variables["S"]
    assert s.attr[1] == "spd" and s.shape[0] is s.shape[1]


def test_greek_names_are_scalars_and_sigma_is_the_function():
    v = typecheck("lambda*x + mu*x + α*x").variables
    assert all(v[n].is_scalar for n in ("lambda", "mu", "α"))
    assert typecheck("sigma*x").variables["sigma"].is_scalar


def test_softmax_argument_takes_its_kind_from_context():
    # matrixcalculus.org reads `a` in softmax(a) as a vector
    assert typecheck("-y'*log(softmax(a))").variables["a"].kind == "vector"


def test_deep_nesting_fails_cleanly():
    text = "(" * 5000 + "x" + ")" * 5000
    assert typecheck("sum(" + text + ")").root.is_scalar  # brackets alone add no depth
    deep = "exp(" * 5000 + "x" + ")" * 5000
    with pytest.raises(ParseError) as info:
        typecheck(deep)
    assert "nested too deeply" in info.value.message


def test_megabyte_expression_finishes():
    # bounded work (issue 10): a megabyte expression is refused quickly, with a caret
    text = "+".join(["x'*A*x"] * 150_000)  # ~1 MB
    assert len(text) > 1_000_000
    with pytest.raises(ParseError) as info:
        typecheck(text)
    assert "expression too large" in info.value.message and "^" in info.value.render()


def test_ir_nodes_are_interned():
    a = typecheck("A*X + A*X").root
    assert a.op == "add" and a.args[0] is a.args[1]
    assert hash(typecheck("A*X").root) == hash(a.args[0])


def test_text_printer_round_trips_examples():
    for text in MC_DOC_EXAMPLES + [s for pair in SAME for s in pair]:
        node = typecheck(text).root
        again = typecheck(to_text(node)).root
        assert to_text(again) == to_text(node)
        assert numerically_equal(to_text(node), text) if node.is_scalar else True


def test_unicode_and_latex_printers():
    from matdiff.printing.latex import to_latex
    from matdiff.printing.unicode import to_unicode

    node = typecheck("tr(A*X'*B*inv(X)*C)").root
    assert to_unicode(node) == "tr(AXᵀBX⁻¹C)"
    assert to_latex(node) == r"\operatorname{tr}\left(A X^{\top} B X^{-1} C\right)"
    assert E.shape_dims(typecheck("A").root.shape) == ["m", "n"]


# Shift/reduce conflicts that are resolved on purpose. None today; a new entry needs a reason.
ALLOWED_CONFLICTS: set[str] = set()


def test_grammar_has_no_unexpected_lalr_conflicts():
    import io
    import logging

    from lark import Lark, logger

    from matdiff.language.syntax import grammar_text

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        Lark(grammar_text(), parser="lalr", debug=True)  # reduce/reduce would raise here
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    conflicts = {line for line in stream.getvalue().splitlines() if "conflict" in line.lower()}
    assert conflicts <= ALLOWED_CONFLICTS, conflicts
