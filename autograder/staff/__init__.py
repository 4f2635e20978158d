"""The staff's tools, kept apart from the grader a Gradescope zip ships: building the zip (build, bundle),
batch regrades (batch, batch_graders, batch_records, batch_worker, inputs, export, reports), the GPU harness and the
full command line (cli). Nothing outside this package imports it (tests/test_import_graph.py); build.py leaves it out
of every zip."""
