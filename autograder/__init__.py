"""A notebook autograder for Gradescope: sandboxed execution, JSON observations, weighted pytest cases."""
