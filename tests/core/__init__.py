"""Core test suite: parser, printer, planner and atomic apply (property, golden and API tests)."""
