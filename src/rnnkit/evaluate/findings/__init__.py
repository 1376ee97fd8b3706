"""The doctor's checks, one module per kind of evidence (see ``rnnkit.evaluate.doctor``)."""
