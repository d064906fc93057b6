"""The pipeline of a job: its steps in order (`steps`), their shared context, `limr run` (`local`)."""
