pytest_plugins = [
    "fixtures.options",
    "fixtures.plugin",
    "reports.plugin",
    "evals.known_failures",
]
