"""Names in the emitted module: the functions SPEC §2 names (grad_NAME, …) and the Python
names of the variables inside the functions (keyword arguments keep the user's names)."""

from __future__ import annotations

import keyword
import unicodedata


def function_name(prefix: str, name: str) -> str:
    """grad_NAME as SPEC §2 says (grad_lambda is fine even though lambda is a keyword); a name
    Python cannot spell gets its characters' code points: grad_x₁ is grad_v_x_u2081."""
    candidate = prefix + name
    if candidate.isidentifier() and unicodedata.normalize("NFKC", candidate) == candidate:
        return candidate
    return prefix + "v_" + "".join(c if (c.isalnum() and c.isascii()) or c == "_"
                                   else f"_u{ord(c):04x}" for c in name)


def python_name(name: str, taken: set[str]) -> str:
    ok = name.isidentifier() and not keyword.iskeyword(name) and \
        unicodedata.normalize("NFKC", name) == name and not name.startswith("_")
    base = name if ok else "v_" + "".join(c if c.isalnum() and c.isascii() else "_" for c in name)
    out, i = base, 1
    while out in taken:
        i += 1
        out = f"{base}{i}"
    taken.add(out)
    return out
