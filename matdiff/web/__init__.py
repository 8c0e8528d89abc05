"""matdiff's local web page (`matdiff serve`) and computation-graph pictures (`matdiff graph`).

Nothing here is imported by `import matdiff`. `graph` (the SVG of the expression DAG) needs
only the core install; the server needs the `web` extra: pip install "matdiff[web]"."""
