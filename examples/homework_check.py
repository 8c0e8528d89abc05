"""A homework-checking session: a student's answers for ∂/∂X tr(AXB), one transposed and
one right, checked by `matdiff check` (the same verdicts as the command line)."""

import matdiff


def main():
    expression = "tr(A*X*B)"
    for claim in ("B*A", "A'*B'", "(B*A)'"):
        verdict = matdiff.check(expression, "X", claim)
        print(f'$ matdiff check "{expression}" --wrt X --claim "{claim}"')
        print(verdict.text, end="\n\n")
        if claim == "B*A":
            assert not verdict.correct and "transpose" in verdict.text
        else:
            assert verdict.correct


if __name__ == "__main__":
    main()
