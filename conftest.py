pytest_plugins = [
    "fixtures.options",
    "fixtures.plugin",
    "reports.plugin",
    "evals.expectations",
]
