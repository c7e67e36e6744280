"""The application around the library: the ``cohortex`` command line, the demo's report and the
benchmark harness. Nothing in the library imports from here."""
