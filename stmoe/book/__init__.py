"""The book's chapter computations: one module per notebook, named like its partners in
`stmoe.charts` and `stmoe.widgets` (a chapter is the triple book/X.py, charts/X.py,
widgets/X.py). They combine the models below (analysis, evaluation, predictors, sim) into the
numbers a chapter prints; charts draw them and widgets wire them to controls."""

# The bundled trace the chapters and their explorers use unless given another.
DEFAULT_TRACE = "tiny-moe-code"
