"""What each command shows, as text, LaTeX and JSON: the reports, the derivation
steps in the notes' three methods, the parse tree."""
