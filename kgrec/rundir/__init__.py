"""The run directory: the contract between training and everything after it.

Training writes through :class:`kgrec.rundir.write.RunWriter`; evaluation, the audit,
serving and updates read through :func:`kgrec.rundir.load.load_run`. Neither side imports
the other. :mod:`kgrec.rundir.layout` lists the files, :mod:`kgrec.rundir.config` the run
configuration. Import the submodules directly: this package imports nothing heavy, so the
command line stays fast.
"""
