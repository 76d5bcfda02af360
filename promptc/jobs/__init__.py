"""Library-level jobs: compile, evaluate and run a program, and load a compiled one.

These are what the CLI commands call; a Python user calls the same functions through
`promptc.compile`, `promptc.evaluate`, `promptc.run` and `promptc.load_program`. A job
takes a program (a `Program`, a `LoadedProgram`, or a path to a spec or artifact),
data (a JSONL path or rows in memory) and settings, and returns a result object; it
prints nothing. Layers point one way: cli -> jobs -> spec -> core -> lm.

Resources: a job closes only what it opened. Given a path, it loads the program and
closes that runtime; given a program, it releases the connections its event loop opened
(they reopen on next use) and leaves the runtime to its owner.
"""
